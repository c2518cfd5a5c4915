"""The voice stages of a session.

`Listener`: an audio source -> VAD endpointing -> speech-to-text -> the user's text, with
speculative transcription inside the end-of-speech silence window.
`Speaker`: the reply's text stream -> speakable sentences -> text-to-speech -> the player, the first
clause speaking while the rest is still being generated.

Both run on the session's event loop; model calls go to threads, the source and the player own
their threads and hand over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio.capture import AudioSource
from .audio.endpointer import Endpointer, SpeechPaused, SpeechResumed
from .audio.playback import Player
from .config import Config, VoiceSettings
from .echo import (
    ECHO_RESIDUAL_MAX,
    ECHO_TAIL_S,
    SOMEONE_ELSE_MIN,
    EchoReference,
    EchoRoom,
    EchoRoomSpec,
    SpokenLog,
    follow_player,
    is_echo,
    new_words,
    open_canceller,
)
from .errors import PerslmVoiceError, UsageError
from .events import (
    SAMPLE_RATE_HZ,
    AudioFrame,
    Source,
    SpeechEnded,
    SpeechStarted,
    Transcript,
    UserText,
)
from .stt.base import STT
from .tts.base import TTS
from .tts.speakable import SpeakableStream

log = logging.getLogger(__name__)

RECENT_AUDIO_S = 3.0  # audio the listener keeps for a barge-in check
BARGE_IN_PRE_ROLL_S = 0.1  # a candidate's audio begins this long before its first voiced frame
SYNTHESIS_AHEAD_S = 3.0  # the next sentence is synthesized once less is left to play
ECHO = "echo of the assistant's own voice"
STT_FAILED = "speech-to-text failed"  # how a rejection for a failed transcription begins


@dataclass(frozen=True)
class _SourceEnded:
    reason: str | None


@dataclass(frozen=True)
class Heard:
    """A transcript, and how much of the sound it was made from was not our voice (None when
    nothing we played could be in it, or the sound check is off)."""

    transcript: Transcript
    not_ours: float | None = None


class Listener:
    """Hears the user: frames in, `UserText` out (and a call when speech starts)."""

    def __init__(
        self,
        source: AudioSource,
        endpointer: Endpointer,
        stt: STT,
        stt_ready: asyncio.Future[Any],
        *,
        language: str | None,
        max_queued_frames: int | None,
        on_speech_started: Callable[[float], None],
        on_text: Callable[[UserText], None],
        on_rejected: Callable[[str], None],
        on_end: Callable[[str | None], None],
    ):
        self.source = source
        self.endpointer = endpointer
        self.stt = stt
        self.stt_ready = stt_ready
        self.language = language
        self.max_queued_frames = max_queued_frames  # None: a file, every frame is kept
        self.on_speech_started = on_speech_started
        self.on_text = on_text
        self.on_rejected = on_rejected
        self.on_end = on_end
        self.dropped_frames = 0
        self._frames: asyncio.Queue[AudioFrame | _SourceEnded] = asyncio.Queue()
        self._utterances: asyncio.Queue[
            tuple[SpeechEnded, asyncio.Future[Heard] | None, float | None] | None
        ]
        self._utterances = asyncio.Queue()
        self._speculation: tuple[float, asyncio.Future[Heard]] | None = None
        # Echo protection (wired by protect_from_echo): the canceller cleans every frame; a
        # transcript made of the words ``echo_text(t_speech_start)`` returns is the assistant's own
        # voice, not a turn.
        self.frame_filter: Callable[[AudioFrame], AudioFrame] | None = None
        self.echo_text: Callable[[float], str] | None = None
        self.echo_dropped = 0
        # Speculative replies (wired by the loop): the early transcript of an utterance that may
        # be over, and word that it is not (the user went on).
        self.echo_reference: EchoReference | None = None  # what we played, for the sound check
        self.on_early_text: Callable[[UserText], None] | None = None
        self.on_early_dropped: Callable[[], None] | None = None
        self._recent: deque[AudioFrame] = deque(maxlen=round(RECENT_AUDIO_S / 0.032))

    def _heard(self, since: float, until: float | None = None) -> list[AudioFrame]:
        """The recent (echo-cancelled) frames captured after ``since``, up to ``until``."""
        return [
            f
            for f in self._recent
            if f.t_capture > since and (until is None or f.t_capture <= until)
        ]

    def hear_recent(self, since: float) -> tuple[np.ndarray, float | None]:
        """The audio heard since ``since`` (with the pre-roll) with our voice taken out, and the
        share of it that is not our voice (None when nothing we played can be in it, or the
        sound check is off): for a barge-in candidate."""
        frames = self._heard(since - BARGE_IN_PRE_ROLL_S)
        if not frames:
            return np.zeros(0, np.int16), None
        audio = np.concatenate([f.samples for f in frames])
        if self.echo_reference is None:
            return audio, None
        t0 = frames[0].t_capture - len(frames[0].samples) / frames[0].sample_rate_hz
        return self.echo_reference.separate(audio, t0)

    async def transcribe_heard(self, audio: np.ndarray, not_ours: float | None) -> Heard:
        """Speech-to-text of what ``hear_recent`` gave: is a barge-in candidate the user? Only
        the words count here (``STT.transcribe_words``): the turn itself is transcribed fully."""
        await self.stt_ready
        transcript = await asyncio.to_thread(self.stt.transcribe_words, audio, self.language)
        return Heard(transcript, not_ours)

    def heard_echo(self, text: str, t_speech_start: float, min_new_words: int = 1) -> bool:
        """True when ``text``, heard from ``t_speech_start`` on, is mostly our own recent words
        (or has fewer than ``min_new_words`` words that are not ours)."""
        if self.echo_text is None:
            return False
        spoken = self.echo_text(t_speech_start)
        return is_echo(text, spoken) or new_words(text, spoken) < min_new_words

    async def run(self) -> None:
        """Listen until the source ends (or the task is cancelled); pending speech is transcribed."""
        loop = asyncio.get_running_loop()

        def on_frame(frame: AudioFrame) -> None:  # the source's thread
            loop.call_soon_threadsafe(self._put, frame)

        def on_source_end(reason: str | None) -> None:
            loop.call_soon_threadsafe(self._frames.put_nowait, _SourceEnded(reason))

        transcriber = asyncio.create_task(self._transcribe_in_order(), name="stt")
        self.source.start(on_frame, on_source_end)
        reason: str | None = None
        try:
            while True:
                item = await self._frames.get()
                if isinstance(item, _SourceEnded):
                    reason = item.reason
                    for event in self.endpointer.flush():
                        self._handle(event)
                    break
                if self.frame_filter is not None:
                    item = self.frame_filter(item)
                self._recent.append(item)
                for event in self.endpointer.process(item):
                    self._handle(event)
            self._utterances.put_nowait(None)
            await transcriber
        finally:
            self.source.stop()
            transcriber.cancel()
        self.on_end(reason)

    def _put(self, frame: AudioFrame) -> None:
        if self.max_queued_frames is not None and self._frames.qsize() >= self.max_queued_frames:
            # Never block the audio thread: drop the oldest frame and count it.
            self._frames.get_nowait()
            self.dropped_frames += 1
            log.debug("listener: dropped a frame (%d so far)", self.dropped_frames)
        self._frames.put_nowait(frame)

    def _handle(self, event: Any) -> None:
        if isinstance(event, SpeechStarted):
            self._drop_speculation()
            self.on_speech_started(event.t_start)
        elif isinstance(event, SpeechResumed):
            self._drop_speculation()
        elif isinstance(event, SpeechPaused):
            # Start speech-to-text inside the silence window; kept only if the user is done.
            task = asyncio.ensure_future(self._transcribe(event.audio, self._t_audio(event.audio)))
            speculation = (event.t_end, task)
            self._speculation = speculation
            if self.on_early_text is not None:
                task.add_done_callback(lambda t: self._early_transcript(speculation, event.t_start))
        elif isinstance(event, SpeechEnded):
            early = None
            if self._speculation is not None and self._speculation[0] == event.t_end:
                early = self._speculation[1]
                self._speculation = None
                log.debug("stt: the speculative transcript stands")
            else:
                self._drop_speculation()
            self._utterances.put_nowait((event, early, self._t_audio(event.audio)))

    def _t_audio(self, audio: Any) -> float | None:
        """When the first sample of an event's ``audio`` was captured: it ends with the frame
        just handled (the endpointer joins whole frames)."""
        if not self._recent:
            return None
        return self._recent[-1].t_capture - len(audio) / SAMPLE_RATE_HZ

    def _drop_speculation(self) -> None:
        if self._speculation is None:
            return
        self._speculation = None
        if self.on_early_dropped is not None:
            self.on_early_dropped()

    def _early_transcript(
        self, speculation: tuple[float, asyncio.Future[Heard]], t_start: float
    ) -> None:
        """The speculative transcript is ready while the silence window is still open."""
        t_end, task = speculation
        if self._speculation is not speculation or task.cancelled() or task.exception():
            return  # the user went on, or it failed (the final transcription says so)
        heard = task.result()
        if self._verdict(heard, t_start) is None and self.on_early_text is not None:
            self.on_early_text(self._user_text(heard.transcript, t_end, time.monotonic()))

    def _verdict(self, heard: Heard, t_start: float) -> str | None:
        """Why what was heard is not a turn (rejected, empty, our own echo), or None.

        The sound decides first where it can: sound that our voice explains is our echo, and sound
        mostly someone else's is theirs, whatever its words (ours are taken out of the transcript);
        in between, a transcript mostly made of our recent words is our echo."""
        transcript = heard.transcript
        if transcript.rejected or not transcript.text.strip():
            return transcript.rejected or "no words"
        if heard.not_ours is not None:
            if heard.not_ours >= SOMEONE_ELSE_MIN:
                return None
            if heard.not_ours < ECHO_RESIDUAL_MAX:
                return ECHO
        return ECHO if self.heard_echo(transcript.text, t_start) else None

    @staticmethod
    def _user_text(transcript: Transcript, t_end: float, t_ready: float) -> UserText:
        return UserText(
            transcript.text.strip(),
            Source.VOICE,
            t_speech_end=t_end,
            t_transcript=t_ready,
            language=transcript.language,
        )

    async def _transcribe(self, audio: Any, t0: float | None = None) -> Heard:
        """Speech-to-text of ``audio``; captured from ``t0`` on, what we played is taken out of it
        first, so that a person talking over the reply is heard without our words."""
        await self.stt_ready
        reference = self.echo_reference

        def work() -> Heard:
            if reference is None or t0 is None:
                return Heard(self.stt.transcribe(audio, self.language))
            cleaned, not_ours = reference.separate(audio, t0)
            return Heard(self.stt.transcribe(cleaned, self.language), not_ours)

        return await asyncio.to_thread(work)

    async def _transcribe_in_order(self) -> None:
        while (item := await self._utterances.get()) is not None:
            ended, early, t0 = item
            started = time.monotonic()
            try:
                heard = await (early or self._transcribe(ended.audio, t0))
            except PerslmVoiceError as exc:
                self.on_rejected(f"{STT_FAILED}: {exc}")
                continue
            except Exception as exc:  # a bug must not end listening: this utterance is lost
                log.exception("stt: failed on an utterance")
                self.on_rejected(f"{STT_FAILED}: {type(exc).__name__}: {exc}")
                continue
            t_ready = time.monotonic()
            transcript = heard.transcript
            log.debug(
                "stt: %.0f ms after end of speech (%.0f ms of work waited for): %r%s",
                (t_ready - ended.t_end) * 1000,
                (t_ready - started) * 1000,
                transcript.text,
                f" rejected: {transcript.rejected}" if transcript.rejected else "",
            )
            verdict = self._verdict(heard, ended.t_start)
            if verdict == ECHO:
                self.echo_dropped += 1
                log.info("echo: dropped a voice turn made of our own words: %r", transcript.text)
            if verdict is not None:
                self.on_rejected(verdict)
                continue
            self.on_text(self._user_text(transcript, ended.t_end, t_ready))


class Speaker:
    """Speaks one reply at a time while its text is still arriving."""

    def __init__(
        self,
        tts: TTS,
        tts_ready: asyncio.Future[Any],
        player: Player,
        on_first_audio: Callable[[float], None],
        on_failure: Callable[[str], None],
    ):
        self.tts = tts
        self.on_failure = on_failure
        self.tts_ready = tts_ready
        self.player = player
        self._on_first_audio = on_first_audio
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._stream = SpeakableStream()
        self._task: asyncio.Task[None] | None = None
        self._marks: dict[str, float] = {}
        self._spoken: list[str] = []
        self._held: list[Any] = []  # synthesized, not yet handed to the player
        self._released = True
        self._queued_until = 0.0  # when the voice handed to the player will have been played
        self._paused_at = 0.0
        self.speaking = False
        self.spoken = SpokenLog()  # what was played lately, for the echo check
        loop = asyncio.get_running_loop()
        player.on_first_audio = lambda t: loop.call_soon_threadsafe(self._first_audio, t)
        follow_player(player, self.spoken.played, self.spoken.silenced)

    def _first_audio(self, t: float) -> None:
        if self.speaking:
            self._marks.setdefault("first_audio_played", t)
            self._on_first_audio(t)

    def begin(
        self,
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
        self._marks = marks
        self._spoken = []
        self._held = []
        self._released = not hold
        self._queued_until = 0.0
        self.speaking = True
        self._task = asyncio.create_task(self._synthesize(voice, streaming), name="tts")

    def release(self) -> None:
        """A held reply is wanted after all: play what is ready, and the rest as it comes."""
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

    async def finish(self) -> None:
        """The reply's text is complete: speak the rest and wait until it has been played."""
        for sentence in self._stream.flush():
            self._sentences.put_nowait(sentence)
        self._sentences.put_nowait(None)
        if self._task is not None:
            await self._task
        await asyncio.to_thread(self.player.wait_idle, None)
        self.speaking = False

    def may_echo(self, t_speech_start: float, tail_s: float = ECHO_TAIL_S) -> bool:
        """Our voice was audible lately: speech that began at ``t_speech_start`` may be its echo."""
        return self.spoken.audible_since(t_speech_start - tail_s)

    def pause(self) -> float:
        """Go quiet at once (a barge-in candidate is being checked); return when it went quiet."""
        self.player.pause()
        self._paused_at = time.monotonic()
        return self._paused_at

    def resume(self) -> None:
        """The candidate was our own echo: go on speaking where pause() cut."""
        self.player.resume()
        self._queued_until += time.monotonic() - self._paused_at

    def interrupt(self) -> str:
        """Silence at once and drop what is queued; return the text the user actually heard."""
        if self._task is not None:
            self._task.cancel()
        heard = self.player.stop()
        self.speaking = False
        return heard

    async def _synthesize(self, voice: VoiceSettings, streaming: bool) -> None:
        try:
            await self.tts_ready
        except PerslmVoiceError as exc:
            self.on_failure(str(exc))
            return
        while (sentence := await self._sentences.get()) is not None:
            if streaming:
                await self._wait_for_room()
            started = time.monotonic()
            try:
                chunks = await asyncio.to_thread(
                    lambda s=sentence: list(self.tts.synthesize(s, voice))
                )
            except PerslmVoiceError as exc:
                # The reply goes on as text; the loop tells the user once.
                self.on_failure(str(exc))
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
            self._spoken.append(sentence)
        if self._released:
            self._play_held()


