"""A player that writes what would be played into a WAV file (``--audio-output``, ``say --out``)."""

from __future__ import annotations

import threading
import time
import wave
from collections import deque
from pathlib import Path

import numpy as np

from ..errors import AudioError
from ..events import AudioChunk
from .player import DEFAULT_SAMPLE_RATE_HZ, STOP_REPLY_TIMEOUT_S, Player, _Item, heard_part
from .resample import resample

WAV_BLOCK_MS = 20  # a real-time sink writes in blocks this long


class WavSink(Player):
    """Writes what would be played into a WAV file (``--audio-output``, tests, headless use).

    With ``realtime=False`` every chunk is written at once and counts as heard; with
    ``realtime=True`` a thread writes in 20 ms blocks at the pace of real playback, so stop()
    cuts the file where a speaker would have gone quiet.
    """

    def __init__(self, path: str | Path, realtime: bool = False, sample_rate_hz: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.realtime = realtime
        self.sample_rate_hz = sample_rate_hz
        self._wav: wave.Wave_write | None = None
        self._cond = threading.Condition(threading.RLock())
        self._pending: deque[_Item] = deque()
        self._heard: list[str] = []
        self._utterance_started = False
        self._clock_start: float | None = None  # when this utterance's first sample was due
        self._clock_samples = 0
        self._closed = False
        self._paused = False
        self._thread: threading.Thread | None = None
        self.frames_written = 0

    @property
    def description(self) -> str:
        return f"WAV file {self.path}"

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as exc:
            raise AudioError(f"cannot write audio to {self.path}: {exc.strerror}") from None
        if self.realtime and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wav-sink", daemon=True)
            self._thread.start()

    def _write(self, samples: np.ndarray) -> None:
        if self._wav is None:
            self._wav = wave.open(str(self.path), "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.sample_rate_hz or DEFAULT_SAMPLE_RATE_HZ)
        self._wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        self.frames_written += len(samples)

    def _begin_utterance(self) -> None:
        if not self._utterance_started:
            self._utterance_started = True
            self._heard = []
            self._announce_first_audio(time.monotonic())

    def enqueue(self, chunk: AudioChunk) -> None:
        if len(chunk.samples) == 0:
            return
        with self._cond:
            if self._closed:
                return
            if self.sample_rate_hz is None:
                self.sample_rate_hz = chunk.sample_rate_hz
            samples = resample(chunk.samples, chunk.sample_rate_hz, self.sample_rate_hz)
            if not self.realtime:
                self._begin_utterance()
                item = _Item(chunk.text, samples, self.sample_rate_hz)
                self._announce_play(item, time.monotonic())
                self._write(samples)
                self._heard.append(chunk.text)
                return
            self._pending.append(_Item(chunk.text, samples, self.sample_rate_hz))
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while True:
                while (self._paused or not self._pending) and not self._closed:
                    if not self._pending:
                        self._clock_start = None  # silence between utterances is not owed
                        self._utterance_started = False
                    self._cond.notify_all()  # wake wait_idle()
                    self._cond.wait()
                if self._closed:
                    return
                assert self.sample_rate_hz is not None
                if self._clock_start is None:
                    self._clock_start, self._clock_samples = time.monotonic(), 0
                    self._begin_utterance()
                due_s = self._clock_start + self._clock_samples / self.sample_rate_hz
                delay_s = due_s - time.monotonic()
                if delay_s > 0:
                    self._cond.wait(delay_s)  # woken early by stop() or close()
                    continue
                item = self._pending[0]
                if item.position == 0:
                    self._announce_play(item, due_s)
                block = max(1, self.sample_rate_hz * WAV_BLOCK_MS // 1000)
                piece = item.samples[item.position : item.position + block]
                self._write(piece)
                item.position += len(piece)
                self._clock_samples += len(piece)
                if item.position >= len(item.samples):
                    self._pending.popleft()
                    self._heard.append(item.text)

    def pause(self) -> None:
        with self._cond:
            if self._paused:
                return
            self._paused = True
            if self._pending:
                self._announce_silence(time.monotonic())
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if not self._paused:
                return
            self._paused = False
            if self._clock_start is not None:
                # The pause is not owed: the clock starts again now, where the sound was cut.
                self._clock_start, self._clock_samples = time.monotonic(), 0
                if self._pending and self._pending[0].position:
                    item = self._pending[0]
                    self._announce_play(item, self._clock_start, item.position)
            self._cond.notify_all()

    def stop(self) -> str:
        with self._cond:
            if self._pending and self.realtime:
                self._announce_silence(time.monotonic())
            self._paused = False
            heard = list(self._heard)
            if self._pending:
                item = self._pending[0]
                heard.append(heard_part(item.text, item.position / len(item.samples)))
            self._pending.clear()
            self._heard = []
            self._utterance_started = False
            self._clock_start = None
            self._cond.notify_all()
            return " ".join(part for part in heard if part)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            # Callers read idleness only after a chunk has been taken up or the queue emptied.
            result = self._cond.wait_for(lambda: not self._pending or self._closed, timeout)
            if not self.realtime:
                self._utterance_started = False  # the next chunk starts a new utterance
            return bool(result)

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._pending

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(STOP_REPLY_TIMEOUT_S)
        with self._cond:
            if self._wav is None:
                self._write(np.zeros(0, dtype=np.int16))  # a valid, empty WAV file
            assert self._wav is not None
            self._wav.close()
