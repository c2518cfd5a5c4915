"""The voice loop end to end: a real recording in, real models, the voice out to a WAV file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from perslm_voice.realtime_loop import INTERRUPTED_DASH, INTERRUPTED_NOTE

ROOT = Path(__file__).resolve().parents[1]


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_recording_in_text_and_voice_out(run_cli, audio_dir, tmp_path, stored_turns):
    reply = tmp_path / "reply.wav"
    result = run_cli(
        "--user", "demo", "--audio-input", str(audio_dir / "vosk_test.wav"),
        "--audio-output", str(reply), input="",
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "you (voice):" in out and "assistant:" in out
    stored = stored_turns()
    heard = [t for t in stored if t["role"] == "user"]
    assert [t["source"] for t in heard] == ["voice"] * len(heard)
    digits = "".join(ch for t in heard for ch in t["text"] if ch.isdigit())
    assert len(heard) == 3 and len(digits) >= 12  # three groups of five digits, give or take one
    assert wav_seconds(reply) > 0.5
    answered = [t for t in stored if t["role"] == "assistant"]
    assert any("first_audio_played" in t["timings"] for t in answered)
    for t in answered:
        marks = t["timings"]
        if "first_audio_played" not in marks:
            continue
        # The stages happened in order; a reply started speculatively, inside the end-of-speech
        # window, is ahead of the transcript's confirmation but is never heard before it.
        started = marks.get("reply_speculative", marks["transcript_ready"])
        assert marks["speech_end"] <= marks["transcript_ready"] <= marks["first_audio_played"]
        assert (
            marks["speech_end"]
            <= started
            <= marks["first_token"]
            <= marks["first_audio_synthesized"]
            <= marks["first_audio_played"]
        )
    stats = run_cli("stats", "--user", "demo", "--json")
    summary = json.loads(stats.stdout)
    assert summary["speech_end_to_first_audio_ms"]["p50"] > 0
    assert summary["stages"]["stt_ms"]["n"] >= 1


@pytest.fixture(scope="module")
def long_question(tmp_path_factory, speak) -> Path:
    """A question that gets a long answer, spoken by Piper."""
    out = tmp_path_factory.mktemp("speech") / "question.wav"
    return speak("Please tell me a long story about a brave knight and a friendly dragon.", out)


def piper_samples(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == PIPER_RATE
    return samples


PIPER_RATE = 22050
# A wider end-of-speech window than the default 0.5 s, so that the early transcript (at 30 % of
# it) is ready long before it closes, even on a busy machine.
WIDE_WINDOW = "speech:\n  audio:\n    silence_duration: 1.0\n"


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * PIPER_RATE), np.float32)


def session_on(run_cli, tmp_path: Path, parts: list[np.ndarray]) -> str:
    """A voice session on ``parts`` (Piper-rate audio) with the wide window; its debug log."""
    recording = tmp_path / "in.wav"
    soundfile.write(recording, np.concatenate(parts), PIPER_RATE)
    config = tmp_path / "wide.yaml"
    config.write_text(WIDE_WINDOW)
    result = run_cli(
        "--user", "demo", "--config", str(config), "--audio-input", str(recording),
        "--audio-output", str(tmp_path / "reply.wav"), "--log-level", "debug", input="",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return result.stderr.decode()


def test_the_reply_starts_inside_the_silence_window_and_is_heard_after_it(
    run_cli, speak, tmp_path, stored_turns
):
    question = piper_samples(speak("What is the capital of France?", tmp_path / "q.wav"))
    log = session_on(run_cli, tmp_path, [silence(0.5), question, silence(3)])
    assert re.search(r"reply: started speculatively on '[^']*capital", log)
    assert "reply: the speculative reply stands" in log
    reply = next(t for t in stored_turns() if t["role"] == "assistant")
    marks = reply["timings"]
    # Begun before the end of speech was confirmed, heard only after it.
    assert marks["speech_end"] < marks["reply_speculative"] < marks["transcript_ready"]
    assert marks["first_audio_played"] >= marks["transcript_ready"]
    assert wav_seconds(tmp_path / "reply.wav") > 0.5


def test_a_pause_inside_a_sentence_drops_the_speculative_reply(
    run_cli, speak, tmp_path, stored_turns
):
    first = piper_samples(speak("What is the capital", tmp_path / "a.wav"))
    rest = piper_samples(speak("of France?", tmp_path / "b.wav"))
    pause = silence(0.6)  # with Piper's own margins: inside the 1 s window, past its 30 %
    log = session_on(run_cli, tmp_path, [silence(0.5), first, pause, rest, silence(3)])
    # The early transcript of the first half started a reply, which the rest of the sentence
    # dropped; the whole sentence got the one reply.
    partial = re.search(r"reply: started speculatively on '([^']*capital\W*)'", log)
    assert partial and "France" not in partial.group(1), log
    assert f"reply: the speculative reply to '{partial.group(1)}' is dropped" in log
    stored = stored_turns()
    users = [t["text"] for t in stored if t["role"] == "user"]
    assert len(users) == 1 and "capital" in users[0] and "France" in users[0]
    assert len([t for t in stored if t["role"] == "assistant"]) == 1


def test_speaking_over_the_reply_interrupts_it(
    run_cli, audio_dir, long_question, tmp_path, stored_turns
):
    question, rate = soundfile.read(long_question, dtype="float32")
    person, person_rate = soundfile.read(audio_dir / "vosk_test.wav", dtype="float32")
    person = np.interp(
        np.arange(0, len(person), person_rate / rate), np.arange(len(person)), person
    ).astype(np.float32)
    gap = np.zeros(int(2.5 * rate), np.float32)  # the reply starts within it and goes on
    recording = tmp_path / "barge-in.wav"
    soundfile.write(recording, np.concatenate([question, gap, person, gap]), rate)
    record = tmp_path / "talk.wav"
    result = run_cli(
        "--user", "demo", "--audio-input", str(recording), "--record", str(record),
        "--audio-output", str(tmp_path / "reply.wav"), "--log-level", "debug", input="",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    listen_to_the_record(
        record, question_s=len(question) / rate, onset_s=(len(question) + len(gap)) / rate
    )
    stored = stored_turns()
    first_reply = next(t for t in stored if t["role"] == "assistant")
    assert first_reply["interrupted"] == 1
    heard_words = (first_reply["heard"] or "").split()
    assert heard_words and heard_words == first_reply["text"].split()[: len(heard_words)]
    assert len(heard_words) < len(first_reply["text"].split())
    assert "barge_in_detected" in first_reply["timings"] and "silenced" in first_reply["timings"]
    # What the person said was heard after all, and answered.
    users = [t["text"] for t in stored if t["role"] == "user"]
    assert len(users) >= 2 and any(ch.isdigit() for ch in users[1])
    # The next prompt holds the reply as far as it was heard, cut off with a dash that the
    # system message explains.
    log = result.stderr.decode()
    assert f"[assistant] {first_reply['heard']}{INTERRUPTED_DASH}\n" in log
    assert INTERRUPTED_NOTE in log


def voiced(samples: np.ndarray, rate: int, block_s: float = 0.05) -> np.ndarray:
    """For each ``block_s`` of ``samples``: is there sound in it?"""
    n = int(rate * block_s)
    blocks = samples[: len(samples) // n * n].reshape(-1, n).astype(np.float64)
    return np.sqrt((blocks**2).mean(axis=1)) > 300


def listen_to_the_record(record: Path, question_s: float, onset_s: float) -> None:
    """--record: the microphone on the left, the assistant on the right, on one clock; the
    assistant's voice stops soon after the person starts talking over it."""
    from perslm_voice.config import Config
    from perslm_voice.stt import create_stt

    audio, rate = soundfile.read(record, dtype="int16")
    assert rate == 16000 and audio.ndim == 2 and audio.shape[1] == 2
    user, assistant = audio[:, 0], audio[:, 1]
    stt = create_stt(Config().speech)
    stt.load()
    heard = stt.transcribe(user[: int((question_s + 0.5) * rate)]).text.lower()
    assert "dragon" in heard and "night" in heard, heard  # "knight" is often heard "night"
    said = voiced(assistant, rate)
    block_s = 0.05
    at = int(onset_s / block_s)
    # The reply was playing when the person began (its first sound after the question) ...
    assert not said[: int(question_s / block_s)].any(), "the assistant spoke over the question"
    assert said[int(question_s / block_s) : at].any(), "no reply before the person spoke"
    # ... and went quiet soon after: a silence of half a second within 2.5 s of the onset.
    quiet = ~said[at : at + int(2.5 / block_s)]
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(int), [0]]))))[::2]
    assert len(runs) and runs.max() * block_s >= 0.5, said[at - 20 : at + 50].astype(int)
    answer = stt.transcribe(assistant[int(question_s * rate) : int(onset_s * rate)]).text
    assert answer.strip(), "the right channel holds no words"


