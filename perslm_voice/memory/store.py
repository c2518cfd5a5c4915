"""The SQLite store: users, sessions and turns here; profiles, facts and recall in their mixins.

One file per installation, WAL mode, mode 0600, short transactions: a turn is committed when it
ends, so a killed process loses at most the turn in flight, and two sessions of one user can
write at once (the busy timeout makes the second wait its turn instead of failing).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from ..errors import StoreError
from .core import BUSY_TIMEOUT_MS, STORE_FILE, StoreCore, default_store_path
from .facts import FactsMixin
from .profiles import ProfilesMixin
from .recall import RecallMixin
from .records import TURN_COLUMNS, Fact, Profile, Recalled, Turn, turn_from_row
from .reminders import Reminder, RemindersMixin

__all__ = [
    "BUSY_TIMEOUT_MS",
    "STORE_FILE",
    "TURN_COLUMNS",
    "Fact",
    "Profile",
    "Recalled",
    "Reminder",
    "Store",
    "Turn",
    "default_store_path",
]

_turn = turn_from_row  # the name older callers import


class Store(ProfilesMixin, FactsMixin, RecallMixin, RemindersMixin, StoreCore):
    """The per-installation SQLite store; safe to share between threads of one process.

    ``Store(path)`` opens (creating, migrating) the file; ``Store(path, readonly=True)`` reads
    it without ever writing (incognito). StoreError when the file is not a usable store.
    """

    # users and sessions

    def ensure_user(self, user_id: str) -> bool:
        """Create the user if new; return True when it was created."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time())
            )
            return cur.rowcount == 1

    def users(self) -> list[str]:
        return [row[0] for row in self.query("SELECT id FROM users ORDER BY id")]

    def start_session(self, user_id: str) -> int:
        """Open a session for the user (creating user and profile if new); return its id."""
        self.get_profile(user_id)
        with self.transaction() as db:
            db.execute(
                "UPDATE session_ids SET last = max(last, (SELECT COALESCE(MAX(id), 0) FROM sessions)) + 1"
            )
            session_id = int(db.execute("SELECT last FROM session_ids").fetchone()[0])
            db.execute(
                "INSERT INTO sessions (id, user_id, started_at) VALUES (?, ?, ?)",
                (session_id, user_id, time.time()),
            )
            return session_id

    def end_session(self, session_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), session_id))

    def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """The user's sessions, oldest first, with their number of turns."""
        rows = self.query(
            "SELECT s.id, s.started_at, s.ended_at,"
            " (SELECT count(*) FROM turns t WHERE t.session_id = s.id)"
            " FROM sessions s WHERE s.user_id = ? ORDER BY s.id",
            (user_id,),
        )
        return [
            dict(zip(("id", "started_at", "ended_at", "turns"), row, strict=True)) for row in rows
        ]

    # turns

    def add_turn(
        self,
        session_id: int,
        user_id: str,
        role: str,
        text: str,
        *,
        source: str | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        interrupted: bool = False,
        heard: str | None = None,
        backend: str | None = None,
        timings: dict[str, Any] | None = None,
    ) -> int:
        """Store one finished turn (committed at once) and return its id.

        A session forgotten while it runs (`memory forget --all` from another terminal) gets its
        row back under the same id, so its later turns are kept; StoreError if that id is
        another user's.
        """
        now = time.time()
        with self.transaction() as db:
            owner = db.execute(
                "SELECT user_id FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if owner is None:
                db.execute(
                    "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, now)
                )
                db.execute(
                    "INSERT INTO sessions (id, user_id, started_at) VALUES (?, ?, ?)",
                    (session_id, user_id, started_at or now),
                )
            elif owner[0] != user_id:
                raise StoreError(f"session {session_id} is not {user_id}'s; the turn is not stored")
            cur = db.execute(
                "INSERT INTO turns (session_id, user_id, role, text, source, started_at, ended_at,"
                " interrupted, heard, backend, timings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    user_id,
                    role,
                    text,
                    source,
                    started_at or now,
                    ended_at or now,
                    int(interrupted),
                    heard,
                    backend,
                    json.dumps(timings) if timings else None,
                ),
            )
            return int(cur.lastrowid or 0)

    def set_turn_timings(self, turn_id: int, timings: dict[str, Any], backend: str | None) -> None:
        """Record a stored turn's monotonic stage marks and the backends that served it (what
        ``stats`` reads)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE turns SET timings = ?, backend = ? WHERE id = ?",
                (json.dumps(timings) if timings else None, backend, turn_id),
            )

    def add_turns_bulk(self, rows: list[tuple[int, str, str, str, float]]) -> None:
        """Insert many finished turns (session_id, user_id, role, text, time) in one transaction.

        For imports and the benchmark; a live session commits each turn with add_turn.
        """
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO turns (session_id, user_id, role, text, started_at, ended_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(s, u, r, t, at, at) for s, u, r, t, at in rows],
            )

    def turns(
        self, user_id: str, *, session_id: int | None = None, limit: int | None = None
    ) -> list[Turn]:
        """The user's turns, oldest first (the newest ``limit`` when given)."""
        sql = f"SELECT {TURN_COLUMNS} FROM turns WHERE user_id = ?"
        params: list[Any] = [user_id]
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [turn_from_row(r) for r in reversed(self.query(sql, tuple(params)))]

    # forgetting

    def forget_session(self, user_id: str, session_id: int) -> dict[str, int]:
        """Remove one of the user's sessions: its turns and the facts said in it.

        Returns how many turns and facts went. Another user's session id removes nothing.
        """
        with self.transaction() as db:
            facts = db.execute(
                "DELETE FROM facts WHERE user_id = ? AND source_turn_id IN"
                " (SELECT id FROM turns WHERE session_id = ? AND user_id = ?)",
                (user_id, session_id, user_id),
            ).rowcount
            turns = db.execute(
                "DELETE FROM turns WHERE user_id = ? AND session_id = ?", (user_id, session_id)
            ).rowcount
            sessions = db.execute(
                "DELETE FROM sessions WHERE user_id = ? AND id = ?", (user_id, session_id)
            ).rowcount
        if sessions or turns or facts:
            self.reclaim_space("turns", "facts")
        return {"sessions": sessions, "turns": turns, "facts": facts}

    def forget_all(self, user_id: str) -> dict[str, int]:
        """Remove every turn, session and fact of the user; the profile stays."""
        with self.transaction() as db:
            facts = db.execute("DELETE FROM facts WHERE user_id = ?", (user_id,)).rowcount
            turns = db.execute("DELETE FROM turns WHERE user_id = ?", (user_id,)).rowcount
            sessions = db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
        self.reclaim_space("turns", "facts")
        return {"sessions": sessions, "turns": turns, "facts": facts}

    def delete_user(self, user_id: str) -> bool:
        """Remove the user and all their data (profile, sessions, turns, facts); True if known."""
        with self.transaction() as db:
            removed = 0
            for sql in (
                "DELETE FROM facts WHERE user_id = ?",
                "DELETE FROM reminders WHERE user_id = ?",
                "DELETE FROM tool_permissions WHERE user_id = ?",
                "DELETE FROM turns WHERE user_id = ?",
                "DELETE FROM sessions WHERE user_id = ?",
                "DELETE FROM profiles WHERE user_id = ?",
                "DELETE FROM users WHERE id = ?",
            ):
                removed += db.execute(sql, (user_id,)).rowcount
        if removed:
            self.reclaim_space("turns", "facts")
        return bool(removed)

    # export

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored about the user, as plain data (JSON-ready)."""
        profile = self._read_profile(user_id) or Profile(user_id)
        return {
            "user": user_id,
            "exported_at": time.time(),
            "profile": profile.as_dict(),
            "facts": [f.as_dict() for f in self.facts(user_id)],
            "reminders": [asdict(r) for r in self.pending_reminders(user_id)],
            "tool_permissions": self.tool_permissions(user_id),
            "sessions": [
                {**s, "turns": [t.as_dict() for t in self.turns(user_id, session_id=s["id"])]}
                for s in self.sessions(user_id)
            ],
        }
