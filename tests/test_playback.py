"""Playback for real through SDL's disk audio driver (the mixer writes what it plays to a file),
and the WAV sink: gapless chunks, stop() that cuts the sound, what was heard, no device."""

from __future__ import annotations

import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from perslm_voice.audio.playback import PygamePlayer, heard_part, open_player
from perslm_voice.audio.wav_sink import WavSink
from perslm_voice.config import AudioConfig
from perslm_voice.errors import AudioError
from perslm_voice.events import AudioChunk

RATE_HZ = 22050


def tone(seconds: float, freq_hz: float, rate_hz: int = RATE_HZ) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    # A cosine starts at its peak: an exact zero sample in the output can only be silence.
    return (np.cos(2 * np.pi * freq_hz * t) * 8000 + 0.5).astype(np.int16) | 1


def sound_span(raw: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(raw)
    return int(loud[0]), int(loud[-1]) + 1


def longest_silence(raw: np.ndarray) -> int:
    """The longest run of exact zeros between the first and the last sound, in samples."""
    start, end = sound_span(raw)
    zero = np.concatenate([[0], (raw[start:end] == 0).astype(np.int8), [0]])
    edges = np.diff(zero)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(runs.max()) if len(runs) else 0


@pytest.fixture
def disk_output(tmp_path, monkeypatch):
    """SDL's disk driver: the mixer's output goes to this file, paced like a real device."""
    path = tmp_path / "mixer.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(path))
    return path


def read_raw(path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2")


def test_chunks_play_back_to_back_without_gaps(disk_output):
    player = PygamePlayer(buffer_samples=512, sample_rate_hz=RATE_HZ)
    first_audio: list[float] = []
    player.follow(on_first_audio=first_audio.append)
    player.start()
    try:
        t0 = time.monotonic()
        texts = [f"chunk number {i}" for i in range(4)]
        for i, text in enumerate(texts):
            player.enqueue(AudioChunk(tone(0.25, 300 + 100 * i), RATE_HZ, text))
        # A chunk at another rate is resampled, not played too fast.
        player.enqueue(AudioChunk(tone(0.25, 700, 16000), 16000, "resampled"))
        assert not player.idle
        assert player.wait_idle(timeout=10)
        assert player.idle
        assert player.stop() == " ".join([*texts, "resampled"])  # all of it was heard
    finally:
        player.close()
    raw = read_raw(disk_output)
    start, end = sound_span(raw)
    assert abs((end - start) / RATE_HZ - 1.25) < 0.02
    assert longest_silence(raw) < 0.020 * RATE_HZ  # gaps below 20 ms (in fact none)
    assert len(first_audio) == 1 and 0 <= first_audio[0] - t0 < 0.5


def test_stop_cuts_the_sound_and_reports_what_was_heard(disk_output):
    player = PygamePlayer(buffer_samples=512, sample_rate_hz=RATE_HZ)
    first_audio: list[float] = []
    player.follow(on_first_audio=first_audio.append)
    player.start()
    try:
        player.enqueue(AudioChunk(tone(0.4, 440), RATE_HZ, "one two three four"))
        player.enqueue(AudioChunk(tone(2.0, 550), RATE_HZ, "five six seven eight nine ten"))
        player.enqueue(AudioChunk(tone(2.0, 660), RATE_HZ, "never heard at all"))
        time.sleep(1.4)
        t_stop = time.monotonic()
        heard = player.stop()
        stop_call_s = time.monotonic() - t_stop
        assert player.idle and player.wait_idle(0)
        # All of the first chunk and about half of the second, in whole words. On a loaded
        # machine the sleep can overshoot: judge by how long the sound had actually played.
        played_before_stop_s = t_stop - first_audio[0]
        assert heard.startswith("one two three four")
        if played_before_stop_s < 2.2:
            assert "never" not in heard and "ten" not in heard
        if played_before_stop_s > 0.6:
            assert heard.startswith("one two three four five")
        time.sleep(0.3)
        # After a stop the player takes the next utterance as usual.
        player.enqueue(AudioChunk(tone(0.2, 880), RATE_HZ, "again"))
        assert player.wait_idle(timeout=5)
    finally:
        player.close()
    assert stop_call_s < 0.5  # a reply from the mixer thread, not a wait for the sound to end
    assert len(first_audio) == 2
    raw = read_raw(disk_output)
    loud = np.flatnonzero(raw)
    # The first utterance's sound ends long before the 4.4 s queued: stop() truncated it.
    pauses = np.flatnonzero(np.diff(loud) > 0.1 * RATE_HZ)
    played_s = (loud[pauses[0]] - loud[0]) / RATE_HZ
    intended_s = t_stop - first_audio[0]
    assert played_s < 2.2
    # Sound after stop() (less the start latency); scripts/bench_tts.py measures it exactly.
    assert played_s - intended_s < 0.25


def test_no_audio_device_is_one_clear_error():
    # A real mixer failure, in a fresh process: SDL has no such driver.
    code = (
        "from perslm_voice.audio.playback import open_player\n"
        "from perslm_voice.config import AudioConfig\n"
        "from perslm_voice.errors import AudioError\n"
        "try:\n    open_player(AudioConfig())\n"
        "except AudioError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SDL_AUDIODRIVER": "nosuchdriver"},
    )
    assert done.stdout.strip() == (
        "no audio output device: Audio target 'nosuchdriver' not available"
    )


def test_dummy_driver_works_for_silent_sessions():
    player = open_player(AudioConfig())  # SDL_AUDIODRIVER=dummy from conftest
    try:
        assert isinstance(player, PygamePlayer)
        player.enqueue(AudioChunk(tone(0.1, 440), RATE_HZ, "short"))
        assert player.wait_idle(timeout=5)
    finally:
        player.close()
        player.close()  # idempotent


def test_wav_sink_writes_everything_at_once(tmp_path):
    path = tmp_path / "out.wav"
    sink = WavSink(path)
    started: list[float] = []
    sink.follow(on_first_audio=started.append)
    sink.start()
    sink.enqueue(AudioChunk(tone(0.5, 440), RATE_HZ, "Hello there."))
    sink.enqueue(AudioChunk(tone(0.5, 440, 16000), 16000, "How are you?"))
    assert sink.idle and sink.wait_idle(0)
    assert sink.stop() == "Hello there. How are you?"
    sink.close()
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE_HZ, 1, 2)
        assert abs(wav.getnframes() - RATE_HZ) <= 2
    assert len(started) == 1


def test_realtime_wav_sink_is_paced_and_cut_by_stop(tmp_path):
    path = tmp_path / "out.wav"
    sink = open_player(AudioConfig(), audio_output=str(path))
    assert isinstance(sink, WavSink) and sink.realtime
    t0 = time.monotonic()
    sink.enqueue(AudioChunk(tone(0.3, 440), RATE_HZ, "short first"))
    assert sink.wait_idle(timeout=5)
    assert time.monotonic() - t0 >= 0.28  # as long as it takes to hear it
    assert sink.stop() == "short first"
    sink.enqueue(AudioChunk(tone(2.0, 440), RATE_HZ, "a b c d e f g h i j"))
    time.sleep(0.5)
    heard = sink.stop()
    assert heard.split()[:2] == ["a", "b"] and "j" not in heard
    sink.close()
    with wave.open(str(path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 0.7 < seconds < 1.2


def test_heard_part_keeps_whole_words():
    assert heard_part("one two three four", 0.5) == "one two"
    assert heard_part("one two three four", 0.99) == "one two three"
    assert heard_part("one two", 1.5) == "one two"
    assert heard_part("one two", -1) == ""


def test_a_sink_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioError, match="cannot write audio"):
        WavSink(tmp_path / "file" / "out.wav").start()
