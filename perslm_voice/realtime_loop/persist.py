"""The session's memory store, used from one thread of its own: the event loop never waits on
SQLite, and every read and write of the session runs in the order it was asked for.

A write that fails is said once, in one line, and the conversation goes on; after ``close()``
nothing more is read or written (the next prompt's read-ahead, still running at the end of piped
input, used to warn "Cannot operate on a closed database").
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..config import Config
from ..errors import StoreError
from ..memory import Store, default_store_path

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreClosed(StoreError):
    """The session's store was closed (the session is ending): nothing more is read or written."""


class StoreWorker:
    """A session's store (or none: memory off, or it could not be opened) and its thread."""

    def __init__(self, store: Store | None, session_id: int | None):
        self.store = store
        self.session_id = session_id
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._closed = False

    @classmethod
    def open(cls, config: Config, user_id: str, incognito: bool) -> tuple[StoreWorker, str | None]:
        """The session's store and, when it cannot be had, the one line that says so."""
        if not config.memory.enabled:
            return cls(None, None), None
        path = Path(config.memory.path).expanduser() if config.memory.path else None
        try:
            store = Store(path or default_store_path(), readonly=incognito)
        except StoreError as exc:
            return cls(None, None), f"No memory this session: {exc}"
        if incognito:  # reads the profile and memory, writes nothing
            return cls(store, None), None
        try:
            return cls(store, store.start_session(user_id)), None
        except StoreError as exc:
            if store.read_only_reason:  # the user made it read-only: read it, write nothing
                return cls(store, None), f"Nothing is saved this session: {store.read_only_reason}"
            store.close()
            return cls(None, None), f"No memory this session: {exc}"

    @property
    def writable(self) -> bool:
        return self.store is not None and self.session_id is not None and not self._closed

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(store, *args, **kwargs)`` on the store's thread. StoreClosed once closed;
        ``store`` is None when there is no memory this session."""
        if self._closed:
            raise StoreClosed("the session's store is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(work, self.store, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def close(self) -> None:
        """End the stored session and close the store, after what was asked before."""
        if self._closed:
            return
        self._closed = True

        def close(store: Store | None) -> None:
            if store is None:
                return
            try:
                if self.session_id is not None:
                    store.end_session(self.session_id)
            except StoreError as exc:
                log.warning("could not end the stored session: %s", exc)
            store.close()

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, close, self.store)
        self._executor.shutdown(wait=False)
