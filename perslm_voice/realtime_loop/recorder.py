"""``--record FILE``: the whole conversation in one stereo WAV, as it was heard.

Left: what the microphone heard (the user, and the room). Right: the assistant's voice as it
played, on the same clock, cut where it was interrupted. An observer of the session's events
(``AudioFrame`` in, ``AudioPlayed`` and ``AudioSilenced`` out); the file is written as the
conversation goes, a couple of seconds behind it (a piece of the reply is placed when it starts
playing, and a barge-in cuts what was placed after it).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.resample import resample
from ..errors import AudioError
from ..events import SAMPLE_RATE_HZ, AudioFrame, AudioPlayed, AudioSilenced

log = logging.getLogger(__name__)

BEHIND_S = 2.0  # the file is written this far behind the conversation
USER, ASSISTANT = 0, 1  # channels


class Recorder:
    """Writes the conversation to ``path`` (a 16 kHz stereo WAV)."""

    def __init__(self, path: str | Path):
        import soundfile

        self.path = Path(path)
        try:
            self._file = soundfile.SoundFile(
                str(self.path), "w", SAMPLE_RATE_HZ, 2, "PCM_16", format="WAV"
            )
        except (OSError, RuntimeError) as exc:
            raise AudioError(f"cannot record to {self.path}: {exc}") from None
        self._t0: float | None = None
        self._written = 0  # samples written; the buffer starts there
        self._buffer = np.zeros((0, 2), np.float32)

    def _index(self, t: float) -> int:
        if self._t0 is None:
            self._t0 = t
        return round((t - self._t0) * SAMPLE_RATE_HZ)

    def _place(self, channel: int, start: int, samples: np.ndarray) -> None:
        """Add ``samples`` to ``channel`` from sample ``start`` on (what is written is final)."""
        skip = max(0, self._written - start)
        samples = samples[skip:]
        start += skip
        if not len(samples):
            return
        end = start + len(samples) - self._written
        if end > len(self._buffer):
            grown = np.zeros((end, 2), np.float32)
            grown[: len(self._buffer)] = self._buffer
            self._buffer = grown
        lo = start - self._written
        self._buffer[lo:end, channel] += samples.astype(np.float32)

    def _flush(self, upto: int) -> None:
        n = min(len(self._buffer), upto - self._written)
        if n <= 0:
            return
        block, self._buffer = self._buffer[:n], self._buffer[n:]
        self._file.write(np.clip(np.round(block), -32768, 32767).astype(np.int16))
        self._written += n

    def __call__(self, event: Any) -> None:
        if isinstance(event, AudioFrame):
            t_first = event.t_capture - len(event.samples) / event.sample_rate_hz
            samples = resample(event.samples, event.sample_rate_hz, SAMPLE_RATE_HZ)
            self._place(USER, self._index(t_first), samples)
        elif isinstance(event, AudioPlayed):
            chunk = event.chunk
            samples = resample(chunk.samples, chunk.sample_rate_hz, SAMPLE_RATE_HZ)
            self._place(ASSISTANT, self._index(event.t_start), samples)
        elif isinstance(event, AudioSilenced):
            cut = max(0, self._index(event.t) - self._written)
            self._buffer[cut:, ASSISTANT] = 0.0
        else:
            return
        self._flush(self._index(time.monotonic() - BEHIND_S))

    def close(self) -> None:
        self._flush(self._written + len(self._buffer))
        self._file.close()
        log.info("recorded the conversation to %s", self.path)


def attach_recorder(session: Any, path: str | Path) -> Recorder:
    """Record ``session`` to ``path`` (AudioError when the file cannot be written)."""
    recorder = Recorder(path)
    session.subscribe(recorder, AudioFrame, AudioPlayed, AudioSilenced)
    session.on_close(recorder.close)
    return recorder
