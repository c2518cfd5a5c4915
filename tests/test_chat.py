"""The typed conversation through the real CLI, the real embedded model and a real SQLite file."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from perslm_voice import RealtimeLoop
from perslm_voice.ui.console import PlainUI

ROOT = Path(__file__).resolve().parents[1]


def stored_turns(home: Path) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(home / "data" / "perslm-voice.db")
    try:
        return db.execute("SELECT role, text, source FROM turns ORDER BY id").fetchall()
    finally:
        db.close()


def test_piped_question_streams_a_reply_and_stores_both_turns(run_cli, isolated_home):
    result = run_cli("--user", "demo", input="What is the capital of France?\n/quit\n")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    reply = out.split("assistant:", 1)[1]
    assert len(reply.strip()) > 10
    assert "Traceback" not in err
    turns = stored_turns(isolated_home)
    assert turns[0] == ("user", "What is the capital of France?", "keyboard")
    assert turns[1][0] == "assistant" and turns[1][1].strip()
    assert turns[1][1].split()[0] in reply  # what was shown is what was stored


def test_the_next_prompt_is_read_before_the_user_speaks(run_cli, isolated_home, tmp_path):
    log_file = tmp_path / "session.log"
    result = run_cli(
        "--user", "demo", "--log-level", "debug", "--log-file", str(log_file),
        input="Hello!\nWhat is two plus two?\n/quit\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    # Once when the model is ready (the system message), then after each turn (and its history).
    read = [
        int(n)
        for n in re.findall(r"read the next prompt's first (\d+) tokens", log_file.read_text())
    ]
    assert len(read) >= 2, log_file.read_text()
    assert max(read) > min(read)


def test_end_of_input_ends_the_session_with_exit_0(run_cli, isolated_home):
    result = run_cli("--user", "demo", input="Hello!\n")  # no /quit: the pipe simply ends
    assert result.returncode == 0, result.stderr.decode()
    assert [t[0] for t in stored_turns(isolated_home)] == ["user", "assistant"]


def test_bad_typed_input_is_survived_and_kept(run_cli, isolated_home):
    long_line = "tell me more " * 8000  # about 100 kB pasted on one line
    data = (
        b"\n   \n"  # empty lines are skipped
        + b"bell\x07 and \x1b[31mescape\x1b[0m\n"
        + b"bad utf8 \xff\xfe here\n"
        + long_line.encode()
        + b"\n/quit\n"
    )
    result = run_cli("--user", "demo", input=data, timeout=300)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err + result.stdout.decode()
    assert "not valid UTF-8" in result.stdout.decode()
    users = [t[1] for t in stored_turns(isolated_home) if t[0] == "user"]
    assert users[0] == "bell and [31mescape [0m"  # control characters dropped, the words kept
    assert users[1] == "bad utf8 \ufffd\ufffd here"
    assert users[2] == long_line.strip()  # the whole pasted line is kept


@pytest.mark.parametrize("name", ["../etc/passwd", "robert'); DROP TABLE turns;--", "a b"])
def test_hostile_user_names_are_refused_with_exit_2(run_cli, name):
    result = run_cli("--user", name, input="hi\n")
    assert result.returncode == 2
    assert "not a valid user name" in result.stderr.decode()


def test_unwritable_data_dir_still_converses(run_cli, isolated_home):
    # A file where the data folder should be: no one, root included, can create the store there.
    (isolated_home / "data").write_text("in the way")
    result = run_cli("--user", "demo", input="Hi there\n/quit\n")
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "No memory this session" in out and "assistant:" in out


def test_store_that_is_not_sqlite_is_left_alone(run_cli, isolated_home):
    store = isolated_home / "data" / "perslm-voice.db"
    store.parent.mkdir()
    store.write_bytes(b"my notes, not a database\n")
    result = run_cli("--user", "demo", input="Hi\n/quit\n")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "No memory this session" in out and str(store) in out
    assert store.read_bytes() == b"my notes, not a database\n"


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "perslm_voice", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def test_timeout_ends_an_idle_session(isolated_home):
    proc = spawn("--user", "demo", "--timeout", "1.5")
    started = time.monotonic()
    proc.wait(timeout=60)  # stdin stays open: only the timeout can end it
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    assert proc.returncode == 0, err.decode()
    assert "No turn for 1.5 s" in out.decode()
    assert time.monotonic() - started < 30


def test_sigterm_ends_the_session_cleanly(isolated_home):
    proc = spawn("--user", "demo")
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the banner is out: the session runs
    assert b"perslm-voice" in line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "perslm_voice.realtime_loop", "--help"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    text = result.stdout.decode()
    assert result.returncode == 0
    for option in ("--user", "--config", "--timeout", "--log-level", "--input-mode"):
        assert option in text


def test_python_api_start_blocks_and_stop_is_idempotent(isolated_home):
    read_end, write_end = os.pipe()  # a keyboard that never types
    stdin = os.fdopen(read_end, "rb")
    loop = RealtimeLoop(user_id="api", ui=PlainUI(input_stream=stdin), timeout=600)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(loop.start()))
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # start() blocks while the session runs
    started = time.monotonic()
    loop.stop()
    loop.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and result == [0]
    assert time.monotonic() - started < 2
    loop.stop()  # after the end too
    os.close(write_end)
    stdin.close()


def test_the_readme_observer_example_runs_as_it_is(tmp_path, isolated_home):
    """The event API's example in the README is real: run it, as a reader would paste it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Observers") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n\n")]
    script = tmp_path / "observer.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "timing marks]" in done.stdout and len(done.stdout.split("[")[0].strip()) > 0


def test_a_timer_due_while_a_reply_plays_is_said_and_shown(isolated_home, tmp_path):
    """The embedded model's router sets the timer; it falls due while the next reply is spoken
    (to a real-time WAV): said inside that reply's voice, shown after its text, stored."""
    voice = tmp_path / "voice.wav"
    proc = spawn("--user", "ann", "--audio-output", str(voice))
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in proc.stdout))
    reader.start()
    proc.stdin.write(b"Set a timer for 4 seconds.\nTell me a story about the sea.\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while not any("Your timer is done." in line for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.2)
    proc.stdin.close()
    proc.wait(timeout=90)
    reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, proc.stderr.read().decode()
    story_at = out.index("assistant:", out.index("A 4 seconds timer is set."))
    assert story_at < out.index("Your timer is done.")
    turns = stored_turns(isolated_home)
    assert ("assistant", "Your timer is done.", "reminder") in turns
    assert [t[0] for t in turns].count("assistant") == 3  # the timer, the story, the reminder
    assert voice.stat().st_size > 16_000 * 2 * 3  # seconds of voice were played
