"""Every test gets its own user files (PERSLM_VOICE_HOME) and a silent SDL audio driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
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
    """The real human recordings beside the repository (see its README)."""
    if not SHARED_AUDIO.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_AUDIO}")
    return SHARED_AUDIO


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


def say_to_file(text: str, path: Path) -> Path:
    """``text`` spoken by the default voice (Piper) through `perslm-voice say`, written to ``path``."""
    done = cli("say", text, "--out", str(path), timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return path


@pytest.fixture(scope="session")
def speak():
    return say_to_file