def open_listener(
    config: Config,
    audio_input: str | None,
    **callbacks: Any,
) -> tuple[Listener, str]:
    """The session's Listener and a description of what it hears; AudioError when there is no
    microphone (the session then goes on typed) and ConfigError/BackendUnavailable for bad set-ups.

    Speech-to-text loads in the background; frames are endpointed meanwhile.
    """
    from .audio.capture import FileSource
    from .audio.microphone import open_microphone
    from .audio.vad import create_vad
    from .stt import create_stt

    source: AudioSource
    if audio_input:
        source = FileSource(audio_input, speed=config.audio.input_speed)
        bound = None
    else:
        source = open_microphone(config.audio)
        bound = config.audio.queue_frames
    stt = create_stt(config.speech)
    vad = create_vad(config.vad)
    endpointer = Endpointer(vad, config.speech.audio, config.vad)
    stt_ready = asyncio.get_running_loop().run_in_executor(None, stt.load)
    stt_ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # reported when awaited
    listener = Listener(
        source,
        endpointer,
        stt,
        stt_ready,
        language=config.speech.language,
        max_queued_frames=bound,
        **callbacks,
    )
    return listener, f"{source.description}; {stt.description}"


def open_speaker(
    config: Config,
    audio_output: str | None,
    on_first_audio: Callable[[float], None],
    on_failure: Callable[[str], None],
) -> tuple[Speaker, str]:
    """The session's Speaker and a description of the voice; AudioError with no output device."""
    from .audio.playback import open_player
    from .tts import create_tts, with_cache

    tts = with_cache(create_tts(config.tts), config.tts)
    player = open_player(config.audio, audio_output)
    tts_ready = asyncio.get_running_loop().run_in_executor(None, tts.load)
    tts_ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # reported when awaited
    speaker = Speaker(tts, tts_ready, player, on_first_audio, on_failure)
    return speaker, f"{tts.description} -> {player.description}"


