"""A clone alone passes its tests: the recordings live in tests/audio, with a manifest, and nothing
in tests/ or scripts/ reads outside the repository; CI turns a skip for an installed part into a
failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import soundfile

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "tests" / "audio"


def test_every_recording_is_in_the_manifest_with_what_is_said_source_and_licence():
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    listed = {entry["file"] for entry in manifest["files"]}
    on_disk = {p.name for p in AUDIO.iterdir()} - {"manifest.json"}
    assert listed == on_disk
    for entry in manifest["files"]:
        assert entry["says"] and entry["source"] and entry["licence"], entry["file"]
        if entry["file"].endswith((".wav", ".flac", ".aiff")):
            assert soundfile.info(AUDIO / entry["file"]).duration > 0.5
    turns = {e["file"]: e.get("turns") for e in manifest["files"]}
    assert turns["ami_trn09.wav"][2] == {
        "speaker": "FEE083",
        "start_s": 1.854,
        "duration_s": 28.146,
    }


# A path that leaves the checkout: the folder above ROOT, or a parent two or more levels up.
OUTSIDE = re.compile(r"ROOT\.parent\b|\.parents\[[2-9]\]|\.\./shared|[\"']shared[\"']")


def test_nothing_in_tests_or_scripts_reads_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for folder in ("tests", "scripts")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".sh") and path.name != "test_self_contained.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_in_ci_a_skip_for_an_installed_part_fails_and_an_optional_one_stays_a_skip(tmp_path):
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n"
        "from skips import not_here, optional\n"
        "def test_installed():\n    pytest.skip('piper extra not installed')\n"
        "@pytest.mark.skipif(True, reason='tmux is not installed')\n"
        "def test_installed_mark():\n    pass\n"
        "def test_optional():\n    pytest.skip(optional('livekit is not installed'))\n"
        "def test_machine():\n    pytest.skip(not_here('it has a microphone'))\n"
    )

    # Collected beside a copy of this suite's conftest.py and skips.py, with the real hook.
    for name in ("conftest.py", "skips.py"):
        (tmp_path / name).write_text((ROOT / "tests" / name).read_text())

    def run(ci: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**_env(), "CI": ci},
            cwd=tmp_path,
            timeout=120,
        )

    ci = run("true")
    assert ci.returncode == 1, ci.stdout
    # A skip in the call is a failure; one in set-up (a skipif mark) is reported as an error.
    assert "1 failed, 2 skipped, 1 error" in ci.stdout
    assert "FAILED test_skips.py::test_installed -" in ci.stdout
    assert "ERROR test_skips.py::test_installed_mark -" in ci.stdout
    assert "CI=true: skipped for a part that scripts/test.sh installs" in ci.stdout
    local = run("")
    assert local.returncode == 0 and "4 skipped" in local.stdout, local.stdout

    # A whole module skipped while it is collected (a module-level importorskip) fails too.
    (tmp_path / "test_skips.py").write_text(
        "import pytest\npytest.importorskip('no_such_module_installed_here')\n"
        "def test_never():\n    pass\n"
    )
    ci = run("true")
    assert ci.returncode == 2, ci.stdout  # pytest's code for an error while collecting
    assert "ERROR test_skips.py - CI=true: skipped for a part that scripts/test.sh" in ci.stdout
    local = run("")
    assert local.returncode == 5 and "1 skipped" in local.stdout  # 5: nothing ran, nothing failed


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
