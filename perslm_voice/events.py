"""The immutable events that flow between the stages of the loop.

Times are ``time.monotonic()`` seconds. Audio is 16 kHz mono int16 PCM unless a field says otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

import numpy as np

SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: what Silero VAD takes


class Source(str, enum.Enum):
    """Where a user's turn came from."""

    KEYBOARD = "keyboard"
    VOICE = "voice"


class State(enum.Enum):
    """What the assistant is doing, as shown to the user."""

    LOADING = "Loading"
    LISTENING = "Listening"
    HEARING = "Hearing you"
    THINKING = "Thinking"
    SPEAKING = "Speaking"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class AudioFrame:
    """One frame of captured audio (int16 samples at 16 kHz) and when it was captured."""

    samples: np.ndarray
    t_capture: float
    sample_rate_hz: int = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SpeechStarted:
    """The VAD heard speech begin."""

    t_start: float


@dataclass(frozen=True)
class SpeechEnded:
    """An utterance is complete: its audio (pre-roll included) and when speech began and ended."""

    audio: np.ndarray
    t_start: float
    t_end: float
    truncated: bool = False  # cut at max_duration; more of the same monologue follows


@dataclass(frozen=True)
class UserText:
    """What the user said or typed, ready for the assistant."""

    text: str
    source: Source
    t_speech_end: float | None = None
    t_transcript: float | None = None
    language: str | None = None


@dataclass(frozen=True)
class Transcript:
    """A speech-to-text result for one utterance."""

    text: str
    language: str | None = None
    segments: tuple[TranscriptSegment, ...] = ()
    rejected: str | None = None  # why the text is not to be trusted, e.g. "no speech"
    # What kind of rejection ``rejected`` is, for code that acts on it (stt.notice words it for
    # the user): another language, too unclear to trust, no words at all, or sound that is not
    # speech (noise, Whisper's silence rule, a looping text). None when not rejected.
    rejected_kind: Literal["language", "low confidence", "no speech", "noise"] | None = None


@dataclass(frozen=True)
class TranscriptSegment:
    text: str
    start_s: float
    end_s: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    # The segment's words with their own times (``avg_logprob``: the word's log-probability),
    # when the caller asked for them (``STT.transcribe(..., words=True)``); else empty.
    words: tuple[TranscriptSegment, ...] = ()


@dataclass(frozen=True)
class AudioChunk:
    """Synthesized speech: int16 mono samples at ``sample_rate_hz``, and the text it says."""

    samples: np.ndarray
    sample_rate_hz: int
    text: str = ""
