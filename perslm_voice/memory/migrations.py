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


@migration
def m002_profiles() -> str:
    # NULL in a profile column means "use the configuration's value".
    return """
        CREATE TABLE profiles (
            user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            display_name TEXT,
            address_as TEXT,
            language TEXT,
            voice_id TEXT,
            speaking_rate REAL,
            persona TEXT,
            preferences TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
    """


@migration
def m003_facts() -> str:
    return """
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            source_turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX facts_user ON facts(user_id, id);
        CREATE INDEX facts_source_turn ON facts(source_turn_id);
    """


def _fts(table: str) -> str:
    """A contentless FTS5 index over ``table``'s text, kept in step by triggers.

    Each row is indexed as ``pv_index_terms_v1(user_id, text)``: its content words, each
    prefixed with a key derived from the user id (see memory/recall.py). One user's postings
    are then separate from everyone else's, so a recall (and BM25's document frequencies)
    reads only that user's part of the index, however many users share the file. The
    function is registered by the Store on every connection; it must never change (deletes
    recompute it), a new tokenisation needs a new function name and a rebuilding migration.
    """
    terms = "pv_index_terms_v1({row}.user_id, {row}.text)"
    new, old = terms.format(row="new"), terms.format(row="old")
    return f"""
        CREATE VIRTUAL TABLE {table}_fts USING fts5(
            terms, content='', tokenize='porter unicode61 remove_diacritics 0'
        );
        CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO {table}_fts(rowid, terms) VALUES (new.id, {new});
        END;
        CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
            INSERT INTO {table}_fts({table}_fts, rowid, terms) VALUES ('delete', old.id, {old});
        END;
        CREATE TRIGGER {table}_fts_update AFTER UPDATE OF text, user_id ON {table} BEGIN
            INSERT INTO {table}_fts({table}_fts, rowid, terms) VALUES ('delete', old.id, {old});
            INSERT INTO {table}_fts(rowid, terms) VALUES (new.id, {new});
        END;
        INSERT INTO {table}_fts(rowid, terms)
            SELECT id, pv_index_terms_v1(user_id, text) FROM {table};
    """


@migration
def m004_fts() -> str:
    # The final INSERT of each index covers the turns of a store written before this migration.
    return _fts("turns") + _fts("facts")


@migration
def m005_sessions_user_index() -> str:
    return """
        CREATE INDEX sessions_user ON sessions(user_id, id);
    """


@migration
def m006_session_ids() -> str:
    # The highest session id ever given. `memory forget` deletes session rows while the session
    # may still run; it then recreates its row under the same id when its next turn is stored,
    # so no other session may have taken that id meanwhile (SQLite reuses the largest rowid).
    return """
        CREATE TABLE session_ids (last INTEGER NOT NULL);
        INSERT INTO session_ids (last) SELECT COALESCE(MAX(id), 0) FROM sessions;
    """


@migration
def m007_reminders_tool_permissions() -> str:
    # Timers and reminders live here so that a restart keeps them; fired_at stays NULL until
    # one is spoken, so one due while the assistant was not running is said at the next start.
    # tool_permissions: a profile's own allow (1) or forbid (0) of a tool, over the config.
    return """
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('timer', 'reminder')),
            text TEXT NOT NULL,
            due_at REAL NOT NULL,
            created_at REAL NOT NULL,
            fired_at REAL,
            cancelled INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX reminders_due ON reminders(user_id, fired_at, cancelled, due_at);
        CREATE TABLE tool_permissions (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            tool TEXT NOT NULL,
            allowed INTEGER NOT NULL CHECK (allowed IN (0, 1)),
            PRIMARY KEY (user_id, tool)
        );
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


def applied(db: sqlite3.Connection) -> set[int]:
    """The migration numbers recorded in ``db`` (empty for a new file); reads only.

    Raises StoreError for an SQLite file that holds other tables but is not a perslm-voice store.
    """
    from ..errors import StoreError

    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_migrations" not in tables:
        if tables:
            raise StoreError(
                "it is an SQLite database of another program, not a perslm-voice store"
            )
        return set()
    return {row[0] for row in db.execute("SELECT number FROM schema_migrations")}


def check_known(done: set[int]) -> None:
    """Refuse a schema written by a newer perslm-voice: this code could damage it."""
    from ..errors import StoreError

    known = {number for number, _, _ in MIGRATIONS}
    if done - known:
        raise StoreError(
            f"its schema version {max(done)} is newer than this perslm-voice knows"
            f" ({max(known)}): upgrade perslm-voice (pip install -U perslm-voice)"
        )


def pending(done: set[int]) -> list[int]:
    return [number for number, _, _ in MIGRATIONS if number not in done]


def apply(db: sqlite3.Connection) -> None:
    """Bring the schema up to date in one transaction; refuse a schema newer than this code knows.

    ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    done = applied(db)
    check_known(done)
    if not pending(done):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        # Read again under the write lock: another process may have migrated meanwhile.
        done = {row[0] for row in db.execute("SELECT number FROM schema_migrations")}
        check_known(done)
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
