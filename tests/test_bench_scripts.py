"""Smoke runs of the benchmark scripts, with their smallest option sets."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_latency_one_short_session(tmp_path: Path) -> None:
    """One real recording through the real CLI: the table has the end-to-end row and the targets."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_latency.py"),
            "--quick",
            "--scenario",
            "real",
            "--compare",
            "streaming=",
            "--gap",
            "4",
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "speech_end_to_first_audio" in proc.stdout
    assert "streaming: end of speech -> first audio p50" in proc.stdout
    assert "0 failed sessions" in proc.stdout
    assert (tmp_path / "real.wav").exists()


def test_bench_stt_context_quick() -> None:
    """The hearing benchmark on one real recording: both tables, and the French and Chinese
    recordings still rejected by the new check, no phantom words."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_stt_context.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    new = next(line for line in lines if line.startswith("new "))
    assert new.split()[1:7] == ["0", "of", new.split()[3], "2", "of", "2"], new
    assert any(line.startswith("english + pauses") for line in lines)
    assert "s STT / min of audio" in proc.stdout
    assert "phantom words on 2 noise/silence files: before 0, prompted 0, after 0" in proc.stdout


def test_bench_echo_skips_a_configuration_whose_extra_is_missing(monkeypatch, capsys) -> None:
    """A configuration whose optional extra is not installed is skipped with the reason and the
    install line, not run without its protection nor reported as "session failed"."""
    spec = importlib.util.spec_from_file_location("bench_echo", ROOT / "scripts" / "bench_echo.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    name = "strict VAD + check + WebRTC AEC"
    assert bench.missing_extra(name) is None  # the test set-up installs it
    monkeypatch.setitem(bench.NEEDS, name, ("not_installed_aec", "pip install 'perslm-voice[aec]'"))
    bench.main(["--config", name])
    out = capsys.readouterr().out
    assert out.strip() == (
        f"{name}: skipped: needs not_installed_aec, which is not installed"
        " (pip install 'perslm-voice[aec]')"
    )
    assert "session failed" not in out


def test_bench_turns_on_the_real_counts() -> None:
    """Real counts with 0.7-0.9 s pauses inside each turn: the table has a row per detector, and
    a 1 s timer cuts fewer of those turns than a 0.5 s one (the pauses sit between the two)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_turns.py"),
            "--scene",
            "counts",
            "--detector",
            "silence:0.5",
            "--detector",
            "silence:1.0",
            "--detector",
            "words",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| detector")
    }
    assert set(rows) == {"silence:0.5", "silence:1.0", "words"}, proc.stdout
    cut = {name: int(cells[0].split("/")[0]) for name, cells in rows.items()}
    inside = {int(cells[0].split("/")[1]) for cells in rows.values()}
    assert len(inside) == 1 and inside.pop() >= 4  # the same pauses, judged by each detector
    assert cut["silence:1.0"] < cut["silence:0.5"]


def test_bench_turns_names_a_bad_detector() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_turns.py"), "--detector", "smrt_turn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown detector 'smrt_turn'" in proc.stderr
