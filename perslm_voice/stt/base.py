"""The speech-to-text interface, and the rules that keep Whisper's invented words out of a turn."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ..config import SpeechConfig
from ..events import Transcript, TranscriptSegment

NOT_SPEECH = "not speech"
LOW_CONFIDENCE = "low confidence"
NO_AUDIO = "not speech (no audio)"
RejectedKind = Literal["language", "low confidence", "no speech", "noise"]


@dataclass(frozen=True)
class Verdict:
    """Why a transcript is not to be trusted: its kind (as ``Transcript.rejected_kind``) and reason."""

    kind: RejectedKind
    reason: str


class STT(ABC):
    """A loaded speech-to-text model; one instance serves every utterance of a session."""

    name: str = "stt"

    def __init__(self, config: SpeechConfig):
        self.config = config

    def load(self) -> None:
        """Load the model (blocking, idempotent). Backends that need no loading keep this."""

    @property
    def description(self) -> str:
        """What is listening, for the banner: backend and model."""
        return self.name

    @abstractmethod
    def transcribe(
        self,
        audio_int16_16k: np.ndarray,
        language: str | None = None,
        *,
        user_language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
    ) -> Transcript:
        """The text of one utterance (16 kHz mono int16). Blocking: the loop runs it in a thread.

        ``language`` overrides ``speech.language``; None auto-detects where the model can. A result
        that is not to be trusted has ``rejected`` set (and is never a turn).
        ``user_language``: the language the user is expected to speak (their profile's), the prior
        of any language check. ``prompt``: the text said just before (earlier pieces of the same
        turn), which Whisper reads as context. ``words``: give each segment its timed words.
        """

    def transcribe_words(
        self, audio_int16_16k: np.ndarray, language: str | None = None
    ) -> Transcript:
        """The words of ``audio`` for a decision that needs only them (is someone talking over
        the reply?), as fast as the backend can: the checks that keep invented words out of a
        turn, such as the language check, may be skipped. Backends without such checks keep
        this: it is ``transcribe``."""
        return self.transcribe(audio_int16_16k, language)

    def close(self) -> None:
        """Release the model."""


def rejected(transcript: Transcript, verdict: Verdict | None) -> Transcript:
    """``transcript`` with ``verdict`` recorded (unchanged when None)."""
    if verdict is None:
        return transcript
    return replace(transcript, rejected=verdict.reason, rejected_kind=verdict.kind)


def to_float32(audio_int16_16k: np.ndarray) -> np.ndarray:
    return np.asarray(audio_int16_16k, np.float32) / 32768.0


def english_only_reason(model_label: str, language: str | None) -> str | None:
    """Why an English-only model cannot serve ``language`` (None when it can)."""
    if language in (None, "en"):
        return None
    return f"language {language!r} is not supported by {model_label} (English only)"


def whisper_input(
    audio_int16_16k: np.ndarray, language: str | None, *, multilingual: bool, model_label: str
) -> tuple[np.ndarray, str | None] | Transcript:
    """What a local Whisper decodes: the float audio and its language ("en" for an English-only
    model); or, when there is nothing to decode, the Transcript that rejects the utterance."""
    if not multilingual:
        reason = english_only_reason(model_label, language)
        if reason:
            return Transcript("", language, rejected=reason, rejected_kind="language")
        language = "en"
    audio = to_float32(audio_int16_16k)
    if audio.size == 0:
        return Transcript("", language, rejected=NO_AUDIO, rejected_kind="no speech")
    return audio, language


def judge(
    segments: Sequence[TranscriptSegment],
    config: SpeechConfig,
    *,
    log_prob_threshold: float | None = None,
) -> Verdict | None:
    """Why a Whisper result should not become a turn, from the model's own signals; None if fine.

    - no speech: no words ("." or "..." say nothing);
    - noise: Whisper's own silence rule (no-speech probability above its threshold while the
      average log-probability is below its threshold), or a looping text (compression ratio above
      its threshold: "thank you thank you thank you ...");
    - low confidence: the average log-probability of the whole utterance is below the threshold.
    """
    threshold = config.log_prob_threshold if log_prob_threshold is None else log_prob_threshold
    words = [s for s in segments if re.search(r"\w", s.text)]
    if not words:
        return Verdict("no speech", NOT_SPEECH)
    durations = np.array([max(1e-3, s.end_s - s.start_s) for s in words])
    weights = durations / durations.sum()
    no_speech = float(np.dot(weights, [s.no_speech_prob for s in words]))
    logprob = float(np.dot(weights, [s.avg_logprob for s in words]))
    compression = max(s.compression_ratio for s in words)
    if no_speech > config.no_speech_threshold and logprob < config.log_prob_threshold:
        return Verdict("noise", NOT_SPEECH)
    if compression > config.compression_ratio_threshold:
        return Verdict(
            "noise", f"{NOT_SPEECH} (repetitive text, compression ratio {compression:.1f})"
        )
    if logprob < threshold:
        return Verdict(
            "low confidence", f"{LOW_CONFIDENCE} (average log-probability {logprob:.2f})"
        )
    return None


def looping(transcript: Transcript, config: SpeechConfig) -> bool:
    """Whether Whisper went round in circles on this audio ("thank you thank you ..."): judged
    noise, though a short stretch of real speech read without its sentence does it too."""
    return any(
        s.compression_ratio > config.compression_ratio_threshold for s in transcript.segments
    )
