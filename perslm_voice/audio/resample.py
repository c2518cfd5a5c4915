"""Streaming conversion of any audio (rate, channels, sample format) to 16 kHz mono int16 frames."""

from __future__ import annotations

import numpy as np

from ..events import FRAME_SAMPLES, SAMPLE_RATE_HZ


def to_mono_float32(block: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples,) or (samples, channels) block into float32 in -1..1."""
    data = np.asarray(block)
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        data = data.astype(np.float32) / 2147483648.0
    else:
        data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


class Resampler:
    """Mono float32 at ``in_rate_hz`` in, int16 at ``out_rate_hz`` out, block by block.

    Uses libswresample through PyAV (a dependency of faster-whisper): proper anti-aliasing, and state
    carried across blocks so block edges leave no clicks. At equal rates it passes samples through.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ):
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self._resampler = None
        if self.in_rate_hz != self.out_rate_hz:
            import av  # imported here: only needed when the rates differ

            self._av = av
            self._resampler = av.audio.resampler.AudioResampler(
                format="s16", layout="mono", rate=self.out_rate_hz
            )

    def process(self, mono: np.ndarray) -> np.ndarray:
        """Resample one block of mono float32 samples; returns what is ready (may be empty)."""
        if self._resampler is None:
            return float_to_int16(mono)
        if mono.size == 0:
            return np.zeros(0, np.int16)
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono, dtype=np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = self.in_rate_hz
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held by the filter, at the end of the stream."""
        if self._resampler is None:
            return np.zeros(0, np.int16)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list) -> np.ndarray:
        if not frames:
            return np.zeros(0, np.int16)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


class FrameChunker:
    """Cuts a stream of int16 samples into fixed frames of ``frame_samples`` (512: 32 ms at 16 kHz)."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES):
        self.frame_samples = frame_samples
        self._pending = np.zeros(0, np.int16)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        count = len(data) // self.frame_samples
        frames = [
            data[i * self.frame_samples : (i + 1) * self.frame_samples].copy() for i in range(count)
        ]
        self._pending = data[count * self.frame_samples :].copy()
        return frames

    def flush(self) -> list[np.ndarray]:
        """The last partial frame, padded with silence (none if nothing is pending)."""
        if not self._pending.size:
            return []
        frame = np.zeros(self.frame_samples, np.int16)
        frame[: len(self._pending)] = self._pending
        self._pending = np.zeros(0, np.int16)
        return [frame]


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Linear-interpolation resampling of int16 mono audio (good enough for speech playback)."""
    if from_hz == to_hz or len(samples) == 0:
        return samples
    n_out = max(1, round(len(samples) * to_hz / from_hz))
    positions = np.arange(n_out) * (from_hz / to_hz)
    out = np.interp(positions, np.arange(len(samples)), samples.astype(np.float32))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
