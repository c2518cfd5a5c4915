"""Speculative replies: a reply drafted on the early transcript, inside the end-of-speech window."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..events import UserText

log = logging.getLogger(__name__)


@dataclass
class Draft:
    """A reply started on the early transcript, while the end-of-speech window is still open.

    Its tokens and its synthesized voice are kept, unseen and unheard, until the window closes on
    the same utterance (the user is done): then the turn takes them over, and its first audio
    plays at once. If the user goes on talking, or types, the draft is dropped without a trace.
    """

    text: UserText
    marks: dict[str, float]
    pieces: asyncio.Queue[str | BaseException | None] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None
    spoken: bool = False  # the speaker is holding this draft's voice

    def matches(self, text: UserText) -> bool:
        return (text.t_speech_end, text.text) == (self.text.t_speech_end, self.text.text)


class Drafts:
    """At most one draft at a time: started, then claimed by its turn or dropped."""

    def __init__(self, on_drop: Callable[[Draft], None]):
        self._draft: Draft | None = None
        self._on_drop = on_drop  # silence a dropped draft's held voice

    @property
    def pending(self) -> bool:
        return self._draft is not None

    def start(self, draft: Draft, write: Callable[[Draft], Awaitable[None]]) -> None:
        draft.task = asyncio.create_task(write(draft), name="draft")
        self._draft = draft
        log.debug("reply: started speculatively on %r", draft.text.text)

    def drop(self) -> None:
        """The user went on (or typed): the speculative reply is not wanted."""
        draft, self._draft = self._draft, None
        if draft is None:
            return
        draft.cancel.set()
        if draft.task is not None:
            draft.task.cancel()
        self._on_drop(draft)
        log.debug("reply: the speculative reply to %r is dropped", draft.text.text)

    def claim(self, text: UserText) -> Draft | None:
        """The draft made for ``text``, now wanted; any other draft is dropped."""
        draft = self._draft
        if draft is not None and draft.matches(text):
            self._draft = None
            log.debug("reply: the speculative reply stands")
            return draft
        self.drop()
        return None
