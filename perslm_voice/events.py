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
    """Where a turn came from."""

    KEYBOARD = "keyboard"
    VOICE = "voice"
    REMINDER = "reminder"  # not the user's: a timer or reminder fell due, and the assistant says it


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
    turn_end: str | None = None  # why the utterance ended (vad.turn_detection other than silence)
    t_turn_end: float | None = None  # when that was decided


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


# --- What a session gives: the events a front-end renders and observers subscribe to ----------
# Each is emitted on the session's event loop, in the order things happened. ``turn`` numbers the
# session's turns from 1; ``t``-fields are ``time.monotonic()`` seconds.


class Level(str, enum.Enum):
    """How much a notice matters to the user."""

    INFO = "info"  # dim: a status ("Press Ctrl+C again to quit")
    WARNING = "warning"  # something degraded, with what to do ("No microphone: ...; type instead")
    ERROR = "error"  # something failed, with the fix ("cannot reach the LLM server ...")


@dataclass(frozen=True)
class StateChanged:
    """The assistant's state, as shown beside the prompt."""

    state: State


@dataclass(frozen=True)
class PartialTranscript:
    """What the user has said so far, before their turn is over (it may still change)."""

    text: str
    t_speech_end: float | None = None


class Rejection(str, enum.Enum):
    """Why something heard was not taken as a turn."""

    UNCLEAR = "unclear"  # speech-to-text did not trust it (another language, low confidence)
    NO_WORDS = "no words"  # a sound with no words in it
    ECHO = "echo"  # the assistant's own voice, come back through the room
    FAILED = "failed"  # speech-to-text failed on it


@dataclass(frozen=True)
class UtteranceRejected:
    """Something was heard and not taken as a turn: what kind of thing, why (``reason``), and
    the line to show the user, or None when there is nothing they need to know (a cough, our own
    echo)."""

    kind: Rejection
    reason: str
    message: str | None = None
    detail: str | None = None  # speech-to-text's own kind: language, low confidence, noise, ...
    hint: str = ""  # what the user can do ("Say it again, or type it.")


@dataclass(frozen=True)
class ReplyStarted:
    """The assistant begins its reply to ``user_text``."""

    turn: int
    user_text: str
    source: Source


@dataclass(frozen=True)
class ReplyDelta:
    """More of the reply's text, as it is written."""

    turn: int
    text: str


@dataclass(frozen=True)
class ReplyAudio:
    """A piece of the reply's voice, synthesized and handed to the audio output."""

    turn: int
    chunk: AudioChunk


@dataclass(frozen=True)
class ReplyTextDone:
    """The reply's text is all out (its voice may still be playing); ``note`` says when it
    ended early: "interrupted", or "cut off" (the stream died mid-answer)."""

    turn: int
    note: str | None = None


@dataclass(frozen=True)
class ReplyDone:
    """The turn is over: the reply as written, and whether the user interrupted it (``heard`` is
    then what they heard of it; ``text_complete``: the whole text was out before the voice was
    cut)."""

    turn: int
    text: str
    interrupted: bool = False
    heard: str | None = None
    text_complete: bool = True


@dataclass(frozen=True)
class BargeIn:
    """The user took the turn while the assistant spoke: its voice stops now."""

    turn: int
    how: str  # "voice", "typed" or "key"
    t_detected: float


@dataclass(frozen=True)
class AudioPlayed:
    """Playback progress: ``chunk`` began to sound at ``t_start`` (after a resume: what was left
    of it). The output reports it from its own thread; the session re-emits it on its loop."""

    chunk: AudioChunk
    t_start: float


@dataclass(frozen=True)
class AudioSilenced:
    """The output went quiet at ``t``: what was announced to play after ``t`` did not."""

    t: float


@dataclass(frozen=True)
class MemoryChanged:
    """A memory command ran ("remember that ...", "forget ...", "what do you remember"):
    ``kind`` is remember, forget or list, and ``reply`` what the assistant answered."""

    kind: str
    reply: str


@dataclass(frozen=True)
class Notice:
    """A one-line message for the user (an error names its fix)."""

    text: str
    level: Level = Level.WARNING


@dataclass(frozen=True)
class TurnTimings:
    """A finished turn's monotonic marks (stage -> time) and the backends that served it;
    ``stored_turn`` is the assistant turn's row in the store (None when nothing was saved)."""

    turn: int
    marks: dict[str, float]
    backend: str
    stored_turn: int | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class Report:
    """Output a command asked for: ``rows`` as a table titled ``title``, or ``text``."""

    title: str = ""
    text: str = ""
    rows: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SessionEnded:
    """The session is over; nothing follows."""

    exit_code: int = 0
