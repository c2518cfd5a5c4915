"""`perslm-voice transcribe` and `devices` through the real CLI in a subprocess."""

from __future__ import annotations

import json
import wave

import numpy as np


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


def test_english_recording_is_one_line(run_cli, audio_dir):
    result = run_cli("transcribe", str(audio_dir / "english.wav"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "One, two, three."


def test_digit_groups_as_json_segments(run_cli, audio_dir):
    result = run_cli("transcribe", str(audio_dir / "vosk_test.wav"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["file"].endswith("vosk_test.wav") and data["language"] == "en"
    segments = data["segments"]
    assert len(segments) == 3
    assert all(s["start"] < s["end"] for s in segments)
    assert all(a["end"] < b["start"] for a, b in zip(segments, segments[1:], strict=False))
    assert "90210" in segments[1]["text"]


def test_silence_and_white_noise_give_no_segments(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    noise = np.clip(rng.normal(0, 0.3, 16000 * 5), -1, 1) * 32767
    for name, samples in (("silence.wav", np.zeros(16000 * 10)), ("noise.wav", noise)):
        path = write_wav(tmp_path / name, samples.astype(np.int16))
        result = run_cli("transcribe", str(path), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["segments"] == []


def test_a_french_speaker_is_reported_not_transcribed(run_cli, audio_dir):
    result = run_cli("transcribe", str(audio_dir / "french.aiff"))
    assert result.returncode == 0
    assert result.stdout.decode().strip() == ""
    assert "not transcribed" in result.stderr.decode()


def test_bad_files_give_one_error_line(run_cli, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x00\x01 definitely not audio" * 10)
    for path, exit_code in ((garbage, 1), (tmp_path / "missing.wav", 1), (tmp_path, 1)):
        result = run_cli("transcribe", str(path))
        err = result.stderr.decode()
        assert result.returncode == exit_code
        assert err.startswith("Error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    missing_arg = run_cli("transcribe")
    assert missing_arg.returncode == 2 and b"Missing argument" in missing_arg.stderr


def test_devices_explains_why_there_are_none(run_cli):
    result = run_cli("devices")
    assert result.returncode == 0, result.stderr
    data = json.loads(run_cli("devices", "--json").stdout)
    assert set(data) >= {"inputs", "outputs", "default_input", "default_output", "problem"}
    if not data["inputs"]:
        assert "no microphone" in result.stdout.decode()
        assert data["problem"].startswith("no microphone")
