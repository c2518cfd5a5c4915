"""Speech-to-text of a whole file through the live loop's own pieces: file source, VAD, endpointer, STT."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .audio.capture import FRAME_S, FileSource
from .audio.endpointer import Endpointer
from .audio.vad import create_vad
from .config import Config
from .events import SAMPLE_RATE_HZ, AudioFrame, SpeechEnded, Transcript, TranscriptSegment
from .stt.base import NOT_SPEECH, STT, looping
from .stt.context import PROMPT_CHARS, Window, plan_windows
from .stt.notice import rejection_notice
from .stt.registry import create_stt

log = logging.getLogger(__name__)

# Words heard in a window that an utterance keeps without a second look: their mean probability is
# at least e^-0.7 = 0.5. Below it, the utterance is read again alone and judged alone.
SURE_WORD_LOGPROB = -0.7
# Sound kept either side of an utterance in a window (faster-whisper's vad_filter keeps 0.4 s): two
# utterances joined are 0.6 s apart, a pause Whisper hears as one.
SPEECH_PAD_S = 0.3


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
    kind: str = "no speech"  # as Transcript.rejected_kind
    language: str | None = None
    notice: str = ""  # what the user is told (stt.notice)


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
                {
                    "start": round(u.start_s, 3),
                    "end": round(u.end_s, 3),
                    "text": u.text,
                    "language": u.language,
                }
                for u in self.utterances
            ],
            "rejected": [
                {
                    "start": round(r.start_s, 3),
                    "end": round(r.end_s, 3),
                    "reason": r.reason,
                    "kind": r.kind,
                    "language": r.language,
                    "notice": r.notice,
                }
                for r in self.rejected
            ],
        }


@dataclass(frozen=True)
class Speech:
    """One utterance the endpointer cut out of the file: its audio and where it lies (seconds)."""

    audio: np.ndarray
    audio_start_s: float  # where audio[0] is: the pre-roll comes before t_start
    t_start: float
    t_end: float

    def trimmed(self, pad_s: float) -> Speech:
        """The speech with ``pad_s`` of what is around it: without the rest of the pre-roll and
        of the silence that ended it, which would only fill a Whisper window."""
        first = max(0, round((self.t_start - pad_s - self.audio_start_s) * SAMPLE_RATE_HZ))
        last = max(first, round((self.t_end + pad_s - self.audio_start_s) * SAMPLE_RATE_HZ))
        audio = self.audio[first:last]
        return Speech(audio, self.audio_start_s + first / SAMPLE_RATE_HZ, self.t_start, self.t_end)


def transcribe_file(
    path: str | Path,
    config: Config,
    *,
    stt: STT | None = None,
    language: str | None = None,
    user_language: str | None = None,
    context: bool = True,
) -> TranscriptionResult:
    """Segment ``path`` with the configured VAD and endpointer, and transcribe the speech.

    ``context``: read nearby utterances together, in Whisper windows of up to 28 s (see
    ``stt/context.py``), and give each utterance the words heard within it; False reads each
    utterance alone (as the live loop reads one turn). Pass a loaded ``stt`` to reuse one model
    across files. Raises AudioError for an unreadable file.
    """
    if stt is None:
        stt = create_stt(config.speech)
    stt.load()
    result = TranscriptionResult(file=str(path))
    speech, result.duration_s = cut(path, config)
    if context:
        trimmed = [s.trimmed(SPEECH_PAD_S) for s in speech]
        for window in plan_windows(
            [t.audio for t in trimmed], [t.audio_start_s for t in trimmed], gap_s=0.0
        ):
            _read_window(
                window,
                [speech[p.index] for p in window.placed],
                stt,
                language,
                user_language,
                result,
            )
    else:
        for utterance in speech:
            heard = _read_alone(utterance, stt, language, user_language, None, result)
            if heard.rejected or not heard.text:
                _reject(utterance, heard, result)
            else:
                result.utterances.append(
                    Utterance(utterance.t_start, utterance.t_end, heard.text, heard.language)
                )
    return result


def cut(path: str | Path, config: Config) -> tuple[list[Speech], float]:
    """The utterances of ``path`` as the live loop's VAD and endpointer cut them, and its length."""
    source = FileSource(path, speed="fast")
    endpointer = Endpointer(create_vad(config.vad), config.speech.audio, config.vad)
    speech: list[Speech] = []
    t = 0.0  # the virtual clock: a frame's t_capture is its end in file seconds

    def keep(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, SpeechEnded) and len(event.audio):
                audio_start = t - len(event.audio) / SAMPLE_RATE_HZ  # it ends with this frame
                speech.append(Speech(event.audio, audio_start, event.t_start, event.t_end))

    count = 0
    for count, samples in enumerate(source.frames(), start=1):
        t = count * FRAME_S
        keep(endpointer.process(AudioFrame(samples, t)))
    keep(endpointer.flush())
    return speech, count * FRAME_S


