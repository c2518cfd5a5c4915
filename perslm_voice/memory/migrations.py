"""Numbered schema migrations, recorded in the database as they are applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# A migration returns the SQL script that upgrades the schema by one step; it runs in one transaction.
Migration = Callable[[], str]
MIGRATIONS: list[tuple[int, str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register ``mNNN_name`` as migration number NNN."""
    number = int(fn.__name__[1:4])
    MIGRATIONS.append((number, fn.__name__, fn))
    MIGRATIONS.sort(key=lambda m: m[0])
    return fn


@migration
def m001_users_sessions_turns() -> str:
    return """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            started_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            text TEXT NOT NULL,
            source TEXT,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            interrupted INTEGER NOT NULL DEFAULT 0,
            heard TEXT,
            backend TEXT,
            timings TEXT
        );
        CREATE INDEX turns_user ON turns(user_id, id);
        CREATE INDEX turns_session ON turns(session_id, id);
    """


def _statements(script: str) -> list[str]:
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def apply(db: sqlite3.Connection) -> None:
    """Bring the schema up to date in one transaction; refuse a schema newer than this code knows.

    ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    from ..errors import StoreError

    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    known = {number for number, _, _ in MIGRATIONS}
    done = {row[0] for row in db.execute("SELECT number FROM schema_migrations")}
    if known <= done and not done - known:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        done = {row[0] for row in db.execute("SELECT number FROM schema_migrations")}
        if done - known:
            raise StoreError(
                f"schema version {max(done)} is newer than this perslm-voice knows"
                f" ({max(known)}): upgrade perslm-voice"
            )
        for number, name, fn in MIGRATIONS:
            if number in done:
                continue
            for statement in _statements(fn()):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (number, name, applied_at)"
                " VALUES (?, ?, strftime('%s','now'))",
                (number, name),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
