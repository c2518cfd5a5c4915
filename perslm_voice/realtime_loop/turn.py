"""One turn: the user's words in; the reply written, shown and spoken; the turn kept.

A reply is the draft made inside the end-of-speech window when there is one for these words
(drafts.py), the answer to a memory command ("remember that ..."), or the model's stream. It can
be interrupted (the task is cancelled: the voice stops, and what the user heard is kept) or fail
(one line that names the fix; a stream cut mid-answer keeps its part). Either way the turn enters
the history and the store, and its timings go out as an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LLMEmptyReply, LLMError, LLMStreamBroken, PerslmVoiceError, StoreError
from ..events import (
    Level,
    MemoryChanged,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    ReplyTextDone,
    Report,
    Source,
    State,
    TurnTimings,
    UserText,
)
from ..llm import Message, stream_async
from .drafts import Draft
from .timings import timing_rows

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 3.0  # an interrupted reply puts its turn away at the end (> STOP_WAIT_S)


@dataclass
class TurnRecord:
    """What the session knows about the turn in progress."""

    number: int
    user_text: str
    source: Source
    marks: dict[str, float] = field(default_factory=dict)  # stage -> time.monotonic()
    reply: str = ""
    interrupted: bool = False
    heard: str | None = None  # what the user actually heard of an interrupted reply
    text_done: bool = False  # the whole reply is out (speech may still be playing)
    text_out: asyncio.Event = field(default_factory=asyncio.Event)  # set then, or at its end
    unasked: list[str] = field(default_factory=list)  # reminders said inside its voice


class TurnRunner:
    """Runs the session's turns, one at a time."""

    def __init__(self, session: Session):
        self.session = session
        self.current: TurnRecord | None = None
        self.last: TurnRecord | None = None
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._prefill: asyncio.Task[None] | None = None
        self._last_user_text: str | None = None
        self._last_failed = False
        self._one_at_a_time = asyncio.Lock()  # a reply, or a reminder said unasked (reminders.py)

    def replying(self) -> bool:
        return self._task is not None and not self._task.done()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def run(self, text: UserText, store: bool = True) -> None:
        await self.run_alone(self._respond(text, store), "reply")

    async def run_alone(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` as the turn in progress, once no other is running: a barge-in or
        ``cancel()`` cancels it."""
        async with self._one_at_a_time:
            self._task = asyncio.create_task(work, name=name)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def new_turn(self, user_text: str, source: Source) -> TurnRecord:
        self._count += 1
        return TurnRecord(self._count, user_text, source)

    async def retry(self) -> bool:
        """Ask the last line again after a failure; False when there is nothing to retry."""
        if not (self._last_user_text and self._last_failed):
            return False
        await self.run(UserText(self._last_user_text, Source.KEYBOARD), store=False)
        return True

    async def shutdown(self) -> None:
        if self._prefill is not None:
            self._prefill.cancel()
        if self.replying():
            assert self._task is not None
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, SHUTDOWN_WAIT_S)

    # -- the prompt ------------------------------------------------------------------------------

    async def _messages(self, user_text: str) -> list[Message]:
        from ..persona import build_messages

        session = self.session
        llm = session.models.llm
        assert llm is not None

        def build(store: Any) -> list[Message]:
            return build_messages(
                store=store,
                user_id=session.user_id,
                session_id=session.store.session_id,
                user_text=user_text,
                config=session.config,
                llm=llm,
                history=session.history.messages,
                interrupted_note=session.history.interrupted_note,
            )

        return await session.store.run(build)

    def prefill_next(self) -> None:
        """Have the model read the next prompt as far as it is known (the system message and this
        session's history) now, while the user has yet to speak: the reply then reads only the
        user's words (LLM.prefill)."""
        models = self.session.models
        llm = models.llm
        if llm is None or not models.llm_is_ready():
            return

        async def prefill() -> None:
            try:
                messages = await self._messages("")
                await asyncio.to_thread(llm.prefill, messages[:-1])
            except Exception as exc:  # only a head start is lost: the reply reads it all
                log.debug("llm: reading the next prompt ahead failed: %s", exc)

        self._prefill = self.session.spawn(prefill(), "prefill")

    # -- speculative replies ---------------------------------------------------------------------

    def draft(self, text: UserText) -> None:
        """The early transcript of an utterance that may be over: start its reply, unheard."""
        session = self.session
        interaction = session.config.interaction
        if (
            not (interaction.streaming and interaction.speculative_reply)
            or self.replying()
            or session.drafts.pending
            or session.input_pending()
            or not session.models.llm_is_ready()
        ):
            return
        from ..memory.intents import match_memory_intent

        if match_memory_intent(text.text):
            return  # a memory command writes to the store: it waits for the end of speech
        if session.tools is not None and (
            session.models.llm.supports_tools  # type: ignore[union-attr]
            or (session.tools.router is not None and session.tools.router.route(text.text))
        ):
            return  # a tool may be called: never speculatively (it may act on the world)
        draft = Draft(text, {"reply_speculative": time.monotonic()})
        if session.speaking:
            assert session.speaker is not None
            session.speaker.begin(
                self._count + 1, session.voice, draft.marks, streaming=True, hold=True
            )
            draft.spoken = True
        session.drafts.start(draft, self._write_draft)

    async def _write_draft(self, draft: Draft) -> None:
        llm = self.session.models.llm
        speaker = self.session.speaker
        assert llm is not None
        try:
            messages = await self._messages(draft.text.text)
            async for piece in stream_async(llm, messages, draft.cancel):
                draft.marks.setdefault("first_token", time.monotonic())
                if draft.spoken and speaker is not None and speaker.speaking:
                    speaker.feed(piece)
                draft.pieces.put_nowait(piece)
            draft.marks["reply_done"] = time.monotonic()
        except PerslmVoiceError as exc:
            draft.pieces.put_nowait(exc)  # raised by the turn that takes the draft over
        finally:
            draft.pieces.put_nowait(None)

    # -- the turn --------------------------------------------------------------------------------

    async def _respond(self, text: UserText, store_user: bool) -> None:
        session = self.session
        draft = session.drafts.claim(text)
        turn = self.new_turn(text.text, text.source)
        if draft is not None:
            turn.marks = draft.marks
        if text.source is Source.VOICE:
            turn.marks["speech_end"] = text.t_speech_end or time.monotonic()
            turn.marks["transcript_ready"] = text.t_transcript or time.monotonic()
            if text.turn_end and text.t_turn_end is not None:
                # The mark's name carries the reason: turn_end_smart_turn, turn_end_silence...
                turn.marks[f"turn_end_{text.turn_end}"] = text.t_turn_end
        else:
            turn.marks["typed"] = text.t_transcript or time.monotonic()
        self.current = self.last = turn
        self._last_user_text = text.text
        session.set_state(State.THINKING)
        speaker = session.speaker if session.speaking else None
        if speaker is not None:
            if draft is not None and draft.spoken:
                speaker.release(turn.number)
            else:
                speaker.begin(
                    turn.number, session.voice, turn.marks, session.config.interaction.streaming
                )
        if session.listener is not None and speaker is not None:
            session.listener.set_strict(True)
        try:
            user_turn_id = (
                await self.save("user", text.text, text.source.value) if store_user else None
            )
            reply = (
                None if draft is not None else await self._memory_intent(text.text, user_turn_id)
            )
            session.emit(ReplyStarted(turn.number, text.text, text.source))
            if draft is not None:
                await self._take_over(turn, draft)
            elif reply is not None:
                self.add_piece(turn, reply)
            else:
                await self._generate(turn)
            turn.text_done = True
            session.emit(ReplyTextDone(turn.number))
            turn.text_out.set()
            if speaker is not None and session.speaking:
                await speaker.finish()
            self._last_failed = False
        except asyncio.CancelledError:
            turn.interrupted = True
            t_stop = time.monotonic()
            turn.heard = await speaker.interrupt() if speaker is not None else turn.reply
            turn.marks.setdefault("silenced", t_stop)  # set early by a paused check
            if not turn.text_done:
                session.emit(ReplyTextDone(turn.number, "interrupted"))
            raise
        except LLMError as exc:
            partial = exc.partial if isinstance(exc, LLMStreamBroken) else ""
            # Asking again helps after a server or a stream failed, also one cut mid-answer; not
            # after an empty reply (the embedded model gives the same again).
            self._last_failed = not isinstance(exc, LLMEmptyReply)
            if partial:
                turn.reply = partial.strip()
                turn.interrupted = True
            session.emit(ReplyTextDone(turn.number, "cut off" if partial else None))
            if speaker is not None:
                if partial:
                    speaker.feed(" I was cut off there.")
                    await speaker.finish()
                else:
                    await speaker.interrupt()
            hint = " Type /retry to ask again." if self._last_failed else ""
            message = str(exc) if str(exc).endswith(".") else f"{exc}."
            session.notify(message + hint, Level.ERROR)
        finally:
            if draft is not None and draft.task is not None:
                draft.task.cancel()  # an interrupted turn stops its draft's generation too
            self._finish(turn)

    def _finish(self, turn: TurnRecord) -> None:
        session = self.session
        if session.listener is not None:
            session.listener.set_strict(False)
        turn.reply = turn.reply.strip()
        if turn.interrupted and turn.heard is None:
            turn.heard = turn.reply
        session.history.add(
            turn.user_text, turn.reply, interrupted=turn.interrupted, heard=turn.heard
        )
        for text in turn.unasked:
            session.history.said_unasked(text)
        self.current = None
        turn.text_out.set()
        session.emit(
            ReplyDone(
                turn.number,
                turn.reply,
                interrupted=turn.interrupted,
                heard=turn.heard if turn.interrupted else None,
                text_complete=turn.text_done,
            )
        )
        session.spawn(self._keep(turn), "keep turn", keep=True)
        session.set_state(State.LISTENING)
        if session.config.interaction.show_timings and not turn.interrupted:
            session.emit(Report("this turn", rows=tuple(timing_rows(turn.marks))))
        self.prefill_next()

    async def _keep(self, turn: TurnRecord) -> None:
        """Store the reply (the user's words were stored when the turn began), then say when
        each stage happened."""
        session = self.session
        stored = None
        if turn.reply:
            stored = await self.save(
                "assistant",
                turn.reply,
                None,
                interrupted=turn.interrupted,
                heard=turn.heard if turn.interrupted else None,
            )
        session.emit(
            TurnTimings(
                turn.number,
                dict(turn.marks),
                session.backend_label,
                stored_turn=stored,
                interrupted=turn.interrupted,
            )
        )

    async def save(self, role: str, text: str, source: str | None, **fields: Any) -> int | None:
        session = self.session
        if not session.store.writable or session.incognito:
            return None

        def add(store: Any) -> int:
            return store.add_turn(  # type: ignore[no-any-return]
                session.store.session_id, session.user_id, role, text, source=source, **fields
            )

        try:
            return await session.store.run(add)
        except StoreError as exc:
            session.notify(f"Could not save this turn: {exc}")
            return None

    async def _memory_intent(self, text: str, turn_id: int | None) -> str | None:
        from ..memory.intents import handle_memory_intent, match_memory_intent

        intent = match_memory_intent(text)
        if intent is None:
            return None
        session = self.session
        try:
            reply = await session.store.run(handle_memory_intent, session.user_id, text, turn_id)
        except StoreError as exc:
            session.notify(f"Memory unavailable: {exc}")
            return None
        if reply is not None:
            session.emit(MemoryChanged(intent[0], reply))
        return reply

    def add_piece(self, turn: TurnRecord, piece: str, speak: bool = True) -> None:
        session = self.session
        turn.reply += piece
        session.emit(ReplyDelta(turn.number, piece))
        speaker = session.speaker
        if speak and speaker is not None and speaker.speaking:
            speaker.feed(piece)

    async def _take_over(self, turn: TurnRecord, draft: Draft) -> None:
        """Show (and go on with) a draft's reply; its voice is already on its way."""
        while (item := await draft.pieces.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            self.add_piece(turn, item, speak=False)  # the draft feeds the speaker itself

    async def _generate(self, turn: TurnRecord) -> None:
        session = self.session
        models = session.models
        if models.llm is None or models.llm_ready is None:
            raise LLMError("no language model is available (see the message above)")
        if models.llm_failed():
            models.load_llm_again()  # a server that was down at the start may be up now
        assert models.llm_ready is not None
        if not models.llm_ready.done():
            session.set_state(State.LOADING)
        try:
            await asyncio.shield(models.llm_ready)
        except PerslmVoiceError as exc:
            raise LLMError(str(exc)) from None
        session.set_state(State.THINKING)
        messages = await self._messages(turn.user_text)
        if session.config.interaction.streaming:
            async for piece in self._pieces(turn, messages):
                turn.marks.setdefault("first_token", time.monotonic())
                self.add_piece(turn, piece)
        else:
            # The classic design, kept for comparison (scripts/bench_latency.py): the whole reply
            # is written before any of it is shown or spoken.
            pieces = []
            async for piece in self._pieces(turn, messages):
                turn.marks.setdefault("first_token", time.monotonic())
                pieces.append(piece)
            self.add_piece(turn, "".join(pieces))
        turn.marks["reply_done"] = time.monotonic()

    async def _pieces(self, turn: TurnRecord, messages: list[Message]) -> AsyncIterator[str]:
        """The reply's text: the model's stream, or with tools, the model and the tools it (or
        the router) calls: a tool that takes a while gets a short acknowledgement first."""
        session = self.session
        assert session.models.llm is not None
        if session.tools is None:
            async for piece in stream_async(session.models.llm, messages, threading.Event()):
                yield piece
            return
        from ..tools.reply import ReplyText, ToolFinished, ToolStarted

        async for event in session.tools.reply(messages):
            if isinstance(event, ReplyText):
                yield event.text
            elif isinstance(event, ToolStarted):
                turn.marks.setdefault("tool_started", time.monotonic())
                log.info("tools: %s(%s)", event.name, event.arguments)
                if event.acknowledgement:
                    yield event.acknowledgement + " "
            elif isinstance(event, ToolFinished):
                turn.marks.setdefault("tool_done", time.monotonic())
                if not event.ok:
                    log.info("tools: %s failed: %s", event.name, event.text)

    def say(self, text: str) -> None:
        """Add ``text`` to the reply in progress (a tool's question), shown and spoken."""
        if self.current is not None:
            self.add_piece(self.current, f" {text} ")
