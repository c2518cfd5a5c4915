"""Audio sources: what the loop listens to, as 32 ms frames of 16 kHz mono int16.

A source runs on its own thread and hands each frame to ``on_frame`` (which must not block: the loop
passes a function that does ``loop.call_soon_threadsafe``). ``on_end(reason)`` is called once when the
source ends by itself: ``None`` at the end of a file, a one-line message when a device is lost. It is not
called after ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import AudioError, AudioFileError
from ..events import FRAME_SAMPLES, SAMPLE_RATE_HZ, AudioFrame
from .resample import FrameChunker, Resampler, to_mono_float32

log = logging.getLogger(__name__)

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
FrameCallback = Callable[[AudioFrame], None]
EndCallback = Callable[[str | None], None]


class AudioSource(ABC):
    """Something that produces audio frames in real time: a microphone, or a file played as one."""

    description: str = "audio"

    @abstractmethod
    def start(self, on_frame: FrameCallback, on_end: EndCallback) -> None:
        """Begin producing frames on the source's own thread; returns at once."""

    @abstractmethod
    def stop(self) -> None:
        """Stop producing frames and release the device or file (idempotent)."""


class FrameQueue:
    """A bounded hand-over between a producer that must never block and a consumer thread.

    When full, ``put`` drops the oldest item and counts it in ``dropped``: late audio is worth less
    than fresh audio, and the producer (an audio callback) must never wait.
    """

    def __init__(self, max_items: int):
        self._items: deque[Any] = deque()
        self._max_items = max(1, max_items)
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if len(self._items) >= self._max_items:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get(self) -> Any | None:
        """The next item, waiting for it; None once the queue is closed and empty."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


# The first four bytes of the containers libsndfile reads: WAV (RIFF, RIFX, RF64), AIFF (FORM),
# FLAC, OGG, CAF and AU.
SOUNDFILE_MAGIC = {b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"caff", b".snd"}


def check_audio_file(path: Path) -> str:
    """Which decoder reads ``path`` ("soundfile" or "av"), having decoded its first samples;
    AudioFileError with one line if none does (a missing or empty file, text renamed .wav,
    random bytes, a header with no samples after it)."""
    if not path.exists():
        raise AudioFileError(f"{path}: no such audio file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    try:
        if path.stat().st_size == 0:
            raise AudioFileError(f"{path}: the file is empty, not audio")
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        if magic not in SOUNDFILE_MAGIC:
            # libsndfile's MP3 decoder prints "Note: Illegal Audio-MPEG-Header" lines on stderr
            # for bytes that are not MP3; FFmpeg below reads MP3 and the rest quietly.
            raise ValueError("not a container libsndfile is asked to read")
        import soundfile

        with soundfile.SoundFile(str(path)) as f:
            if f.frames == 0 or len(f.read(frames=1, dtype="int16")) == 0:
                raise AudioFileError(f"{path}: the file holds no audio (0 samples)")
        return "soundfile"
    except AudioFileError:
        raise
    except Exception:  # not a format libsndfile reads: try FFmpeg below
        pass
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: the file has no audio stream")
            # FFmpeg's probe takes some random bytes for MP3, and a broken WAV header for a
            # stream of nothing; only decoded samples settle it.
            first = next(iter(container.decode(audio=0)), None)
            if first is None or first.samples == 0 or not first.sample_rate:
                raise AudioFileError(f"{path}: the file holds no audio it can decode")
        return "av"
    except AudioFileError:
        raise
    except Exception:
        raise AudioFileError(
            f"{path}: not a readable audio file (supported: WAV, FLAC, AIFF, MP3, OGG and what FFmpeg reads)"
        ) from None


_open_check = check_audio_file  # the name older callers import


class FileSource(AudioSource):
    """A recording played as if it were a microphone: any rate, channel count and common format.

    ``speed="realtime"`` paces frames at 32 ms each (what a live session hears); ``"fast"`` produces them
    as fast as they decode, stamped with a virtual clock (``t0`` + position in the file), so that
    ``t_capture - t0`` is the frame's end in file seconds. ``add_echo`` mixes other audio (e.g. the
    assistant's own voice) into the frames still to come, to test echo handling.
    """

    def __init__(self, path: str | Path, speed: Literal["realtime", "fast"] = "realtime"):
        self.path = Path(path).expanduser()
        self.speed = speed
        self._decoder = check_audio_file(self.path)
        self._check_decodes()
        self.description = f"file {self.path.name} ({speed})"
        self.t0: float = 0.0
        self._next_sample = 0  # stream position of the next frame, in 16 kHz samples
        self._echoes: list[tuple[int, np.ndarray]] = []  # (start sample, float32 samples)
        self.noise_rms = 0.0  # white noise mixed into every frame (the echo room's), int16 units
        self._rng = np.random.default_rng(0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- decoding ---------------------------------------------------------------------------
    def _check_decodes(self) -> None:
        """Decode up to the first samples through the real pipeline (a quarter second at most),
        so that a file that opens but yields nothing is refused now, not after the session
        started listening to it."""
        blocks = self._blocks()
        try:
            for block in blocks:
                if len(block):
                    return
        except AudioError:
            raise
        except Exception as exc:
            raise AudioFileError(f"{self.path}: cannot decode audio ({exc})") from None
        finally:
            blocks.close()
        raise AudioFileError(f"{self.path}: the file holds no audio it can decode")

    def _blocks(self) -> Iterator[np.ndarray]:
        """The file as int16 16 kHz mono blocks of about a quarter second."""
        if self._decoder == "soundfile":
            import soundfile

            with soundfile.SoundFile(str(self.path)) as f:
                resampler = Resampler(f.samplerate)
                for block in f.blocks(blocksize=max(1, f.samplerate // 4), dtype="float32"):
                    yield resampler.process(to_mono_float32(block))
                yield resampler.flush()
            return
        import av

        with av.open(str(self.path)) as container:
            to_16k = av.audio.resampler.AudioResampler(
                format="s16", layout="mono", rate=SAMPLE_RATE_HZ
            )
            for frame in container.decode(audio=0):
                for out in to_16k.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.int16)
            for out in to_16k.resample(None):
                yield out.to_ndarray().reshape(-1).astype(np.int16)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame of the file, pulled synchronously (no pacing, no thread), echoes mixed in."""
        chunker = FrameChunker()
        count = 0
        try:
            for block in self._blocks():
                for frame in chunker.push(block):
                    count += 1
                    yield self._mix(frame)
        except AudioError:
            raise
        except Exception as exc:  # a file that is corrupt past its header
            raise AudioFileError(f"{self.path}: cannot decode audio ({exc})") from None
        for frame in chunker.flush():
            count += 1
            yield self._mix(frame)
        if count == 0:  # it opened, yet nothing came out: not audio to listen to
            raise AudioFileError(f"{self.path}: the file holds no audio it can decode")

    # -- echo ---------------------------------------------------------------------------------
    def add_echo(self, samples_int16_16k: np.ndarray, delay_s: float, gain: float = 0.5) -> None:
        """Mix ``samples`` (scaled by ``gain``) into the frames produced ``delay_s`` from now.

        "Now" is the stream position of the next frame, so the echo lands at the same place in
        real-time and in fast mode.
        """
        scaled = np.asarray(samples_int16_16k, np.float32) * float(gain)
        with self._lock:
            start = self._next_sample + round(delay_s * SAMPLE_RATE_HZ)
            self._echoes.append((start, scaled))

    def add_noise(self, rms: float) -> None:
        """Mix white noise of ``rms`` (int16 units) into every frame from now on."""
        with self._lock:
            self.noise_rms = rms

    def cut_echoes(self, delay_s: float) -> None:
        """Drop the echo still to come ``delay_s`` from now (the sound that made it was stopped)."""
        with self._lock:
            cut = self._next_sample + round(delay_s * SAMPLE_RATE_HZ)
            self._echoes = [(start, echo[: max(0, cut - start)]) for start, echo in self._echoes]
            self._echoes = [(start, echo) for start, echo in self._echoes if len(echo)]

    def _mix(self, frame: np.ndarray) -> np.ndarray:
        with self._lock:
            begin = self._next_sample
            end = begin + len(frame)
            self._next_sample = end
            if not self._echoes and not self.noise_rms:
                return frame
            mixed = frame.astype(np.float32)
            if self.noise_rms:
                mixed += self._rng.normal(0.0, self.noise_rms, len(frame)).astype(np.float32)
            keep = []
            for start, echo in self._echoes:
                lo, hi = max(begin, start), min(end, start + len(echo))
                if lo < hi:
                    mixed[lo - begin : hi - begin] += echo[lo - start : hi - start]
                if start + len(echo) > end:
                    keep.append((start, echo))
            self._echoes = keep
        return np.clip(mixed, -32768, 32767).astype(np.int16)

    # -- the source -------------------------------------------------------------------------
    def start(self, on_frame: FrameCallback, on_end: EndCallback) -> None:
        if self._thread is not None:
            raise AudioError(f"{self.description}: already started")
        self.t0 = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(on_frame, on_end), name="perslm-file-source", daemon=True
        )
        self._thread.start()

    def _run(self, on_frame: FrameCallback, on_end: EndCallback) -> None:
        reason: str | None = None
        try:
            for index, samples in enumerate(self.frames()):
                t_end = self.t0 + (index + 1) * FRAME_S
                if self.speed == "realtime":
                    # Event.wait, not sleep: stop() interrupts the pacing at once.
                    if self._stop.wait(max(0.0, t_end - time.monotonic())):
                        return
                    t_end = time.monotonic()
                elif self._stop.is_set():
                    return
                on_frame(AudioFrame(samples, t_end))
        except AudioError as exc:
            reason = str(exc)
        if not self._stop.is_set():
            on_end(reason)

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
