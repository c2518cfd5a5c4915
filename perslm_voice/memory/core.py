"""The store's connection: opening safely, short transactions, read-only mode, reclaiming space."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from .. import paths
from ..errors import StoreError
from . import migrations
from .terms import index_terms_v1

STORE_FILE = "perslm-voice.db"
BUSY_TIMEOUT_MS = 10000
SQLITE_HEADER = b"SQLite format 3\x00"


def default_store_path() -> Path:
    """<user data dir>/perslm-voice.db ($PERSLM_VOICE_HOME/data when set)."""
    return paths.data_dir() / STORE_FILE


def store_path(path_setting: str | None) -> Path:
    """The store file for ``memory.path`` (None: the default under the data dir)."""
    return Path(path_setting).expanduser() if path_setting else default_store_path()


_S = TypeVar("_S", bound="StoreCore")


def _prepare(db: sqlite3.Connection) -> None:
    """What every connection needs before it touches the schema."""
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # The FTS triggers call it (see migrations._fts); deterministic lets SQLite trust it.
    db.create_function("pv_index_terms_v1", 2, index_terms_v1, deterministic=True)


class StoreCore:
    """One SQLite connection shared by the threads of one process, behind a lock.

    ``readonly=True`` (incognito sessions) never writes the file: a missing store reads as
    empty, an old schema is upgraded in a private in-memory copy, and every write method
    raises StoreError. A store file the user made read-only (no owner write bit) is opened
    that way too, whatever was asked: ``read_only_reason`` says why, for the session to show.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        readonly: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ):
        self.path = Path(path) if path else default_store_path()
        self.read_only_reason: str | None = "incognito" if readonly else None
        if not readonly and self._made_read_only():
            # The owner took the write bit away on purpose: respect it, never chmod it back
            # (root could write it anyway, so the bit is read, not os.access).
            mode = stat.S_IMODE(self.path.stat().st_mode)
            readonly = True
            self.read_only_reason = (
                f"the store {self.path} is read-only (mode {mode:o}): memory is read, nothing"
                f" is written; chmod u+w {self.path} to let perslm-voice write it"
            )
        self.readonly = readonly
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._db = self._open_readonly() if readonly else self._open()

    def _made_read_only(self) -> bool:
        try:
            st = self.path.stat()
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IWUSR

    # opening

    def _check_header(self) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(f"the store {path} is a directory, not a file; left as is")
        if path.exists() and path.stat().st_size > 0:
            try:
                with open(path, "rb") as fh:
                    header = fh.read(16)
            except OSError as exc:
                raise StoreError(f"cannot read the store {path}: {exc.strerror}") from None
            if header != SQLITE_HEADER:
                raise StoreError(
                    f"{path} is not a perslm-voice store (not an SQLite file); left as is:"
                    " move it away or set memory.path"
                )

    def _damaged(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the store {self.path} is damaged or unreadable ({exc}); left as is:"
            " move it away or set memory.path"
        )

    def _open(self) -> sqlite3.Connection:
        path = self.path
        self._check_header()
        try:
            paths.make_private_dir(path.parent)
            if not path.exists():
                # Create the file 0600 before SQLite opens it: memories are private.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        try:
            _prepare(db)
            if db.execute("PRAGMA page_count").fetchone()[0] == 0:
                # Only settable before the first table: lets `forget` free pages cheaply.
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a power cut may lose the last commits, never corrupt the file;
            # a killed process loses nothing that was committed. FULL also survives power cuts.
            db.execute(f"PRAGMA synchronous = {'FULL' if self.synchronous == 'FULL' else 'NORMAL'}")
            db.execute("PRAGMA foreign_keys = ON")
            # Deleted memories are overwritten with zeros, not left in free pages.
            db.execute("PRAGMA secure_delete = ON")
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self._damaged(exc) from None
        except StoreError as exc:
            db.close()
            raise StoreError(f"cannot use the store {path}: {exc}") from None
        for suffix in ("", "-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            try:
                # Readable by its owner only; a permission is taken away, never added.
                mode = stat.S_IMODE(side.stat().st_mode)
                if mode & 0o077:
                    side.chmod(mode & 0o700)
            except OSError:
                pass
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        path = self.path
        self._check_header()
        try:
            if not path.exists() or path.stat().st_size == 0:
                # Nothing stored yet: an empty in-memory store reads the same and writes nothing.
                db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                _prepare(db)
                migrations.apply(db)
            else:
                uri = f"file:{quote(str(path.resolve()))}?mode=ro"
                db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10
                )
                _prepare(db)
                done = migrations.applied(db)
                migrations.check_known(done)
                if migrations.pending(done):
                    # An older schema: upgrade a private copy rather than the user's file.
                    copy = sqlite3.connect(
                        ":memory:", isolation_level=None, check_same_thread=False
                    )
                    db.backup(copy)
                    db.close()
                    db = copy
                    _prepare(db)
                    migrations.apply(db)
            db.execute("PRAGMA query_only = ON")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        except StoreError as exc:
            raise StoreError(f"cannot use the store {path}: {exc}") from None
        return db

    # access

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; committed on success, rolled back on error."""
        if self.readonly:
            if self.read_only_reason and self.read_only_reason != "incognito":
                raise StoreError(self.read_only_reason)
            raise StoreError(
                f"the store {self.path} is open read-only (incognito): nothing is written"
            )
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

    def query(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Run one read and return all its rows."""
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reclaim_space(self, *tables: str) -> None:
        """After a deletion: purge deleted rows from the FTS indexes and free the pages.

        'optimize' merges the FTS segments so deleted terms are gone from the index itself;
        secure_delete zeroes the freed pages; the checkpoint empties the WAL of old copies.
        """
        if self.readonly:
            return
        with self._lock:
            try:
                for table in tables:
                    self._db.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('optimize')")
                if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                    # executescript steps it to the end; execute() frees one page only.
                    self._db.executescript("PRAGMA incremental_vacuum;")
                else:  # a store created before auto_vacuum was set
                    self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot compact the store {self.path}: {exc}") from None
