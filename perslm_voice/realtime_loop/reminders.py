"""Timers and reminders, said when they are due (tools/timers.py sets them and keeps them in the
store, so that a restart keeps them).

When nothing else is said, a reminder is a turn of its own (source ``reminder``): shown, spoken,
stored, and interrupted like any reply. One that falls due while a reply is being spoken is said
inside that reply's voice, as its next sentence (a timer does not wait for a long story to end),
and shown as its own turn once the reply's text is out. A speculative reply in the making is
dropped (it would share the voice). One that fell due while no session ran is said when the next
one starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..events import ReplyDone, ReplyStarted, ReplyTextDone, Source, State

if TYPE_CHECKING:
    from ..tools.timers import Reminders
    from .session import Session
    from .turn import TurnRecord

log = logging.getLogger(__name__)


def reminders_for(session: Session) -> Reminders | None:
    """The user's reminders, when tools are on and the session can mark them said (a session
    that stores nothing, incognito or read-only, leaves them to one that does)."""
    if not session.config.tools.enabled or not session.store.writable or session.incognito:
        return None
    from ..tools.timers import Reminders

    assert session.store.store is not None
    return Reminders(session.store.store, session.user_id, run=session.store.run)


async def say_when_due(session: Session, reminders: Reminders) -> None:
    """Say each reminder when it falls due, until the session ends."""
    async for reminder in reminders.due():
        log.info("reminder due (%s): %s", reminder.kind, reminder.text)
        reply = session.turns.current
        speaker = session.speaker if session.speaking else None
        if (
            reply is not None
            and session.replying()
            and speaker is not None
            and speaker.interject(reminder.text)
        ):
            reply.unasked.append(reminder.text)  # the model sees it after that reply
            await reply.text_out.wait()
            _shown(session, session.turns.new_turn("", Source.REMINDER), reminder.text)
        else:
            await session.turns.run_alone(_say(session, reminder.text), "reminder")


async def _say(session: Session, text: str) -> None:
    turns = session.turns
    session.drafts.drop()
    turn = turns.new_turn("", Source.REMINDER)
    turn.marks["reminder_due"] = time.monotonic()
    turns.current = turn
    speaker = session.speaker if session.speaking else None
    if speaker is not None:
        speaker.begin(turn.number, session.voice, turn.marks, streaming=True)
        if session.listener is not None:
            session.listener.set_strict(True)
    try:
        session.emit(ReplyStarted(turn.number, "", Source.REMINDER))
        turns.add_piece(turn, text, speak=True)
        turn.text_done = True
        session.emit(ReplyTextDone(turn.number))
        if speaker is not None and session.speaking:
            await speaker.finish()
    except asyncio.CancelledError:
        turn.interrupted = True
        turn.heard = await speaker.interrupt() if speaker is not None else text
        raise
    finally:
        if session.listener is not None:
            session.listener.set_strict(False)
        turns.current = None
        session.history.said_unasked((turn.heard if turn.interrupted else text) or "")
        _done(session, turn, text)
        session.set_state(State.LISTENING)


def _shown(session: Session, turn: TurnRecord, text: str) -> None:
    """A reminder whose voice went inside a reply: its text, as a turn of its own."""
    session.emit(ReplyStarted(turn.number, "", Source.REMINDER))
    session.turns.add_piece(turn, text, speak=False)
    session.emit(ReplyTextDone(turn.number))
    _done(session, turn, text)


def _done(session: Session, turn: TurnRecord, text: str) -> None:
    heard = turn.heard if turn.interrupted else None
    session.emit(
        ReplyDone(turn.number, text, interrupted=turn.interrupted, heard=heard, text_complete=True)
    )
    fields = {"interrupted": True, "heard": heard} if turn.interrupted else {}
    session.spawn(
        session.turns.save("assistant", text, Source.REMINDER.value, **fields), "keep", keep=True
    )
