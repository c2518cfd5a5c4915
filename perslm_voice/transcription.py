"""Speech-to-text of a whole file through the live loop's own pieces: file source, VAD, endpointer, STT."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audio.capture import FRAME_S, FileSource
from .audio.endpointer import Endpointer
from .audio.vad import create_vad
from .config import Config
from .events import AudioFrame, SpeechEnded, Transcript
from .stt.base import STT
from .stt.registry import create_stt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One transcribed utterance: where it is in the file (seconds) and what was said."""

    start_s: float
    end_s: float
    text: str
    language: str | None = None


@dataclass(frozen=True)
class Rejection:
    """An utterance the STT did not trust (kept out of the transcript), and why."""

    start_s: float
    end_s: float
    reason: str
    text: str = ""


@dataclass
class TranscriptionResult:
    """The transcript of a file."""

    file: str
    utterances: list[Utterance] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duration_s: float = 0.0
    stt_seconds: float = 0.0  # time spent in speech-to-text

    @property
    def language(self) -> str | None:
        """The language of most of the speech (None when nothing was said)."""
        languages = [u.language for u in self.utterances if u.language]
        return max(set(languages), key=languages.count) if languages else None

    @property
    def text(self) -> str:
        return "\n".join(u.text for u in self.utterances)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "language": self.language,
            "duration": round(self.duration_s, 3),
            "segments": [
                {"start": round(u.start_s, 3), "end": round(u.end_s, 3), "text": u.text}
                for u in self.utterances
            ],
            "rejected": [
                {"start": round(r.start_s, 3), "end": round(r.end_s, 3), "reason": r.reason}
                for r in self.rejected
            ],
        }


def transcribe_file(
    path: str | Path,
    config: Config,
    *,
    stt: STT | None = None,
    language: str | None = None,
) -> TranscriptionResult:
    """Segment ``path`` with the configured VAD and endpointer, transcribe each utterance.

    Pass a loaded ``stt`` to reuse one model across files. Raises AudioError for an unreadable file.
    """
    source = FileSource(path, speed="fast")
    endpointer = Endpointer(create_vad(config.vad), config.speech.audio, config.vad)
    if stt is None:
        stt = create_stt(config.speech)
    stt.load()
    result = TranscriptionResult(file=str(path))
    t0 = 0.0  # the virtual clock: a frame's t_capture is its end in file seconds
    count = 0
    for count, samples in enumerate(source.frames(), start=1):
        for event in endpointer.process(AudioFrame(samples, t0 + count * FRAME_S)):
            if isinstance(event, SpeechEnded):
                _transcribe(event, stt, language, result)
    for event in endpointer.flush():
        if isinstance(event, SpeechEnded):
            _transcribe(event, stt, language, result)
    result.duration_s = count * FRAME_S
    return result


def _transcribe(
    event: SpeechEnded, stt: STT, language: str | None, result: TranscriptionResult
) -> None:
    started = time.perf_counter()
    transcript: Transcript = stt.transcribe(event.audio, language)
    result.stt_seconds += time.perf_counter() - started
    if transcript.rejected or not transcript.text:
        reason = transcript.rejected or "not speech"
        log.info("rejected %.2f-%.2f s %r: %s", event.t_start, event.t_end, transcript.text, reason)
        result.rejected.append(Rejection(event.t_start, event.t_end, reason, transcript.text))
        return
    result.utterances.append(
        Utterance(event.t_start, event.t_end, transcript.text, transcript.language)
    )
