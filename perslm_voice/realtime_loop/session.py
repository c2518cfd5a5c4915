"""The session engine: one conversation for one user, knowing no terminal.

A front-end (the terminal, a recording, a network client) feeds it inputs, all on the session's
event loop::

    session.push_audio(frame)         audio frames with their capture times
    session.end_audio(reason)         the audio input ended (a recording's end, a lost device)
    session.type_line(text, live=...) a typed line or /command (``live``: typed as it happens,
                                      so it interrupts a reply, and /quit acts at once)
    session.interrupt()               the user stopped the reply (Ctrl+C, a button)
    session.stop()                    end the session (thread-safe)

and renders the events it gives (perslm_voice/events.py) through ``session.subscribe``. Its voice
goes to a `Player` (pygame, a WAV file, a network client): play, pause, resume, stop, and how
much was heard. One decision per module: the listener hears (listener.py), the speaker speaks
(speaker.py), barge-in is decided in bargein.py, speculative replies are drafts.py, the turn
itself is turn.py, the history history.py, and the store is used from its own thread
(persist.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..audio.player import Player
from ..config import Config, VoiceSettings
from ..echo import EchoGuard
from ..errors import StoreError
from ..events import (
    AudioFrame,
    BargeIn,
    Level,
    Notice,
    SessionEnded,
    Source,
    State,
    StateChanged,
    UserText,
)
from .bargein import BargeInJudge
from .commands import QUIT, clean_line, command_name, run_command, watch_idle
from .drafts import Draft, Drafts
from .history import History
from .listener import InputEnded, Listener
from .models import Models
from .observers import EventBus, Observer, attach_observers
from .persist import StoreWorker
from .reactions import on_stage
from .reminders import reminders_for, say_when_due
from .speaker import Speaker, voice_for
from .stages import describe, wire_stages
from .toolbelt import open_tools
from .turn import TurnRunner

log = logging.getLogger(__name__)

KEEP_WAIT_S = 5.0  # at the end, the longest wait for the last turns to be stored


class Session:
    """A conversation: inputs in, events out (see the module docstring).

    ``hearing``: the front-end will push audio (a listener is set up when speech-to-text can
    start). ``player``: a started audio output, or None for text only. ``realtime_input``: the
    frames carry real capture times (a microphone, or a recording paced in real time), so speech
    over the reply is a barge-in and echo cancellation can run. ``input_ends_session``: the audio
    input is a recording, and its end ends the session (end of typed input then does not).
    ``max_queued_frames``: the bound of frames waiting to be heard (None keeps every frame).
    ``partial_interval_s``: seconds of speech between partial transcripts (None: the
    configured ``speech.partial_interval_s``; 0 or unset: none).
    """

    def __init__(
        self,
        config: Config,
        user_id: str = "default",
        *,
        models: Models | None = None,
        hearing: bool = False,
        player: Player | None = None,
        incognito: bool = False,
        realtime_input: bool = True,
        input_ends_session: bool = False,
        max_queued_frames: int | None = None,
        partial_interval_s: float | None = None,
    ):
        self.config = config
        self.user_id = user_id
        self.incognito = incognito
        self.realtime_input = realtime_input
        self.input_ends_session = input_ends_session
        self._hearing = hearing
        self._player = player
        self._max_queued_frames = max_queued_frames
        if partial_interval_s is None:
            partial_interval_s = config.speech.partial_interval_s
        self.partial_interval_s = partial_interval_s or 0.0
        self._models = models
        self.bus = EventBus()
        self.history = History()
        self.exit_code = 0
        self.state = State.LOADING
        self.listener: Listener | None = None
        self.speaker: Speaker | None = None
        self.guard: EchoGuard | None = None
        self.judge: BargeInJudge | None = None
        self.store = StoreWorker(None, None)
        self.voice: VoiceSettings = config.tts.voice
        self.tts_failed = False
        self.tools: Any = None  # a tools.reply.ToolUse when tools are on
        self.reminders: Any = None  # a tools.timers.Reminders, said when due (reminders.py)
        self.awaiting_answer = False  # a tool asked "Send it to Ann?": the next turn answers
        self.turns = TurnRunner(self)
        self.drafts = Drafts(self._draft_dropped)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = threading.Event()
        self._stop: asyncio.Event | None = None
        self._inputs: asyncio.Queue[UserText | str | None] = asyncio.Queue()
        self.activity = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keeping: set[asyncio.Task[Any]] = set()
        self._closers: list[Callable[[], Any]] = []
        self._opened = False

    # -- set-up ----------------------------------------------------------------------------------

    @property
    def models(self) -> Models:
        assert self._models is not None, "the session is not open"
        return self._models

    async def open(self) -> None:
        """Open the store, start loading the models and wire the stages; notices go out as
        events (subscribe first to see them). Called by ``run()`` when not called before."""
        if self._opened:
            return
        self._opened = True
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for problem in attach_observers(self):
            self.notify(problem)
        self.store, problem = await asyncio.to_thread(
            StoreWorker.open, self.config, self.user_id, self.incognito
        )
        if problem:
            self.notify(problem)
        if self._models is None:
            self._models = Models.load(
                self.config,
                hearing=self._hearing,
                speaking=self._player is not None,
                notify=self.notify_threadsafe,
            )
            for notice in self._models.problems:
                self.emit(notice)
        models = self._models
        if models.llm_ready is not None:
            models.llm_ready.add_done_callback(self._llm_loaded)
        user_language = None
        if self.store.store is not None:
            with contextlib.suppress(StoreError):
                profile = await self.store.run(lambda store: store.get_profile(self.user_id))
                self.voice = voice_for(self.config, profile)
                user_language = profile.language
        self.reminders = reminders_for(self)
        self.tools = await open_tools(self)
        stages = wire_stages(
            self, models, self._player, self._hearing, self._max_queued_frames, user_language
        )
        self.speaker, self.listener = stages.speaker, stages.listener
        self.guard, self.judge = stages.guard, stages.judge

    @property
    def hearing(self) -> bool:
        """Audio pushed in is heard (speech-to-text could start)."""
        return self.listener is not None

    @property
    def speaking(self) -> bool:
        """Replies are spoken (a voice could start, and has not failed)."""
        return self.speaker is not None and not self.tts_failed

    def describe(self) -> dict[str, str]:
        """What the session runs on, for a banner: the language model, speech in and out, the
        echo measures and the memory."""
        return describe(self)

    @property
    def backend_label(self) -> str:
        llm = self.config.llm
        stt = self.config.speech.backend if self.listener is not None else "-"
        tts = getattr(self.speaker.tts, "name", "?") if self.speaker is not None else "-"
        return f"llm:{llm.preset or llm.backend} stt:{stt} tts:{tts}"

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, observer: Observer, *types: type) -> Callable[[], None]:
        """Call ``observer(event)`` for each event of ``types`` (all when none are given)."""
        return self.bus.subscribe(observer, *types)

    def on_close(self, closer: Callable[[], Any]) -> None:
        """Call ``closer()`` when the session ends (an observer's clean-up; may be async)."""
        self._closers.append(closer)

    def emit(self, event: Any) -> None:
        self.bus.emit(event)

    def notify(self, text: str, level: Level | None = None) -> None:
        self.emit(Notice(text, level or Level.WARNING))

    def notify_threadsafe(self, text: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.notify, text)

    def set_state(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            self.emit(StateChanged(state))

    def spawn(
        self, work: Coroutine[Any, Any, Any], name: str, keep: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``work`` as a task of the session's: cancelled when the session ends, or, with
        ``keep`` (what must be stored), waited for."""
        task = asyncio.create_task(work, name=name)
        tasks = self._keeping if keep else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    # -- inputs ----------------------------------------------------------------------------------

    def push_audio(self, frame: AudioFrame) -> None:
        """A captured frame (on the event loop; hand over from a device thread with
        ``loop.call_soon_threadsafe``)."""
        if self.listener is not None:
            self.emit(frame)  # for observers: the recorder
            self.listener.push(frame)

    def end_audio(self, reason: str | None = None) -> None:
        """The audio input ended: None at the end of a recording, else why (device lost)."""
        if self.listener is not None:
            self.listener.end(reason)
        else:
            self.on_stage(InputEnded(reason))

    def type_line(self, raw: bytes | str | None, live: bool = False) -> None:
        """A typed line (None: the end of typed input). A ``live`` line, typed as it happens,
        interrupts a reply, and /quit then acts at once (control overtakes data); piped lines
        wait their turn."""
        if raw is None:
            if not self.input_ends_session:  # with a recording, its end ends the session
                self._inputs.put_nowait(None)
            return
        text, replaced = clean_line(raw)
        if replaced:
            self.notify("Part of that line was not valid UTF-8; it was replaced with '\ufffd'.")
        if not text:
            return
        self.active()
        command = command_name(text)
        if command is None:
            self.drafts.drop()  # the user typed instead: a reply to what they said is not wanted
            if live:
                self.barge_in("typed")  # a line typed over the assistant interrupts it
            self._inputs.put_nowait(UserText(text, Source.KEYBOARD, t_transcript=time.monotonic()))
        elif live and command in QUIT:
            self.stop()
        else:
            self._inputs.put_nowait(text)

    def interrupt(self) -> bool:
        """Stop the reply in progress (Ctrl+C); False when there was none."""
        if not self.replying():
            return False
        self.turns.cancel()
        return True

    def stop(self, exit_code: int | None = None) -> None:
        """End the session (thread-safe, idempotent)."""
        if exit_code is not None:
            self.exit_code = exit_code
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the conversation until the session ends; return the exit code."""
        await self.open()
        assert self._stop is not None
        if self._stop_requested.is_set():
            self._stop.set()
        self.set_state(State.LISTENING)
        self.spawn(self._conversation(), "conversation")
        self.spawn(watch_idle(self), "timeout")
        if self.listener is not None:
            self.spawn(self._listen(self.listener), "listener")
        if self.reminders is not None:
            self.spawn(say_when_due(self, self.reminders), "reminders")
        try:
            await self._stop.wait()
        finally:
            await self._shutdown()
        return self.exit_code

    async def _listen(self, listener: Listener) -> None:
        try:
            await listener.run()
        except Exception as exc:  # a bug: say so, and do not wait forever for a recording's end
            log.exception("listener failed")
            self.notify(f"voice input failed ({type(exc).__name__}: {exc}); carrying on typed.")
            if self.input_ends_session:
                self._inputs.put_nowait(None)

    async def _shutdown(self) -> None:
        log.debug("session: ending")
        self.drafts.drop()
        if self.judge is not None:
            self.judge.cancel()
        await self.turns.shutdown()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The last turns are stored before the store closes (storing one may start another).
        deadline = time.monotonic() + KEEP_WAIT_S
        while pending := [t for t in self._keeping if not t.done()]:
            if time.monotonic() >= deadline:
                names = ", ".join(t.get_name() for t in pending)
                log.warning("storing the last turn takes too long (%s); ending without it", names)
                break
            await asyncio.wait(pending, timeout=deadline - time.monotonic())
        self.set_state(State.STOPPED)
        for closer in self._closers:
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("an observer failed to close")
        await self.store.close()
        log.debug("session: ended")
        self.emit(SessionEnded(self.exit_code))

    def queue_input(self, item: UserText | str | None) -> None:
        """A line, an utterance or the end of input (None), answered in turn."""
        self._inputs.put_nowait(item)

    def active(self) -> None:
        """Something happened: the idle timeout starts again."""
        self.activity.set()

    async def _conversation(self) -> None:
        while True:
            item = await self._inputs.get()
            if item is None:  # end of input (Ctrl+D, end of a pipe, end of a recording)
                self.stop()
                return
            if isinstance(item, str):
                if not await run_command(self, item):
                    self.stop()
                    return
                continue
            await self.turns.run(item)
            self.active()

    def replying(self) -> bool:
        return self.turns.replying()

    async def next_input(self) -> UserText | str | None:
        """The next line or utterance (a command as its text; None at the end of input)."""
        return await self._inputs.get()

    def end_input(self) -> None:
        """End the session once the turn in progress is over."""
        self._inputs.put_nowait(None)

    def input_pending(self) -> bool:
        """A line or an utterance waits for its turn."""
        return not self._inputs.empty()

    # -- what the stages report ------------------------------------------------------------------

    def on_stage(self, event: Any) -> None:
        """The listener's and the speaker's results, on the event loop (see reactions.py)."""
        on_stage(self, event)

    def _draft_dropped(self, draft: Draft) -> None:
        if draft.spoken and self.speaker is not None:
            self.speaker.discard()

    def barge_in(
        self, how: str, t_speech_start: float | None = None, marks: dict[str, float] | None = None
    ) -> None:
        """The user takes the turn: stop the reply (when interruptions are on)."""
        turn = self.turns.current
        if turn is None or not self.replying() or self.awaiting_answer:
            return
        if not self.config.interaction.interruption_enabled:
            return
        log.info("barge-in (%s): stopping the reply", how)
        now = time.monotonic()
        if marks:
            turn.marks.update(marks)
        turn.marks.setdefault("barge_in_detected", now)
        if t_speech_start is not None:
            turn.marks["barge_in_speech_start"] = t_speech_start
        self.emit(BargeIn(turn.number, how, turn.marks["barge_in_detected"]))
        self.turns.cancel()

    def _llm_loaded(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        if future.exception() is None:
            self.turns.prefill_next()
            return
        self.notify(f"The language model cannot start: {future.exception()}", Level.ERROR)
