"""The voice loop end to end: a real recording in, real models, the voice out to a WAV file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]


def turns(home: Path) -> list[dict]:
    db = sqlite3.connect(home / "data" / "perslm-voice.db")
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(
            "SELECT role, text, source, interrupted, heard, timings FROM turns ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    return [dict(r) | {"timings": json.loads(r["timings"] or "{}")} for r in rows]


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_recording_in_text_and_voice_out(run_cli, audio_dir, tmp_path, isolated_home):
    reply = tmp_path / "reply.wav"
    result = run_cli(
        "--user", "demo", "--audio-input", str(audio_dir / "vosk_test.wav"),
        "--audio-output", str(reply), input="",
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "you (voice):" in out and "assistant:" in out
    stored = turns(isolated_home)
    heard = [t for t in stored if t["role"] == "user"]
    assert [t["source"] for t in heard] == ["voice"] * len(heard)
    digits = "".join(ch for t in heard for ch in t["text"] if ch.isdigit())
    assert len(heard) == 3 and len(digits) >= 12  # three groups of five digits, give or take one
    assert wav_seconds(reply) > 0.5
    answered = [t for t in stored if t["role"] == "assistant"]
    assert any("first_audio_played" in t["timings"] for t in answered)
    for t in answered:
        marks = t["timings"]
        if "first_audio_played" in marks:  # the stages happened in order
            assert (
                marks["speech_end"]
                <= marks["transcript_ready"]
                <= marks["first_token"]
                <= marks["first_audio_synthesized"]
                <= marks["first_audio_played"]
            )
    stats = run_cli("stats", "--user", "demo", "--json")
    summary = json.loads(stats.stdout)
    assert summary["speech_end_to_first_audio_ms"]["p50"] > 0
    assert summary["stages"]["stt_ms"]["n"] >= 1


@pytest.fixture(scope="module")
def long_question(tmp_path_factory) -> Path:
    """A question that gets a long answer, spoken by Piper."""
    out = tmp_path_factory.mktemp("speech") / "question.wav"
    subprocess.run(
        [sys.executable, "-m", "perslm_voice", "say",
         "Please tell me a long story about a brave knight and a friendly dragon.", "--out", str(out)],
        check=True, capture_output=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    return out


def test_speaking_over_the_reply_interrupts_it(
    run_cli, audio_dir, long_question, tmp_path, isolated_home
):
    question, rate = soundfile.read(long_question, dtype="float32")
    person, person_rate = soundfile.read(audio_dir / "vosk_test.wav", dtype="float32")
    person = np.interp(
        np.arange(0, len(person), person_rate / rate), np.arange(len(person)), person
    ).astype(np.float32)
    gap = np.zeros(int(2.5 * rate), np.float32)  # the reply starts within it and goes on
    recording = tmp_path / "barge-in.wav"
    soundfile.write(recording, np.concatenate([question, gap, person, gap]), rate)
    result = run_cli(
        "--user", "demo", "--audio-input", str(recording),
        "--audio-output", str(tmp_path / "reply.wav"), input="",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    stored = turns(isolated_home)
    first_reply = next(t for t in stored if t["role"] == "assistant")
    assert first_reply["interrupted"] == 1
    heard_words = (first_reply["heard"] or "").split()
    assert heard_words and heard_words == first_reply["text"].split()[: len(heard_words)]
    assert len(heard_words) < len(first_reply["text"].split())
    assert "barge_in_detected" in first_reply["timings"] and "silenced" in first_reply["timings"]
    # What the person said was heard after all, and answered.
    users = [t["text"] for t in stored if t["role"] == "user"]
    assert len(users) >= 2 and any(ch.isdigit() for ch in users[1])


def test_no_microphone_is_said_and_the_session_goes_on_typed(run_cli):
    result = run_cli("--user", "demo", input="Hello there!\n/quit\n")
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "no microphone" in out.lower() and "type instead" in out
    assert "assistant:" in out


def test_sigterm_during_a_recording_ends_cleanly(audio_dir, tmp_path, isolated_home):
    reply = tmp_path / "reply.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perslm_voice", "--user", "demo",
         "--audio-input", str(audio_dir / "vosk_test.wav"), "--audio-output", str(reply)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert b"perslm-voice" in proc.stdout.readline()
    time.sleep(3.0)  # in the middle of the recording
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert time.monotonic() - sent < 3.0
    assert b"Traceback" not in err
    wav_seconds(reply)  # the WAV is complete and readable


def test_the_profile_voice_settings_win_over_the_config(run_cli, tmp_path):
    said = "Remember that my favourite colour is teal.\n/quit\n"  # a reply that is always the same
    lengths = {}
    for user, rate in (("steady", None), ("quick", "1.6")):
        if rate:
            assert run_cli("profile", "set", user, "--rate", rate).returncode == 0
        out = tmp_path / f"{user}.wav"
        result = run_cli(
            "--user", user, "--input-mode", "text", "--audio-output", str(out), input=said
        )
        assert result.returncode == 0, result.stderr.decode()
        assert "remember that your favourite colour is teal" in result.stdout.decode()
        lengths[user] = wav_seconds(out)
    assert lengths["quick"] < 0.85 * lengths["steady"]
