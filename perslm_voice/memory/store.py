"""The SQLite store. One file per installation, WAL mode, mode 0600, short transactions."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import StoreError
from . import migrations

STORE_FILE = "perslm-voice.db"
BUSY_TIMEOUT_MS = 10000


def default_store_path() -> Path:
    return paths.data_dir() / STORE_FILE


@dataclass(frozen=True)
class Turn:
    """One stored turn."""

    id: int
    session_id: int
    user_id: str
    role: str
    text: str
    source: str | None
    started_at: float
    ended_at: float
    interrupted: bool
    heard: str | None
    backend: str | None
    timings: dict[str, Any]


TURN_COLUMNS = (
    "id, session_id, user_id, role, text, source, started_at, ended_at, interrupted, heard,"
    " backend, timings"
)


def _turn(row: tuple[Any, ...]) -> Turn:
    values = list(row)
    values[8] = bool(values[8])
    values[11] = json.loads(values[11]) if values[11] else {}
    return Turn(*values)


class Store:
    """The per-installation SQLite store; safe to share between threads of one process."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_store_path()
        self._lock = threading.RLock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if path.exists() and path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise StoreError(f"{path} is not a perslm-voice store (not SQLite); left as is")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create the file 0600 before SQLite opens it: memories are private.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(f"the store {path} is damaged or unreadable ({exc}); left as is") from None
        except StoreError:
            db.close()
            raise
        for suffix in ("", "-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                try:
                    side.chmod(0o600)
                except OSError:
                    pass
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; committed on success, rolled back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # users and sessions

    def ensure_user(self, user_id: str) -> bool:
        """Create the user if new; return True when it was created."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time())
            )
            return cur.rowcount == 1

    def start_session(self, user_id: str) -> int:
        self.ensure_user(user_id)
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO sessions (user_id, started_at) VALUES (?, ?)", (user_id, time.time())
            )
            return int(cur.lastrowid or 0)

    def end_session(self, session_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), session_id))

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
        """Store one finished turn (committed at once) and return its id."""
        now = time.time()
        with self.transaction() as db:
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
        return [_turn(r) for r in reversed(self.query(sql, tuple(params)))]
