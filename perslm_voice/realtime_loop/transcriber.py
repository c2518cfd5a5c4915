"""Speech-to-text for the listener: our voice taken out first, a turn's pieces read together, and
the verdict on what was heard (a turn, or rejected, and why)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..echo import EchoGuard
from ..events import Rejection, Source, SpeechEnded, Transcript, UserText, UtteranceRejected
from ..stt.base import STT
from ..stt.notice import rejection_notice

ECHO = "echo of the assistant's own voice"


@dataclass(frozen=True)
class Heard:
    """A transcript, and how much of the sound it was made from was not our voice (None when
    nothing we played could be in it, or the sound check is off)."""

    transcript: Transcript
    not_ours: float | None = None


def rejected(
    kind: Rejection, reason: str, transcript: Transcript | None = None
) -> UtteranceRejected:
    """The event for something heard and not answered, with the line the user sees (None when
    there is nothing they need to know: a cough, our own echo)."""
    if kind is Rejection.FAILED:
        message = f"Not heard: {reason}; please say it again, or type it."
        return UtteranceRejected(kind, reason, message, hint="Say it again, or type it.")
    notice = rejection_notice(transcript) if transcript is not None else None
    if notice is None:
        return UtteranceRejected(kind, reason)
    return UtteranceRejected(
        kind, reason, notice.line if notice.shown else None, notice.kind, notice.hint
    )


class Transcriber:
    """One speech-to-text model for one stream: ``running`` counts the transcriptions in flight
    (partial transcripts wait while there are any)."""

    def __init__(
        self,
        stt: STT,
        stt_ready: asyncio.Future[Any],
        *,
        language: str | None,
        user_language: str | None = None,
        guard: EchoGuard | None = None,
    ):
        self.stt = stt
        self.stt_ready = stt_ready
        self.language = language
        self.user_language = user_language  # the profile's: the language check's prior
        self.guard = guard
        self.running = 0

    async def transcribe(self, audio: Any, t0: float | None = None) -> Heard:
        """Speech-to-text of ``audio``; captured from ``t0`` on, what we played is taken out of it
        first, so that a person talking over the reply is heard without our words."""
        await self.stt_ready
        guard = self.guard

        def work() -> Heard:
            if guard is None or t0 is None:
                cleaned, not_ours = audio, None
            else:
                cleaned, not_ours = guard.separate(audio, t0)
            transcript = self.stt.transcribe(
                cleaned, self.language, user_language=self.user_language
            )
            return Heard(transcript, not_ours)

        self.running += 1
        try:
            return await asyncio.to_thread(work)
        finally:
            self.running -= 1

    async def transcribe_pieces(self, pieces: list[tuple[SpeechEnded, float | None]]) -> Heard:
        """A turn that came in several pieces (a monologue cut at ``max_duration``): read as one,
        each word in its sentence (``transcribe_turn``), never piece by piece."""
        from ..stt.context import transcribe_turn

        await self.stt_ready
        guard = self.guard

        def work() -> Heard:
            cleaned, shares = [], []
            for ended, t0 in pieces:
                audio, not_ours = ended.audio, None
                if guard is not None and t0 is not None:
                    audio, not_ours = guard.separate(ended.audio, t0)
                cleaned.append(audio)
                if not_ours is not None:
                    shares.append(not_ours)
            transcript = transcribe_turn(
                self.stt, cleaned, self.language, user_language=self.user_language
            )
            return Heard(transcript, min(shares) if shares else None)

        self.running += 1
        try:
            return await asyncio.to_thread(work)
        finally:
            self.running -= 1

    async def transcribe_words(self, audio: np.ndarray) -> Transcript:
        """Speech-to-text of a barge-in candidate: only the words count here (no language
        check: the turn itself is transcribed fully)."""
        await self.stt_ready
        self.running += 1
        try:
            return await asyncio.to_thread(self.stt.transcribe_words, audio, self.language)
        finally:
            self.running -= 1

    def verdict(self, heard: Heard, t_start: float) -> tuple[Rejection, str] | None:
        """Why what was heard is not a turn (rejected, empty, our own echo), or None."""
        transcript = heard.transcript
        if transcript.rejected:
            return Rejection.UNCLEAR, transcript.rejected
        if not transcript.text.strip():
            return Rejection.NO_WORDS, "no words"
        if self.guard is not None and self.guard.turn_is_echo(
            transcript.text, heard.not_ours, t_start
        ):
            return Rejection.ECHO, ECHO
        return None

    @staticmethod
    def user_text(transcript: Transcript, t_end: float, t_ready: float) -> UserText:
        return UserText(
            transcript.text.strip(),
            Source.VOICE,
            t_speech_end=t_end,
            t_transcript=t_ready,
            language=transcript.language,
        )
