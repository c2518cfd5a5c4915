"""Timers and reminders, kept in the store so that a restart keeps them, and ``Reminders.due``:
what the conversation engine awaits to say each one when it is due, even mid-reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from ..errors import ToolArgumentsError, ToolError
from ..memory import Store
from ..memory.reminders import Reminder
from .base import Tool, ToolContext, ToolResult
from .clock import now, spoken_time

RECHECK_S = 30.0  # the longest wait before the store is read again
MAX_DELAY_S = 366 * 24 * 3600  # a reminder more than a year ahead is a misheard number


def _store(context: ToolContext) -> Store:
    if context.store is None:
        raise ToolError("timers need the memory store, which is off (memory.enabled: false)")
    return context.store


def _changed(context: ToolContext) -> None:
    if context.on_reminders_changed is not None:
        context.on_reminders_changed()


def _what(text: str) -> str:
    """ "Your tea timer is done." -> "tea timer"; "Reminder: call Ann." -> "call Ann"."""
    if text.startswith("Reminder: "):
        return text.removeprefix("Reminder: ").rstrip(".")
    return text.removeprefix("Your ").removesuffix(" is done.")


def spoken_duration(seconds: float) -> str:
    seconds = round(seconds)
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " and ".join(parts) or "0 seconds"


class SetTimerTool(Tool):
    name = "set_timer"
    description = "Start a countdown timer that speaks up when it ends."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "description": "how long, in seconds"},
            "label": {"type": "string", "description": "what it is for, e.g. 'pasta'"},
        },
        "required": ["seconds"],
    }

    def __init__(self, context: ToolContext):
        self.context = context

    async def run(self, args: dict[str, Any]) -> ToolResult:
        seconds = float(args["seconds"])
        if not 0 < seconds <= MAX_DELAY_S:
            raise ToolArgumentsError("set_timer: seconds must be between 1 and a year")
        label = (args.get("label") or "").strip()
        text = f"Your {label} timer is done." if label else "Your timer is done."
        due = self.context.clock() + seconds
        rid = _store(self.context).add_reminder(self.context.user_id, "timer", text, due)
        _changed(self.context)
        what = f"{label} timer" if label else "timer"
        return ToolResult(
            f"A {spoken_duration(seconds)} {what} is set.", {"id": rid, "due_at": due}
        )


class SetReminderTool(Tool):
    name = "set_reminder"
    description = (
        "Remind the user of something later: in some minutes, or at a time of day (HH:MM, 24 h)."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "what to remind them of"},
            "in_minutes": {"type": "number", "description": "minutes from now"},
            "at": {
                "type": "string",
                "description": "a time of day, HH:MM in 24 h, today or tomorrow",
            },
        },
        "required": ["text"],
    }

    def __init__(self, context: ToolContext):
        self.context = context

    def _due(self, args: dict[str, Any]) -> float:
        if args.get("in_minutes") is not None:
            seconds = float(args["in_minutes"]) * 60
            if not 0 < seconds <= MAX_DELAY_S:
                raise ToolArgumentsError("set_reminder: in_minutes must be between 0 and a year")
            return self.context.clock() + seconds
        if args.get("at"):
            try:
                hour, minute = (int(p) for p in str(args["at"]).split(":"))
                current = now(self.context)
                moment = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
            except ValueError:
                raise ToolArgumentsError(
                    "set_reminder: at must be a time of day as HH:MM"
                ) from None
            if moment <= current:
                moment += timedelta(days=1)
            return moment.timestamp()
        raise ToolArgumentsError("set_reminder: say when: in_minutes or at")

    async def run(self, args: dict[str, Any]) -> ToolResult:
        text = args["text"].strip().rstrip(".")
        if not text:
            raise ToolArgumentsError("set_reminder: text is empty")
        due = self._due(args)
        rid = _store(self.context).add_reminder(
            self.context.user_id, "reminder", f"Reminder: {text}.", due
        )
        _changed(self.context)
        when = spoken_time(datetime.fromtimestamp(due, self.context.timezone()))
        return ToolResult(f"I'll remind you to {text} at {when}.", {"id": rid, "due_at": due})


class ListTimersTool(Tool):
    name = "list_timers"
    description = "The user's timers and reminders still to come."

    def __init__(self, context: ToolContext):
        self.context = context

    async def run(self, args: dict[str, Any]) -> ToolResult:
        pending = _store(self.context).pending_reminders(self.context.user_id)
        if not pending:
            return ToolResult("You have no timers or reminders.", [])
        clock = self.context.clock()
        lines = [f"{_what(r.text)} in {spoken_duration(max(0, r.due_at - clock))}" for r in pending]
        data = [{"id": r.id, "kind": r.kind, "text": r.text, "due_at": r.due_at} for r in pending]
        return ToolResult("; ".join(lines), data)


class CancelTimerTool(Tool):
    name = "cancel_timer"
    description = "Cancel a timer or reminder by its id, or the soonest one when no id is given."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"id": {"type": "integer", "description": "from list_timers"}},
    }

    def __init__(self, context: ToolContext):
        self.context = context

    async def run(self, args: dict[str, Any]) -> ToolResult:
        store = _store(self.context)
        pending = store.pending_reminders(self.context.user_id)
        rid = args.get("id") if args.get("id") is not None else (pending[0].id if pending else None)
        if rid is None or not store.cancel_reminder(self.context.user_id, int(rid)):
            return ToolResult("There was no such timer to cancel.", {"cancelled": False})
        _changed(self.context)
        return ToolResult("Cancelled.", {"cancelled": True, "id": rid})


class Reminders:
    """The due timers and reminders of one user, in time order, across restarts.

    ``async for reminder in Reminders(store, user).due(): speak(reminder.text)``: a reminder
    that fell due while nothing was running comes at once; ``wake()`` (called by the timer tools
    through ``notify``) makes a newly set one count without polling. ``run(work, *args)`` runs
    ``work(store, *args)`` off the event loop: the session passes its store thread's
    (``StoreWorker.run``), so that its reads and writes keep their order; by default a thread.
    """

    def __init__(
        self,
        store: Store,
        user_id: str,
        clock: Any = time.time,
        run: Callable[..., Awaitable[Any]] | None = None,
    ):
        self.store = store
        self.user_id = user_id
        self.clock = clock
        self._run = run or (lambda work, *args: asyncio.to_thread(work, store, *args))
        self._changed = asyncio.Event()

    def wake(self) -> None:
        """A timer was added or cancelled: look again (on the event loop)."""
        self._changed.set()

    async def due(self) -> AsyncIterator[Reminder]:
        """Yield each reminder when it falls due (marked said in the store as it is yielded)."""
        while True:
            self._changed.clear()
            # The event loop never waits on SQLite.
            pending = await self._run(Store.pending_reminders, self.user_id)
            if pending and pending[0].due_at <= self.clock():
                first = pending[0]
                if await self._run(Store.mark_reminder_fired, self.user_id, first.id):
                    yield first
                continue
            # Capped: a timer set by another process (`tools call set_timer`) has no wake().
            wait_s = min(RECHECK_S, pending[0].due_at - self.clock()) if pending else RECHECK_S
            try:
                await asyncio.wait_for(self._changed.wait(), wait_s)
            except asyncio.TimeoutError:
                pass


def tools(context: ToolContext) -> list[Tool]:
    return [
        SetTimerTool(context),
        SetReminderTool(context),
        ListTimersTool(context),
        CancelTimerTool(context),
    ]
