"""The last seconds the listener heard, and what the barge-in check asks of them: the audio since
a moment with our voice taken out, how much of the latest sound is not our voice, and where the
user's part of an utterance our echo opened begins."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np

from ..echo import EchoGuard
from ..events import FRAME_SAMPLES, SAMPLE_RATE_HZ, AudioFrame

BARGE_IN_PRE_ROLL_S = 0.1  # a candidate's audio begins this long before its first voiced frame


class RecentAudio:
    """The microphone's latest frames (as heard, before any echo cancellation)."""

    def __init__(self, seconds: float, guard: EchoGuard | None):
        self.frames: deque[AudioFrame] = deque(
            maxlen=round(seconds * SAMPLE_RATE_HZ / FRAME_SAMPLES)
        )
        self.guard = guard
        self._user_from: float | None = None  # see user_speaks_from

    def append(self, frame: AudioFrame) -> None:
        self.frames.append(frame)

    def samples(self) -> np.ndarray:
        return np.concatenate([f.samples for f in self.frames])

    def _since(self, t: float) -> tuple[np.ndarray, float] | None:
        frames = [f for f in self.frames if f.t_capture > t]
        if not frames:
            return None
        t0 = frames[0].t_capture - len(frames[0].samples) / frames[0].sample_rate_hz
        return np.concatenate([f.samples for f in frames]), t0

    def hear(self, since: float) -> tuple[np.ndarray, float | None]:
        """The audio heard since ``since`` (with the pre-roll) with our voice taken out, and the
        share of it that is not our voice (None when nothing we played can be in it, or the
        sound check is off): for a barge-in candidate."""
        heard = self._since(since - BARGE_IN_PRE_ROLL_S)
        if heard is None:
            return np.zeros(0, np.int16), None
        if self.guard is None:
            return heard[0], None
        return self.guard.separate(*heard)

    def not_ours_lately(self, seconds: float) -> tuple[int, float | None]:
        """(samples, the share not our voice) of the latest ``seconds`` heard, through the room
        as last fitted: the barge-in check's quick listen between its checks."""
        heard = self._since(time.monotonic() - seconds)
        if heard is None or self.guard is None:
            return 0, None
        return len(heard[0]), self.guard.share_not_ours(*heard)

    def user_speaks_from(self, t: float | None) -> None:
        """The barge-in check heard the user from ``t`` on, inside an utterance our echo opened
        (None: it was our echo after all): that utterance is read from there. Before, it is our
        voice, whose sound would call the turn our echo and lose the user's first word."""
        self._user_from = t

    def t_audio(self, audio: Any) -> float | None:
        """When the first sample of an event's ``audio`` was captured: it ends with the frame
        just heard (the endpointer joins whole frames)."""
        if not self.frames:
            return None
        return self.frames[-1].t_capture - len(audio) / SAMPLE_RATE_HZ

    def users_part(self, event: Any) -> tuple[Any, float | None]:
        """``event`` (SpeechPaused or SpeechEnded) cut to the user's part, and when it begins."""
        t0 = self.t_audio(event.audio)
        if self._user_from is None or t0 is None:
            return event, t0
        cut = round((self._user_from - BARGE_IN_PRE_ROLL_S - t0) * SAMPLE_RATE_HZ)
        if not 0 < cut < len(event.audio):
            return event, t0
        t_cut = t0 + cut / SAMPLE_RATE_HZ
        return replace(event, audio=event.audio[cut:], t_start=max(event.t_start, t_cut)), t_cut
