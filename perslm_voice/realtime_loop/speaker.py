"""Speaking a reply while its text is still being written: text pieces -> speakable sentences ->
text-to-speech (in a thread) -> the audio output, the first clause playing while the model writes
the second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..audio.player import Player
from ..config import Config, VoiceSettings
from ..errors import PerslmVoiceError
from ..events import AudioChunk, ReplyAudio
from ..tts.base import TTS
from ..tts.speakable import SpeakableStream

log = logging.getLogger(__name__)

SYNTHESIS_AHEAD_S = 3.0  # the next sentence is synthesized once less is left to play
STOP_WAIT_S = 2.0  # the longest an interrupt waits for the output to say what was heard


@dataclass(frozen=True)
class FirstAudio:
    """The reply's first audio began to play at ``t``."""

    t: float


@dataclass(frozen=True)
class SpeechFailed:
    """Text-to-speech failed: the session goes on in text."""

    message: str


def voice_for(config: Config, profile: Any) -> VoiceSettings:
    """The voice settings for a user: the profile's choices win over the configuration."""
    voice = config.tts.voice
    updates = {}
    if profile is not None:
        if getattr(profile, "voice_id", None):
            updates["voice_id"] = profile.voice_id
        if getattr(profile, "speaking_rate", None):
            updates["rate"] = profile.speaking_rate
    return voice.model_copy(update=updates) if updates else voice


class Speaker:
    """Speaks one reply at a time through a `Player`; results go out through ``emit``."""

    def __init__(
        self,
        tts: TTS,
        tts_ready: asyncio.Future[Any],
        player: Player,
        emit: Callable[[Any], None],
    ):
        self.tts = tts
        self.tts_ready = tts_ready
        self.player = player
        self._emit = emit
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._next: list[str] = []  # said before the rest of the reply (interject)
        self._stream = SpeakableStream()
        self._task: asyncio.Task[None] | None = None
        self._marks: dict[str, float] = {}
        self._turn = 0
        self._held: list[AudioChunk] = []  # synthesized, not yet handed to the player
        self._released = True
        self._queued_until = 0.0  # when the voice handed to the player will have been played
        self._paused_at = 0.0
        self.speaking = False
        loop = asyncio.get_running_loop()
        player.follow(on_first_audio=lambda t: loop.call_soon_threadsafe(self._first_audio, t))

    def _first_audio(self, t: float) -> None:
        if self.speaking:
            self._marks.setdefault("first_audio_played", t)
            self._emit(FirstAudio(t))

    def begin(
        self,
        turn: int,
        voice: VoiceSettings,
        marks: dict[str, float],
        streaming: bool = True,
        hold: bool = False,
    ) -> None:
        """Start a reply; ``marks`` receives first_audio_synthesized and first_audio_played.

        ``streaming=False`` is the classic design, for comparison: everything is synthesized
        before anything is played. ``hold=True`` synthesizes but plays nothing until
        ``release()`` (a speculative reply), or ever, after ``discard()``.
        """
        self._stream = SpeakableStream()
        self._sentences = asyncio.Queue()
        self._next = []
        self._marks = marks
        self._turn = turn
        self._held = []
        self._released = not hold
        self._queued_until = 0.0
        self.speaking = True
        self._task = asyncio.create_task(self._synthesize(voice, streaming), name="tts")

    def release(self, turn: int) -> None:
        """A held reply is wanted after all (as ``turn``): play what is ready, and the rest as
        it comes."""
        self._turn = turn
        self._released = True
        self._play_held()

    def discard(self) -> None:
        """Drop a held reply without a sound: the user went on talking."""
        if self._task is not None:
            self._task.cancel()
        self._held = []
        self.speaking = False

    def _play_held(self) -> None:
        now = time.monotonic()
        for chunk in self._held:
            self.player.enqueue(chunk)
            self._emit(ReplyAudio(self._turn, chunk))
            duration_s = len(chunk.samples) / chunk.sample_rate_hz
            self._queued_until = max(self._queued_until, now) + duration_s
        self._held = []

    async def _wait_for_room(self) -> None:
        """Keep the synthesis a few seconds ahead of the voice, not a whole reply ahead.

        Piper writes a sentence 15-30 times faster than it is said: left alone, it synthesizes
        the whole reply in its first seconds, on the cores that the barge-in check and the next
        utterance's speech-to-text need right then (a user talking over a long reply waited 2.3 s
        for the transcript). What it would have made ahead is lost on a barge-in anyway."""
        ahead_s = self._queued_until - time.monotonic()
        if self._released and ahead_s > SYNTHESIS_AHEAD_S:
            await asyncio.sleep(ahead_s - SYNTHESIS_AHEAD_S)

    def feed(self, piece: str) -> None:
        for sentence in self._stream.feed(piece):
            self._sentences.put_nowait(sentence)

    def interject(self, text: str) -> bool:
        """Say ``text`` next, before the rest of the reply (a timer that fell due): only what is
        already synthesized plays first. False when the reply's voice is all synthesized, held
        (a draft) or over: then it waits for its own turn."""
        if not (self.speaking and self._released) or self._task is None or self._task.done():
            return False
        self._next.append(text)
        self._sentences.put_nowait("")  # wakes the synthesis when it waits for the model
        return True

    async def finish(self) -> None:
        """The reply's text is complete: speak the rest and wait until it has been played."""
        for sentence in self._stream.flush():
            self._sentences.put_nowait(sentence)
        self._sentences.put_nowait(None)
        if self._task is not None:
            await self._task
        await asyncio.to_thread(self.player.wait_idle, None)
        self.speaking = False

    def pause(self) -> float:
        """Go quiet at once (a barge-in candidate is being checked); return when it went quiet."""
        self.player.pause()
        self._paused_at = time.monotonic()
        return self._paused_at

    def resume(self) -> None:
        """The candidate was our own echo: go on speaking where pause() cut."""
        self.player.resume()
        self._queued_until += time.monotonic() - self._paused_at

    async def interrupt(self) -> str:
        """Silence at once and drop what is queued; return the text the user actually heard."""
        if self._task is not None:
            self._task.cancel()
        self.speaking = False
        stopped = asyncio.wrap_future(self.player.stop_soon())
        with contextlib.suppress(asyncio.TimeoutError):
            return await asyncio.wait_for(asyncio.shield(stopped), STOP_WAIT_S) or ""
        return ""

    async def _synthesize(self, voice: VoiceSettings, streaming: bool) -> None:
        try:
            await self.tts_ready
        except PerslmVoiceError as exc:
            self._emit(SpeechFailed(str(exc)))
            return
        while True:
            sentence = self._next.pop(0) if self._next else await self._sentences.get()
            if sentence is None:
                break
            if not sentence:  # the wake-up of an interjection, said already
                continue
            if streaming:
                await self._wait_for_room()
            started = time.monotonic()
            try:
                chunks = await asyncio.to_thread(
                    lambda s=sentence: list(self.tts.synthesize(s, voice))
                )
            except PerslmVoiceError as exc:
                self._emit(SpeechFailed(str(exc)))  # the reply goes on as text
                return
            log.debug(
                "tts: %.0f ms for %r, started %.0f ms after the first token",
                (time.monotonic() - started) * 1000,
                sentence[:40],
                (started - self._marks.get("first_token", started)) * 1000,
            )
            self._marks.setdefault("first_audio_synthesized", time.monotonic())
            self._held.extend(chunks)
            if streaming and self._released:
                self._play_held()
        if self._released:
            self._play_held()
