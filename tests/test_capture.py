"""Capture: file decoding at any rate/format, real-time pacing, echo mixing, and the real no-device paths."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from skips import not_here

from perslm_voice.audio import FileSource, FrameQueue, list_devices, open_microphone
from perslm_voice.audio.devices import NO_PORTAUDIO
from perslm_voice.audio.resample import FrameChunker, Resampler
from perslm_voice.config import AudioConfig
from perslm_voice.errors import AudioError

ROOT = Path(__file__).resolve().parents[1]


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


@pytest.mark.parametrize(
    "name, seconds",
    [("english.wav", 2.7), ("vosk_test.wav", 8.3), ("french.aiff", 2.5), ("chinese.flac", 1.0)],
)
def test_file_source_reads_every_real_recording_as_16k_frames(audio_dir, name, seconds):
    frames = list(FileSource(audio_dir / name, speed="fast").frames())
    assert all(f.dtype == np.int16 and f.shape == (512,) for f in frames)
    assert len(frames) * 512 / 16000 == pytest.approx(seconds, abs=0.15)
    assert max(int(np.abs(f).max()) for f in frames) > 3000  # there is speech in there


def test_stereo_48k_and_mp3_are_resampled_and_downmixed(tmp_path):
    t = np.arange(48000) / 48000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], axis=1)
    soundfile.write(tmp_path / "stereo.wav", stereo, 48000, subtype="PCM_16")
    soundfile.write(tmp_path / "tone.mp3", stereo, 48000, format="MP3")
    for name in ("stereo.wav", "tone.mp3"):
        audio = np.concatenate(list(FileSource(tmp_path / name, speed="fast").frames()))
        assert len(audio) == pytest.approx(16000, abs=1200)
        spectrum = np.abs(np.fft.rfft(audio[2000:14000].astype(np.float32)))
        peak_hz = np.argmax(spectrum) * 16000 / 12000
        assert peak_hz == pytest.approx(440, abs=5)


def test_resampler_keeps_pitch_and_length_across_blocks():
    rate = 44100
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    resampler = Resampler(rate)
    out = np.concatenate(
        [resampler.process(b) for b in np.array_split(tone, 37)] + [resampler.flush()]
    )
    assert len(out) == pytest.approx(16000, abs=40)
    spectrum = np.abs(np.fft.rfft(out[1000:15000].astype(np.float32)))
    assert np.argmax(spectrum) * 16000 / 14000 == pytest.approx(1000, abs=3)
    chunker = FrameChunker()
    frames = chunker.push(out[:1000]) + chunker.push(out[1000:]) + chunker.flush()
    assert sum(len(f) for f in frames) >= len(out) and all(len(f) == 512 for f in frames)


def test_realtime_pacing_timestamps_and_end_of_file(tmp_path):
    path = write_wav(tmp_path / "one_second.wav", np.zeros(16000, np.int16))
    source = FileSource(path)
    stamps: list[float] = []
    ended: list[str | None] = []
    done = threading.Event()
    started = time.monotonic()
    source.start(lambda f: stamps.append(f.t_capture), lambda r: (ended.append(r), done.set()))
    assert done.wait(5)
    elapsed = time.monotonic() - started
    assert ended == [None]
    assert len(stamps) == 32  # 16000 samples -> 31.25 frames, the last one padded
    assert elapsed == pytest.approx(32 * 0.032, abs=0.25)
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    source.stop()
    source.stop()  # idempotent


def test_stop_ends_a_realtime_file_without_calling_on_end(audio_dir):
    source = FileSource(audio_dir / "vosk_test.wav")
    frames: list[object] = []
    ended: list[object] = []
    source.start(frames.append, ended.append)
    time.sleep(0.3)
    source.stop()
    count = len(frames)
    time.sleep(0.2)
    assert 2 <= count <= 20 and len(frames) == count and ended == []


def test_add_echo_lands_after_its_delay(tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000, np.int16))
    source = FileSource(path, speed="fast")
    source.add_echo(np.full(1600, 10000, np.int16), delay_s=0.5, gain=0.5)
    audio = np.concatenate(list(source.frames()))
    loud = np.flatnonzero(audio)
    assert loud[0] == 8000 and loud[-1] == 8000 + 1599
    assert int(audio[8000]) == 5000


def test_frame_queue_drops_the_oldest_and_counts():
    queue = FrameQueue(3)
    for i in range(5):
        queue.put(i)
    assert queue.dropped == 2
    queue.close()
    assert [queue.get(), queue.get(), queue.get(), queue.get()] == [2, 3, 4, None]


@pytest.mark.parametrize("content", [None, b"this is not audio at all", b""])
def test_unreadable_files_raise_one_line_audio_errors(tmp_path, content):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        FileSource(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(AudioError, match="directory"):
        FileSource(tmp_path)


def test_no_sound_card_is_reported_not_raised():
    """This machine really has no sound card: PortAudio loads, and lists no input."""
    report = list_devices()
    if report.inputs:
        pytest.skip(not_here("it has a microphone; the no-device path cannot be shown here"))
    assert report.problem and report.problem.startswith("no microphone")
    assert report.to_dict()["inputs"] == []
    with pytest.raises(AudioError, match="no microphone"):
        open_microphone(AudioConfig())


def _portaudio_path() -> str | None:
    name = ctypes.util.find_library("portaudio")
    if not name:
        return None
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib"):
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return None


def test_portaudio_missing_for_real_in_a_private_mount_namespace():
    """Hide the real libportaudio from one process (unshare: a private mount namespace with /dev/null
    bound over the library file), so that `import sounddevice` really fails, as without libportaudio2."""
    library = _portaudio_path()
    if library is None or shutil.which("unshare") is None:
        pytest.skip("needs libportaudio on disk and unshare(1) to hide it from one process")
    probe = subprocess.run(["unshare", "-m", "-r", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(not_here(f"unshare is not permitted: {probe.stderr.decode().strip()}"))
    script = (
        "from perslm_voice.audio import list_devices, open_microphone\n"
        "from perslm_voice.config import AudioConfig\n"
        "from perslm_voice.errors import AudioError\n"
        "print(list_devices().problem)\n"
        "try:\n    open_microphone(AudioConfig())\nexcept AudioError as e:\n    print(e)\n"
    )
    shell = f'mount --bind /dev/null "{library}" && exec "$0" "$@"'
    env = dict(os.environ)
    result = subprocess.run(
        ["unshare", "-m", "-r", "sh", "-c", shell, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [NO_PORTAUDIO, NO_PORTAUDIO]
    devices = subprocess.run(
        ["unshare", "-m", "-r", "sh", "-c", shell, sys.executable, "-m", "perslm_voice", "devices"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert devices.returncode == 0, devices.stderr
    assert "PortAudio is not installed (apt install libportaudio2)" in devices.stdout
