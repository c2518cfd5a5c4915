"""Endpointing: turns a stream of frames into utterances, with pre-roll and capture timestamps.

Speech begins at the first frame whose probability reaches the threshold, but is only announced
(``SpeechStarted``) once it has lasted ``min_speech_duration`` of voiced frames: a click, a cough or a
breath never starts a turn, and never interrupts the assistant. It ends after ``silence_duration`` of
frames below a slightly lower threshold (hysteresis, so a word's soft tail does not end it).
``SpeechEnded.audio`` holds the pre-roll, the speech and the trailing silence; a monologue longer than
``max_duration`` is cut into pieces (``truncated=True``), each followed by a new ``SpeechStarted``.

Speculative STT: once silence has lasted ``speculative_stt`` x ``silence_duration`` inside an
utterance, a ``SpeechPaused`` carries the audio so far; the loop may start transcribing it at once. If
the ``SpeechEnded`` that follows has the same ``t_end`` (nobody spoke again), that early transcript is
the right one; otherwise discard it. A ``SpeechResumed`` says so as soon as the user speaks again.

End of turn (``vad.turn_detection`` other than ``silence``): the silence window becomes
``vad.turn_max_wait_s``; the ``SpeechPaused`` comes as above, or after ``vad.turn_pause_s`` when
that is sooner (the decision needs the words); whoever decides, once ``silence_s`` has reached
``vad.turn_pause_s``, that the turn is complete calls ``end_now()``, which ends the utterance
then, with the ``t_end`` of that pause.

Times: a frame's ``t_capture`` is when its last sample was captured; ``t_start`` is the start of the first
voiced frame and ``t_end`` the end of the last voiced frame (both ``time.monotonic()`` seconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..config import AudioSettings, VADConfig
from ..events import FRAME_SAMPLES, SAMPLE_RATE_HZ, AudioFrame, SpeechEnded, SpeechStarted
from .vad import VAD

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
HYSTERESIS = 0.15  # speech continues above threshold - 0.15 (Silero's own streaming rule)


@dataclass(frozen=True)
class SpeechPaused:
    """Silence inside an utterance has lasted long enough to start speech-to-text speculatively."""

    audio: np.ndarray
    t_start: float
    t_end: float


@dataclass(frozen=True)
class SpeechResumed:
    """The user spoke again after a ``SpeechPaused``: what was started on that audio is stale."""

    t_resumed: float


Event = SpeechStarted | SpeechEnded | SpeechPaused | SpeechResumed


def _frames(seconds: float) -> int:
    return max(0, round(seconds / FRAME_S))


class Endpointer:
    """One stream's endpointing state; feed it every frame in order."""

    def __init__(self, vad: VAD, audio: AudioSettings, vad_config: VADConfig):
        self.vad = vad
        self.audio = audio
        self.vad_config = vad_config
        self.assistant_speaking = False
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, _frames(audio.pre_roll)))
        self.dropped_short = 0  # candidates shorter than the minimum speech duration
        # Words or a turn model decide after a short pause; silence alone only ends what they
        # judged unfinished.
        self.early_turns = vad_config.turn_detection != "silence"
        self._reset_utterance()

    # -- settings that depend on whether the assistant is talking -------------------------------
    @property
    def threshold(self) -> float:
        """The speech probability that starts speech (stricter while the assistant speaks)."""
        if self.assistant_speaking:
            return max(self.vad_config.threshold, self.vad_config.speaking_threshold)
        return self.vad_config.threshold

    @property
    def min_speech_s(self) -> float:
        if self.assistant_speaking:
            return max(self.audio.min_speech_duration, self.vad_config.speaking_min_speech_duration)
        return self.audio.min_speech_duration

    @property
    def silence_window_s(self) -> float:
        """Seconds of silence after which an utterance ends without being asked."""
        if self.early_turns:
            return max(self.vad_config.turn_max_wait_s, self.vad_config.turn_pause_s)
        return self.audio.silence_duration

    @property
    def pause_s(self) -> float | None:
        """Seconds of silence after which ``SpeechPaused`` comes (None: never)."""
        speculative = self.audio.speculative_stt * self.audio.silence_duration
        if self.early_turns:
            turn_pause = self.vad_config.turn_pause_s
            return min(speculative, turn_pause) if speculative > 0 else turn_pause
        return speculative if speculative > 0 else None

    @property
    def silence_s(self) -> float:
        """Seconds of silence since the last voiced frame of the utterance in progress."""
        return self._silence * FRAME_S if self._candidate else 0.0

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        return self._confirmed

    @property
    def in_pause(self) -> bool:
        """Inside an utterance, the last frame was not voiced: the user may be about to stop."""
        return self._candidate and self._silence > 0

    def speech_so_far(self) -> np.ndarray:
        """The audio of the utterance in progress (pre-roll included; empty outside speech): what
        a partial transcript is made of."""
        return self._audio() if self._confirmed else np.zeros(0, np.int16)

    # -- the state machine ------------------------------------------------------------------------
    def _reset_utterance(self) -> None:
        self._frames: list[np.ndarray] = []  # pre-roll + everything since speech began
        self._candidate = False
        self._confirmed = False
        self._voiced = 0
        self._silence = 0
        self._paused_sent = False
        self._t_start = 0.0
        self._t_last_voice = 0.0
        self._t_piece_start = 0.0

    def reset(self) -> None:
        """Forget everything (a new stream); the VAD is reset too."""
        self.vad.reset()
        self._pre_roll.clear()
        self._reset_utterance()

    def process(self, frame: AudioFrame, heard: np.ndarray | None = None) -> list[Event]:
        """Consume one frame; return the events it causes (usually none). ``heard``: the same
        frame with our echo cancelled, for the VAD to judge (the utterance keeps ``frame``)."""
        prob = self.vad.speech_probability(frame.samples if heard is None else heard)
        samples = frame.samples
        t_frame_start = frame.t_capture - len(samples) / frame.sample_rate_hz
        if not self._candidate:
            if prob >= self.threshold:
                self._candidate = True
                self._frames = list(self._pre_roll)
                self._pre_roll.clear()
                self._t_start = self._t_piece_start = t_frame_start
                self._voiced = 0
                self._silence = 0
            else:
                self._pre_roll.append(samples)
                return []
        self._frames.append(samples)
        events: list[Event] = []
        voiced = prob >= (self.threshold - HYSTERESIS if self._voiced else self.threshold)
        if voiced:
            self._voiced += 1
            self._silence = 0
            if self._paused_sent:
                events.append(SpeechResumed(t_frame_start))
            self._paused_sent = False
            self._t_last_voice = frame.t_capture
        else:
            self._silence += 1
        if not self._confirmed and self._voiced * FRAME_S >= self.min_speech_s - 1e-9:
            self._confirmed = True
            events.append(SpeechStarted(self._t_start))
        silence_s = self._silence * FRAME_S
        if silence_s >= self.silence_window_s - 1e-9:
            events.extend(self._end())
            return events
        pause_s = self.pause_s
        if (
            self._confirmed
            and not self._paused_sent
            and pause_s is not None
            and silence_s >= pause_s - 1e-9
        ):
            self._paused_sent = True
            events.append(SpeechPaused(self._audio(), self._t_piece_start, self._t_last_voice))
        if self._confirmed and len(self._frames) * FRAME_S >= self.audio.max_duration:
            events.extend(self._cut(frame.t_capture))
        return events

    def end_now(self, t_end: float | None = None) -> list[Event]:
        """The turn was judged complete inside its pause: end the utterance now. Nothing happens
        when the user has spoken again since the ``SpeechPaused`` (the judgement is stale), also
        when they have paused again since: ``t_end`` names the pause that was judged."""
        if not (self._confirmed and self._paused_sent):
            return []
        if t_end is not None and t_end != self._t_last_voice:
            return []
        return self._end()

    def _audio(self) -> np.ndarray:
        return np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)

    def _end(self) -> list[Event]:
        """Silence has lasted long enough: the utterance is complete (or was too short)."""
        events: list[Event] = []
        if self._confirmed:
            events.append(SpeechEnded(self._audio(), self._t_piece_start, self._t_last_voice))
        else:
            self.dropped_short += 1
        # The trailing silence is the pre-roll of whatever comes next.
        tail = self._frames[-self._pre_roll.maxlen :] if self._pre_roll.maxlen else []
        self._reset_utterance()
        self._pre_roll.extend(tail)
        return events

    def _cut(self, t_now: float) -> list[Event]:
        """max_duration reached while speaking: hand over this piece, keep listening to the rest."""
        ended = SpeechEnded(self._audio(), self._t_piece_start, t_now, truncated=True)
        self._frames = []
        self._t_piece_start = t_now
        self._paused_sent = False
        return [ended, SpeechStarted(t_now)]

    def flush(self) -> list[Event]:
        """The end of the stream: finish an utterance in progress (a too-short one is dropped)."""
        if not self._candidate:
            return []
        if self._confirmed:
            ended = SpeechEnded(self._audio(), self._t_piece_start, self._t_last_voice)
            self._reset_utterance()
            return [ended]
        self.dropped_short += 1
        self._reset_utterance()
        return []
