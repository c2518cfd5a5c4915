"""The session's events, for whoever wants them: the front-end, observers, plugins.

An observer is any callable that takes one event. It runs on the session's event loop, in the order
things happened, so it must return quickly (hand slow work to a thread, as the recorder and the
timings do); one that raises is logged and the session goes on. Subscribe in Python::

    from perslm_voice.events import ReplyDone

    def on_reply(event: ReplyDone) -> None:
        print(f"turn {event.turn}: {event.text!r}")

    session.subscribe(on_reply, ReplyDone)       # no types: every event

or ship a plugin: an entry point in the group ``perslm_voice.observers`` that names a function
``attach(session)``, which subscribes what it needs (and may ``session.on_close(...)``). The two
observers that ship, the timings that ``stats`` reads and ``--record``, are attached the same way.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "perslm_voice.observers"
# Built-in observers, attached as a plugin would be ("module:function").
BUILTIN = ("perslm_voice.realtime_loop.timings:attach",)

Observer = Callable[[Any], None]


class EventBus:
    """Delivers each event to the observers subscribed to its type."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[type, ...], Observer]] = []

    def subscribe(self, observer: Observer, *types: type) -> Callable[[], None]:
        """Call ``observer(event)`` for each event of ``types`` (all events when none are given);
        returns a function that unsubscribes it."""
        entry = (types, observer)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, event: Any) -> None:
        for types, observer in list(self._subscribers):
            if types and not isinstance(event, types):
                continue
            try:
                observer(event)
            except Exception:  # one broken observer must not break the conversation
                log.exception("observer %r failed on %s", observer, type(event).__name__)


def _load(spec: str) -> Callable[[Any], Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def attach_observers(session: Any) -> list[str]:
    """Attach the built-in observers and every installed plugin to ``session``; return one line
    per plugin that failed (the session goes on without it)."""
    problems = []
    for spec in BUILTIN:
        _load(spec)(session)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()(session)
            log.info("observer plugin %s attached", entry_point.name)
        except Exception as exc:
            log.debug("observer plugin %s failed", entry_point.name, exc_info=True)
            problems.append(
                f"The observer plugin {entry_point.name!r} ({entry_point.value}) failed to "
                f"start: {type(exc).__name__}: {exc}; the session goes on without it"
            )
    return problems
