"""The interactive session in a real terminal (tmux): the prompt, streaming, Ctrl+C and Ctrl+D."""

from __future__ import annotations

import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, command: str, env: dict[str, str]):
        self.name = f"pv-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(ROOT))} && env {exports} {command}; echo EXIT=$?; sleep 60"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                "110",
                "-y",
                "40",
                "bash",
                "-c",
                script,
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-t", self.name], capture_output=True, text=True
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, check: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def term(isolated_home):
    sessions: list[Tmux] = []

    def start(*args: str) -> Tmux:
        env = {"PERSLM_VOICE_HOME": str(isolated_home), "TERM": "xterm-256color"}
        command = " ".join([shlex.quote(sys.executable), "-m", "perslm_voice", *args])
        session = Tmux(command, env)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def prompt_line(screen: str) -> str:
    lines = [line for line in screen.splitlines() if "you>" in line]
    return lines[-1] if lines else ""


def test_typed_turns_ctrl_c_and_ctrl_d(term, isolated_home):
    t = term("--user", "tty")
    t.wait_for(lambda s: "[Listening] you>" in s)
    assert "perslm-voice" in t.screen() and "no microphone" in t.screen().lower()

    t.keys("Write a very long story about a dragon who learns to bake bread.", "Enter")
    t.keys("half typed")  # the user types while the reply streams
    t.wait_for(lambda s: "assistant:" in s)
    # Streaming output never breaks the line being typed: it stays whole on the prompt line.
    assert prompt_line(t.screen()).rstrip().endswith("you> half typed")

    t.keys("C-c")  # stops the reply, keeps the session
    t.wait_for(lambda s: "[interrupted]" in s)
    t.wait_for(lambda s: prompt_line(s).rstrip().endswith("[Listening] you> half typed"))
    t.keys("C-u", "/help", "Enter")
    t.wait_for(lambda s: "/retry" in s and "/timings" in s)

    t.keys("C-d")
    screen = t.wait_for(lambda s: "EXIT=" in s, timeout=20)
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    db = sqlite3.connect(isolated_home / "data" / "perslm-voice.db")
    rows = db.execute("SELECT role, interrupted FROM turns ORDER BY id").fetchall()
    db.close()
    assert rows == [("user", 0), ("assistant", 1)]  # the cut-off reply is kept, marked


def test_a_line_typed_while_the_assistant_speaks_interrupts_it(term, isolated_home, tmp_path):
    t = term("--user", "tty", "--input-mode", "text", "--audio-output", str(tmp_path / "out.wav"))
    t.wait_for(lambda s: "[Listening] you>" in s)
    t.keys("Please tell me a long story about a brave knight and a friendly dragon.", "Enter")
    t.wait_for(lambda s: "[Speaking] you>" in s)
    t.keys("Actually, what time is it?", "Enter")
    t.wait_for(lambda s: "[interrupted]" in s)
    t.wait_for(lambda s: "[Listening] you>" in prompt_line(s), timeout=60)
    t.keys("/quit", "Enter")
    assert "EXIT=0" in t.wait_for(lambda s: "EXIT=" in s, timeout=20)
    db = sqlite3.connect(isolated_home / "data" / "perslm-voice.db")
    rows = db.execute("SELECT role, text, interrupted, heard FROM turns ORDER BY id").fetchall()
    db.close()
    assert [r[0] for r in rows] == ["user", "assistant", "user", "assistant"]
    first = rows[1]
    assert first[2] == 1 and first[3] is not None
    assert first[2] == 1 and len(first[3].split()) < len(first[1].split())  # heard a part only
