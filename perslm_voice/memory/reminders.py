"""Timers, reminders and each profile's tool permissions: what the tools keep across restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from .core import StoreCore

Kind = Literal["timer", "reminder"]
_COLUMNS = "id, user_id, kind, text, due_at, created_at, fired_at, cancelled"


@dataclass(frozen=True)
class Reminder:
    """A timer or reminder: ``due_at`` is wall-clock time (time.time()), so it survives a restart."""

    id: int
    user_id: str
    kind: Kind
    text: str
    due_at: float
    created_at: float
    fired_at: float | None
    cancelled: bool


def _reminder(row: tuple) -> Reminder:
    values = list(row)
    values[7] = bool(values[7])
    return Reminder(*values)


class RemindersMixin(StoreCore):
    """Store methods for timers, reminders and tool permissions."""

    def add_reminder(self, user_id: str, kind: Kind, text: str, due_at: float) -> int:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time())
            )
            cur = db.execute(
                "INSERT INTO reminders (user_id, kind, text, due_at, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, kind, text, due_at, time.time()),
            )
            return int(cur.lastrowid or 0)

    def pending_reminders(self, user_id: str) -> list[Reminder]:
        """The user's timers and reminders not yet said nor cancelled, soonest first."""
        rows = self.query(
            f"SELECT {_COLUMNS} FROM reminders WHERE user_id = ? AND fired_at IS NULL"
            " AND cancelled = 0 ORDER BY due_at, id",
            (user_id,),
        )
        return [_reminder(r) for r in rows]

    def mark_reminder_fired(self, user_id: str, reminder_id: int) -> bool:
        """Record that a reminder was said; False if it was already said or cancelled."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE reminders SET fired_at = ? WHERE user_id = ? AND id = ?"
                " AND fired_at IS NULL AND cancelled = 0",
                (time.time(), user_id, reminder_id),
            )
            return cur.rowcount == 1

    def cancel_reminder(self, user_id: str, reminder_id: int) -> bool:
        """Cancel one of the user's pending reminders (another user's id does nothing)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE reminders SET cancelled = 1 WHERE user_id = ? AND id = ?"
                " AND fired_at IS NULL AND cancelled = 0",
                (user_id, reminder_id),
            )
            return cur.rowcount == 1

    def set_tool_permission(self, user_id: str, tool: str, allowed: bool | None) -> None:
        """Allow or forbid a tool for this user; None returns it to the configuration's choice."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time())
            )
            if allowed is None:
                db.execute(
                    "DELETE FROM tool_permissions WHERE user_id = ? AND tool = ?", (user_id, tool)
                )
            else:
                db.execute(
                    "INSERT INTO tool_permissions (user_id, tool, allowed) VALUES (?, ?, ?)"
                    " ON CONFLICT (user_id, tool) DO UPDATE SET allowed = excluded.allowed",
                    (user_id, tool, int(allowed)),
                )

    def tool_permissions(self, user_id: str) -> dict[str, bool]:
        rows = self.query(
            "SELECT tool, allowed FROM tool_permissions WHERE user_id = ?", (user_id,)
        )
        return {tool: bool(allowed) for tool, allowed in rows}
