"""Hearing the user: audio frames in; speech started/ended, early and final transcripts out.

The path of a voice turn, top to bottom::

    push(frame)                       the front-end hands over a frame (on the event loop)
      -> bounded queue                on overflow the oldest frame is dropped and counted
      -> EchoGuard.clean              echo cancellation, when configured: what the VAD hears
      -> Endpointer.process           VAD: SpeechStarted, SpeechPaused, SpeechResumed, SpeechEnded
                                      (the utterance keeps the microphone's own frames)
      -> while speech goes on         every partial_interval_s, when no other transcription runs,
                                      the words so far: PartialTranscript (not while we talk)
      -> SpeechPaused: STT starts     speculatively, inside the end-of-speech window
         (and the Smart Turn model, on the same audio, when vad.turn_detection is smart_turn)
         -> EarlyText                 the early transcript: the session may draft its reply
         -> turn_detector.decide      words/smart_turn: complete -> Endpointer.end_now(), the
                                      utterance ends at once; wait -> up to vad.turn_max_wait_s
      -> SpeechEnded -> STT           (or the speculative result, when nobody spoke again)
         -> EchoGuard.turn_is_echo    our own voice is not a turn
         -> UserText | UtteranceRejected

Every result goes out through ``emit``, in order; model calls run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..audio.endpointer import FRAME_S, Endpointer, SpeechPaused, SpeechResumed
from ..audio.turn_detector import Detection, TurnDecision, decide, unfinished
from ..echo import EchoGuard
from ..errors import PerslmVoiceError
from ..events import (
    AudioFrame,
    PartialTranscript,
    Rejection,
    SpeechEnded,
    SpeechStarted,
    Transcript,
    UserText,
)
from ..stt.base import STT
from .recent import RecentAudio
from .transcriber import Heard, Transcriber, rejected

log = logging.getLogger(__name__)

RECENT_AUDIO_S = 3.0  # audio the listener keeps for a barge-in check
# Smart Turn reads the last 8 s, earlier pieces of speech included: on bench_turns.py the model
# hearing the stream cut 11 of 25 turns, hearing only the piece since the last end 14.
TURN_CONTEXT_S = 8.0
FIRST_PARTIAL_S = 0.3  # speech (from its first voiced frame) before the first partial transcript


@dataclass(frozen=True)
class EarlyText:
    """The early transcript of an utterance that may be over (the end-of-speech window is still
    open): a reply may be drafted on it."""

    text: UserText


@dataclass(frozen=True)
class EarlyDropped:
    """The user went on talking: what was started on the early transcript is stale."""


@dataclass(frozen=True)
class InputEnded:
    """The audio input ended: ``reason`` None at the end of a recording, else why (device lost)."""

    reason: str | None


@dataclass(frozen=True)
class TurnEnd:
    """Why an utterance ended (a ``TurnDecision`` reason, or ``silence``) and when it was decided."""

    reason: str
    t_decided: float


class Listener:
    """One stream of the user's audio, endpointed and transcribed."""

    def __init__(
        self,
        endpointer: Endpointer,
        stt: STT,
        stt_ready: asyncio.Future[Any],
        emit: Callable[[Any], None],
        *,
        language: str | None,
        user_language: str | None = None,
        guard: EchoGuard | None = None,
        max_queued_frames: int | None = None,
        partial_interval_s: float = 0.0,
        turn_model: asyncio.Future[Callable[[np.ndarray], float] | None] | None = None,
    ):
        self.endpointer = endpointer
        self.guard = guard
        self.transcriber = Transcriber(
            stt, stt_ready, language=language, user_language=user_language, guard=guard
        )
        self.max_queued_frames = max_queued_frames  # None: a file, every frame is kept
        self.dropped_frames = 0
        self.echo_dropped = 0
        self._emit = emit
        self.detection = Detection(endpointer.vad_config.turn_detection)
        # P(complete) of the turn so far from its sound (the Smart Turn model, loading), or None.
        self.turn_model = turn_model
        self._turn_end: TurnEnd | None = None  # set while end_now() ends an utterance
        self._turn_task: asyncio.Task[None] | None = None
        self._frames: asyncio.Queue[AudioFrame | InputEnded] = asyncio.Queue()
        self._utterances: asyncio.Queue[
            tuple[SpeechEnded, asyncio.Future[Heard] | None, float | None, TurnEnd | None] | None
        ] = asyncio.Queue()
        self._speculation: tuple[float, asyncio.Future[Heard]] | None = None
        recent_s = TURN_CONTEXT_S if turn_model is not None else RECENT_AUDIO_S
        self.recent = RecentAudio(recent_s, guard)
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._transcribed = asyncio.Event()  # every utterance that ended has its transcript out
        self._transcribed.set()
        self._monologue = False  # the last utterance was cut at max_duration: more will follow
        # Partial transcripts: one at a time, only while no other transcription runs, so that
        # their cost is bounded by one transcription at a time and never delays a turn's.
        self.partial_interval_s = partial_interval_s
        self.partials_made = 0
        self.partial_busy_s = 0.0  # seconds spent transcribing partials (the benchmark reads it)
        self._partial: asyncio.Task[None] | None = None
        self._speech_t_start: float | None = None
        self._next_partial_s = 0.0
        self._utterance = 0  # counts SpeechStarted: a partial is shown only for its own utterance
        self._ends = 0  # SpeechEnded events, and the utterances whose transcript is out
        self._finals = 0

    # -- inputs (on the event loop) --------------------------------------------------------------

    def push(self, frame: AudioFrame) -> None:
        """A captured frame. Never blocks: past the bound the oldest frame is dropped, counted."""
        if self.max_queued_frames is not None and self._frames.qsize() >= self.max_queued_frames:
            self._frames.get_nowait()
            self.dropped_frames += 1
            log.debug("listener: dropped a frame (%d so far)", self.dropped_frames)
        self._frames.put_nowait(frame)

    def end(self, reason: str | None = None) -> None:
        """The audio input ended; speech in progress is still transcribed."""
        self._frames.put_nowait(InputEnded(reason))

    def set_strict(self, strict: bool) -> None:
        """While the assistant talks only clear, sustained speech counts (barge-in, not echo)."""
        self.endpointer.assistant_speaking = strict

    # -- what the barge-in check asks -----------------------------------------------------------

    async def wait_quiet(self, timeout_s: float) -> bool:
        """Wait until the current speech ends; False when it goes on past ``timeout_s``."""
        return await _wait(self._quiet, timeout_s)

    async def wait_transcripts(self, timeout_s: float) -> bool:
        """Wait until every utterance that ended has its transcript out (``timeout_s`` at most)."""
        return await _wait(self._transcribed, timeout_s)

    # -- the work --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen until the input ends (or the task is cancelled); pending speech is transcribed."""
        transcriber = asyncio.create_task(self._transcribe_in_order(), name="stt")
        reason: str | None = None
        try:
            while True:
                item = await self._frames.get()
                if isinstance(item, InputEnded):
                    reason = item.reason
                    for event in self.endpointer.flush():
                        self._handle(event)
                    break
                # The canceller's output decides whether someone speaks; what was said is read
                # from the microphone as it was (the transcriber and the sound check take our
                # voice out themselves): AEC3's suppressor bites into a person's first words.
                heard = self.guard.clean(item).samples if self.guard is not None else None
                self.recent.append(item)
                for event in self.endpointer.process(item, heard):
                    self._handle(event)
                self._maybe_partial(item.t_capture)
                self._update_quiet()
            self._quiet.set()
            self._utterances.put_nowait(None)
            await transcriber
        finally:
            transcriber.cancel()
            if self._partial is not None:
                self._partial.cancel()
        self._emit(InputEnded(reason))

    def _update_quiet(self) -> None:
        if self.endpointer.in_speech:
            self._quiet.clear()
        else:
            self._quiet.set()

    def _handle(self, event: Any) -> None:
        if isinstance(event, SpeechStarted):
            self._drop_speculation()
            self._utterance += 1
            self._speech_t_start = event.t_start
            # The first words show soon (a short "yes" gets one too), then every interval.
            self._next_partial_s = min(self.partial_interval_s, FIRST_PARTIAL_S)
            self._emit(event)
        elif isinstance(event, SpeechResumed):
            self._drop_speculation()
        elif isinstance(event, SpeechPaused) and not self._monologue:
            # Start speech-to-text inside the silence window; kept only if the user is done.
            # (Not at the end of a cut monologue: the whole turn is read when it ends.)
            paused, t0 = self.recent.users_part(event)
            task = asyncio.ensure_future(self.transcriber.transcribe(paused.audio, t0))
            speculation = (event.t_end, task)
            self._speculation = speculation
            task.add_done_callback(lambda t: self._early_transcript(speculation, event.t_start))
        elif isinstance(event, SpeechEnded):
            self._monologue = event.truncated  # a cut monologue: the turn goes on
            early = None
            if self._speculation is not None and self._speculation[0] == event.t_end:
                early = self._speculation[1]
                self._speculation = None
                log.debug("stt: the speculative transcript stands")
            else:
                self._drop_speculation()
            self._ends += 1
            self._transcribed.clear()
            turn_end = self._turn_end
            if turn_end is None and self.endpointer.early_turns:
                turn_end = TurnEnd("silence", time.monotonic())
            self._emit(event)
            ended, t0 = self.recent.users_part(event)
            self.recent.user_speaks_from(None)
            self._utterances.put_nowait((ended, early, t0, turn_end))

    def _loaded_turn_model(self) -> Callable[[np.ndarray], float] | None:
        """The Smart Turn model once it has loaded (until then, and without it, words decide)."""
        future = self.turn_model
        if future is None or not future.done() or future.cancelled() or future.exception():
            return None
        return future.result()

    def _maybe_partial(self, t_now: float) -> None:
        """Every ``partial_interval_s`` of speech, the words so far, when nothing else is being
        transcribed (a turn's transcript, the speculative one, a barge-in check, the last
        partial) and the assistant is not talking (its echo is the barge-in check's business)."""
        start = self._speech_t_start
        if (
            self.partial_interval_s <= 0
            or start is None
            or not self.endpointer.in_speech
            or self.endpointer.in_pause  # the end of speech may come: its transcript goes first
            or self.endpointer.assistant_speaking
            or t_now - start < self._next_partial_s
            or self.transcriber.running
            or self._speculation is not None
            or not self._utterances.empty()
            or (self._partial is not None and not self._partial.done())
            or not self.transcriber.stt_ready.done()
        ):
            return
        self._next_partial_s = t_now - start + self.partial_interval_s
        audio = self.endpointer.speech_so_far()
        self._partial = asyncio.ensure_future(self._transcribe_partial(audio, self._utterance))

    async def _transcribe_partial(self, audio: np.ndarray, utterance: int) -> None:
        started = time.monotonic()
        try:
            transcript = await self.transcriber.transcribe_words(audio)
        except Exception as exc:  # a partial is a courtesy: the turn's own transcript says more
            log.debug("stt: a partial transcript failed: %s", exc)
            return
        finally:
            self.partial_busy_s += time.monotonic() - started
        self.partials_made += 1
        text = transcript.text.strip()
        # Shown while it is news: the user has not begun another utterance, and this one's own
        # transcript is not out yet (a partial may finish just after the end of speech).
        pending = self.endpointer.in_speech or self._finals < self._ends
        if text and utterance == self._utterance and pending:
            self._emit(PartialTranscript(text))

    def _drop_speculation(self) -> None:
        if self._speculation is None:
            return
        self._speculation = None
        self._emit(EarlyDropped())

    def _early_transcript(
        self, speculation: tuple[float, asyncio.Future[Heard]], t_start: float
    ) -> None:
        """The speculative transcript is ready while the silence window is still open."""
        t_end, task = speculation
        if self._speculation is not speculation or task.cancelled() or task.exception():
            return  # the user went on, or it failed (the final transcription says so)
        heard = task.result()
        if self.transcriber.verdict(heard, t_start) is None:
            text = self.transcriber.user_text(heard.transcript, t_end, time.monotonic())
            self._emit(PartialTranscript(text.text, t_end))
            self._emit(EarlyText(text))
            if self.endpointer.early_turns:
                self._turn_task = asyncio.ensure_future(self._decide_turn(speculation, text.text))

    async def _decide_turn(
        self, speculation: tuple[float, asyncio.Future[Heard]], text: str
    ) -> None:
        """End of turn from the words so far (and the model): complete ends the utterance now;
        wait leaves it to the silence window (vad.turn_max_wait_s). The transcript may come
        before the pause has lasted vad.turn_pause_s (it was started sooner, so that the reply
        is drafted sooner): the decision waits for it, and the model hears that pause."""
        pause_s = self.endpointer.vad_config.turn_pause_s
        while self.endpointer.silence_s < pause_s - 1e-9:
            if self._speculation is not speculation:
                return  # the user went on
            await asyncio.sleep(FRAME_S)
        p = None
        detection = self.detection
        model = self._loaded_turn_model()
        if detection is Detection.SMART_TURN and model is None:
            log.debug("turn: the Smart Turn model is not loaded (yet); the words decide")
            detection = Detection.WORDS
        elif model is not None and text.strip() and not unfinished(text):  # else words say wait
            try:  # on the other core while the draft is written
                p = await asyncio.to_thread(model, self.recent.samples())
            except Exception as exc:  # the words still decide; the failure is said once a turn
                log.warning("turn: the Smart Turn model failed (%s); the words decide", exc)
                detection = Detection.WORDS
        if self._speculation is not speculation:
            return  # the user went on meanwhile
        decision: TurnDecision = decide(
            detection, text, p, self.endpointer.vad_config.smart_turn_threshold
        )
        log.debug("turn: %s", decision.describe())
        if not decision.complete:
            return
        self._turn_end = TurnEnd(decision.reason, time.monotonic())
        try:
            for event in self.endpointer.end_now(speculation[0]):
                self._handle(event)
        finally:
            self._turn_end = None
        self._update_quiet()

    async def _transcribe_in_order(self) -> None:
        monologue: list[tuple[SpeechEnded, float | None]] = []
        while (item := await self._utterances.get()) is not None:
            ended, early, t0, turn_end = item
            try:
                if ended.truncated:  # more of the same turn follows
                    monologue.append((ended, t0))
                    continue
                pieces, monologue = [*monologue, (ended, t0)], []
                await self._transcribe_one(pieces, early, turn_end)
            finally:
                self._finals += 1
                if self._finals >= self._ends:
                    self._transcribed.set()

    async def _transcribe_one(
        self,
        pieces: list[tuple[SpeechEnded, float | None]],
        early: asyncio.Future[Heard] | None,
        turn_end: TurnEnd | None = None,
    ) -> None:
        """The transcript of one turn (one utterance, or a monologue's pieces), out as UserText
        or UtteranceRejected."""
        ended, t0 = pieces[-1]
        if len(pieces) > 1:
            ended = SpeechEnded(ended.audio, pieces[0][0].t_start, ended.t_end)
        started = time.monotonic()
        try:
            if len(pieces) > 1:
                heard = await self.transcriber.transcribe_pieces(pieces)
            else:
                heard = await (early or self.transcriber.transcribe(ended.audio, t0))
        except PerslmVoiceError as exc:
            self._reject(Rejection.FAILED, str(exc))
            return
        except Exception as exc:  # a bug must not end listening: this utterance is lost
            log.exception("stt: failed on an utterance")
            self._reject(Rejection.FAILED, f"{type(exc).__name__}: {exc}")
            return
        t_ready = time.monotonic()
        transcript = heard.transcript
        log.debug(
            "stt: %.0f ms after end of speech (%.0f ms of work waited for): %r%s",
            (t_ready - ended.t_end) * 1000,
            (t_ready - started) * 1000,
            transcript.text,
            f" rejected: {transcript.rejected}" if transcript.rejected else "",
        )
        verdict = self.transcriber.verdict(heard, ended.t_start)
        if verdict is not None and verdict[0] is Rejection.ECHO:
            self.echo_dropped += 1
            log.info("echo: dropped a voice turn made of our own words: %r", transcript.text)
        if verdict is not None:
            self._reject(*verdict, transcript)
            return
        text = self.transcriber.user_text(transcript, ended.t_end, t_ready)
        if turn_end is not None:
            text = replace(text, turn_end=turn_end.reason, t_turn_end=turn_end.t_decided)
        self._emit(text)

    def _reject(self, kind: Rejection, reason: str, transcript: Transcript | None = None) -> None:
        log.info("heard something, not taken as a turn: %s", reason)
        self._emit(rejected(kind, reason, transcript))


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for ``event``; False when ``timeout_s`` passes first."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except asyncio.TimeoutError:
        return False
    return True
