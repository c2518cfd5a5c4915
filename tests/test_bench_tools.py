"""A smoke run of scripts/bench_tools.py with the router only (no model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tools_router_only() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_tools.py"), "--no-model"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "60 utterances, 40 need a tool, 20 none" in proc.stdout
    assert "router (embedded model's tool picker)" in proc.stdout
    assert "router on the held-out wordings" in proc.stdout
