"""Acoustic echo cancellation: WebRTC AEC3 (from ``pywebrtc-audio``, a 440 KB wheel, Apache-2.0)
on the microphone's frames."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from ..events import SAMPLE_RATE_HZ, AudioChunk, AudioFrame
from .played import _Reference
from .rules import AEC_BLOCK, AEC_INSTALL


def aec_available() -> bool:
    return importlib.util.find_spec("pywebrtc_audio") is not None


class EchoCanceller:
    """WebRTC AEC3 (``pywebrtc_audio.EchoCanceller``) on the listener's frames.

    ``played``/``silenced`` follow the player; ``process`` takes a 32 ms microphone frame and
    returns it with the echo of what was played removed. The canceller estimates the room's delay
    itself; the output lags the input by 10 ms (WebRTC works on 10 ms blocks).
    """

    description = "WebRTC echo cancellation"

    def __init__(self) -> None:
        if not aec_available():
            raise BackendUnavailable(f"echo cancellation needs pywebrtc-audio: {AEC_INSTALL}")
        import pywebrtc_audio

        # Delay 0: AEC3 finds the room's delay itself (the reference is what played, when).
        self._aec: Any = pywebrtc_audio.EchoCanceller(SAMPLE_RATE_HZ, 1, 0)
        self.reference = _Reference()
        self._in = np.zeros(0, np.int16)
        self._out = np.zeros(AEC_BLOCK, np.int16)  # primed: every frame finds 512 samples ready
        self._t_in = 0.0  # monotonic time of self._in[0]

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        self.reference.played(chunk, t_start)

    def silenced(self, t: float) -> None:
        self.reference.silenced(t)

    def process(self, frame: AudioFrame) -> AudioFrame:
        n = len(frame.samples)
        t_frame = frame.t_capture - n / SAMPLE_RATE_HZ
        if not len(self._in):
            self._t_in = t_frame
        self._in = np.concatenate([self._in, frame.samples.astype(np.int16)])
        blocks = []
        while len(self._in) >= AEC_BLOCK:
            near, self._in = self._in[:AEC_BLOCK], self._in[AEC_BLOCK:]
            far = self.reference.render(self._t_in, AEC_BLOCK).astype(np.int16)
            blocks.append(self._aec.process(np.ascontiguousarray(near), far))
            self._t_in += AEC_BLOCK / SAMPLE_RATE_HZ
        self._out = np.concatenate([self._out, *blocks])
        out, self._out = self._out[:n], self._out[n:]
        return AudioFrame(out.copy(), frame.t_capture)


def open_canceller(mode: str) -> EchoCanceller | None:
    """The canceller for ``audio.echo_cancellation`` ("none" or "webrtc")."""
    return EchoCanceller() if mode == "webrtc" else None