def protect_from_echo(
    config: Config,
    listener: Listener | None,
    speaker: Speaker | None,
    echo_room: str | None = None,
) -> list[str]:
    """Wire the echo measures between the listener and the speaker; return what is active.

    The echo test room (``--echo-room``) needs ``--audio-input``. Echo cancellation runs where the
    frames carry real capture times (a microphone, or a recording played in real time).
    """
    active: list[str] = []
    if listener is None or speaker is None:
        if echo_room:
            raise UsageError("--echo-room needs --audio-input and a voice to hear")
        return active
    if echo_room:
        from .audio.capture import FileSource

        if not isinstance(listener.source, FileSource):
            raise UsageError("--echo-room needs --audio-input (it mixes the voice into the file)")
        room = EchoRoom(EchoRoomSpec.parse(echo_room), listener.source)
        room.attach(speaker.player)
        active.append(room.description)
    if config.audio.echo_check:
        listener.echo_text = speaker.spoken.echo_source
        reference = EchoReference()
        follow_player(speaker.player, reference.played, reference.silenced)
        listener.echo_reference = reference
        active.append("echo check")
    realtime = getattr(listener.source, "speed", "realtime") == "realtime"
    canceller = open_canceller(config.audio.echo_cancellation) if realtime else None
    if canceller is not None:
        follow_player(speaker.player, canceller.played, canceller.silenced)
        listener.frame_filter = canceller.process
        active.append(canceller.description)
    return active


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