def test_a_dead_speech_server_is_said_for_each_utterance(run_cli, audio_dir, stored_turns):
    """Speech-to-text on a server that is not there: each utterance is said to be lost (say it
    again or type it) in one line, listening goes on, and the recording's end ends the session."""
    from servers import free_port

    result = run_cli(
        "--user", "demo", "--input-mode", "voice", "--output-mode", "text",
        "--audio-input", str(audio_dir / "vosk_test.wav"), input="",
        env={
            "PERSLM_VOICE_SPEECH__BACKEND": "openai",
            "PERSLM_VOICE_SPEECH__BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "OPENAI_API_KEY": "sk-test-not-a-real-key",
        },
    )  # fmt: skip
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    lost = [line for line in out.splitlines() if line.startswith("Not heard: ")]
    assert len(lost) == 3, out  # the recording's three digit groups
    assert "unreachable" in lost[0] and "say it again, or type it" in lost[0]
    assert "sk-test-not-a-real-key" not in out + err
    assert "Traceback" not in err
    assert stored_turns() == []


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


@pytest.mark.parametrize("content", [b"", b"RIFF not really a wave file", bytes(range(256)) * 40])
def test_an_unreadable_recording_ends_the_session_with_one_line(run_cli, tmp_path, content):
    bad = tmp_path / "question.wav"
    bad.write_bytes(content)
    result = run_cli("--user", "demo", "--audio-input", str(bad), input="", timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.strip().count("\n") == 0 and err.startswith("Error: ") and "question.wav" in err


def test_timeout_ends_the_session_while_stdin_is_held_open(isolated_home):
    read_end, write_end = os.pipe()  # a pipe that nobody writes to, and nobody closes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "perslm_voice", "--user", "demo", "--timeout", "2",
             "--output-mode", "text"],
            stdin=read_end, capture_output=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    assert done.returncode == 0, done.stderr.decode()
    assert "No turn for 2 s" in done.stdout.decode()


def test_a_recording_fed_fast_never_splices_a_transcript_into_a_reply(run_cli, audio_dir):
    result = run_cli(
        "--user", "demo", "--audio-input", str(audio_dir / "vosk_test.wav"),
        "--audio-input-speed", "fast", "--output-mode", "text", input="",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    heard = [line for line in lines if "you (voice):" in line]
    assert len(heard) == 3, lines
    assert all(line.startswith("you (voice):") for line in heard), lines
    assert not any("you (voice):" in line for line in lines if line.startswith("assistant:"))


def test_french_heard_is_not_answered_and_the_user_is_told_why(run_cli, audio_dir, stored_turns):
    result = run_cli(
        "--user", "demo", "--audio-input", str(audio_dir / "french.aiff"),
        "--output-mode", "text", input="",
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "(didn't catch that: it sounded like French)" in out, out
    assert "assistant:" not in out  # rejected audio never becomes a reply
    assert stored_turns() == []
