"""Smoke runs of the benchmark scripts, with their smallest option sets."""

from __future__ import annotations

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