def _read_window(
    window: Window,
    speech: list[Speech],
    stt: STT,
    language: str | None,
    user_language: str | None,
    result: TranscriptionResult,
) -> None:
    """Whisper reads the window once; each utterance gets the words that fall within it. An
    utterance whose words are doubtful, or that got none, is also read alone (the text before it as
    the prompt) and judged alone: that is where noise and other languages are set aside, as they
    were before. When that reading keeps it, or only loops, the words it got in context stand."""
    started = time.perf_counter()
    heard = stt.transcribe(window.audio, language, user_language=user_language, words=True)
    result.stt_seconds += time.perf_counter() - started
    if heard.rejected and len(speech) == 1:
        _reject(speech[0], heard, result)
        return
    words: list[list[TranscriptSegment]] = [[] for _ in speech]
    where = {p.index: i for i, p in enumerate(window.placed)}
    for segment in heard.segments:
        for word in segment.words:
            piece = window.piece_at((word.start_s + word.end_s) / 2)
            words[where[piece.index]].append(word)
    for utterance, own in zip(speech, words, strict=True):
        text = "".join(w.text for w in own).strip()
        if not re.search(r"\w", text):
            text = ""
        sure = bool(own) and float(np.mean([w.avg_logprob for w in own])) >= SURE_WORD_LOGPROB
        language_heard = heard.language
        if heard.rejected or not sure or not text:
            log.debug(
                "read alone %.2f-%.2f s (in context: %r)", utterance.t_start, utterance.t_end, text
            )
            alone = _read_alone(utterance, stt, language, user_language, _said(result), result)
            if text and looping(alone, stt.config):
                # Alone, a short stretch sent Whisper round in circles ("1, 0, 0, 0, 0, ..."
                # for the "1 0" it heard in context): no evidence against what it heard there.
                log.debug("kept %r: read alone, it looped", text)
            elif alone.rejected or not alone.text:
                _reject(utterance, alone, result)
                continue
            text, language_heard = text or alone.text, alone.language or language_heard
        result.utterances.append(
            Utterance(utterance.t_start, utterance.t_end, text, language_heard)
        )


def _said(result: TranscriptionResult) -> str | None:
    """The end of what was heard so far: the prompt for the next utterance read alone."""
    return " ".join(u.text for u in result.utterances[-3:])[-PROMPT_CHARS:] or None


def _read_alone(
    utterance: Speech,
    stt: STT,
    language: str | None,
    user_language: str | None,
    prompt: str | None,
    result: TranscriptionResult,
) -> Transcript:
    started = time.perf_counter()
    transcript = stt.transcribe(
        utterance.audio, language, user_language=user_language, prompt=prompt
    )
    result.stt_seconds += time.perf_counter() - started
    return transcript


def _reject(utterance: Speech, transcript: Transcript, result: TranscriptionResult) -> None:
    if not transcript.rejected:  # no words, not judged: nothing was said
        transcript = replace(transcript, rejected=NOT_SPEECH, rejected_kind="no speech")
    notice = rejection_notice(transcript)
    assert notice is not None
    log.info(
        "set aside %.2f-%.2f s %r: %s",
        utterance.t_start,
        utterance.t_end,
        transcript.text,
        transcript.rejected,
    )
    result.rejected.append(
        Rejection(
            utterance.t_start,
            utterance.t_end,
            str(transcript.rejected),
            transcript.text,
            notice.kind,
            transcript.language,
            notice.text,
        )
    )
