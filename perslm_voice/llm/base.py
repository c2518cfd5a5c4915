"""The language-model interface: load once, stream tokens for a list of messages, cancel at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..config import LLMConfig
from ..errors import LLMEmptyReply

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]
LOOP_REPEATS = 3  # the same sentences this many times in a row: the model is looping
# The longest block of sentences that counts as one repeat (A B C A B C A B C): small models
# also cycle through a few sentences, not only one; 6 back to back three times is no prose.
LOOP_BLOCK_MAX = 6
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool: ``arguments`` is the JSON text it wrote (not yet trusted)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    # An assistant message that asked for tools, and a "tool" message that answers one of them
    # (OpenAI's chat format); plain messages leave both empty.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class LLM(ABC):
    """A loaded language model; one instance serves every turn of a session."""

    name: str = "llm"
    # True when the model picks tools itself through the OpenAI ``tools`` API (stream_events).
    supports_tools: bool = False

    def __init__(self, config: LLMConfig):
        self.config = config

    def load(self) -> None:
        """Load the model (blocking, idempotent). Backends that need no loading keep this."""

    @property
    def context_window(self) -> int:
        return self.config.n_ctx

    @property
    def description(self) -> str:
        """What the user is talking to, for the banner: backend and model."""
        return self.name

    def count_tokens(self, text: str) -> int:
        """An estimate of the tokens in ``text``; backends with a tokenizer do better."""
        return max(1, len(text) // 3)

    @abstractmethod
    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        """Yield the reply's text pieces as they are generated; stop soon after ``cancel`` is set.

        Blocking: the loop runs it in a thread. Raises LLMError when the model cannot answer.
        """

    def stream_events(
        self,
        messages: list[Message],
        cancel: threading.Event,
        tools: list[dict[str, Any]] | None = None,
    ) -> Iterator[str | ToolCall]:
        """Like ``stream``, offering ``tools`` (OpenAI function specs): yields text pieces and,
        once the model has finished asking, one ToolCall per tool it wants. Backends without
        native tool calls ignore ``tools`` and only talk."""
        yield from self.stream(messages, cancel)

    def prefill(self, messages: list[Message]) -> None:
        """Read ``messages``, the start of the next prompt (all but the user's coming text), ahead
        of time, so that the reply to that text begins sooner. Blocking; backends without a prompt
        cache of their own keep this no-op."""

    def close(self) -> None:
        """Release the model."""


_DONE = object()


def is_looping(text: str) -> bool:
    """True when ``text`` ends with the same complete sentence, or the same block of up to
    ``LOOP_BLOCK_MAX`` sentences, said ``LOOP_REPEATS`` times in a row: a small model stuck
    ("I'm sorry. I'm sorry. I'm sorry. ..." up to llm.max_tokens, half a minute of voice).

    Sentences compare without case or extra spaces. A phrase that comes back now and then with
    other sentences between its returns is not a loop: only back-to-back repeats of a block are.
    """
    sentences = [" ".join(s.split()).lower() for s in _SENTENCE_END.split(text.strip())][:-1]
    for size in range(1, LOOP_BLOCK_MAX + 1):
        tail = sentences[-size * LOOP_REPEATS :]
        if len(tail) < size * LOOP_REPEATS:
            return False
        if all(sentence == tail[i % size] for i, sentence in enumerate(tail)):
            return True
    return False


async def stream_async(
    llm: LLM, messages: list[Message], cancel: threading.Event
) -> AsyncIterator[str]:
    """Run ``llm.stream`` in a thread and hand its pieces to the event loop as they come; a
    reply that loops (``is_looping``) ends where its sentence (or block of sentences) begins for
    the fourth time. A reply without a word raises LLMEmptyReply: the user gets a line to read
    rather than silence (SmolLM2 ends at once when the question is 100 KB of one word).

    Leaving the ``async for`` early (or being cancelled) sets ``cancel`` so the thread stops.
    """
    text = ""
    async with contextlib.aclosing(
        from_thread(lambda: llm.stream(messages, cancel), cancel)
    ) as items:
        async for piece in items:
            text += piece
            if is_looping(text):
                log.info("llm: the reply says the same sentence over and over; it ends here")
                return
            yield piece
    if not text.strip() and not cancel.is_set():
        raise LLMEmptyReply("the model ended its reply without a word; try saying it another way")


async def stream_events_async(
    llm: LLM,
    messages: list[Message],
    cancel: threading.Event,
    tools: list[dict[str, Any]] | None = None,
) -> AsyncIterator[str | ToolCall]:
    """``stream_async`` for ``llm.stream_events``: text pieces and ToolCalls on the event loop."""
    text = ""
    events = from_thread(lambda: llm.stream_events(messages, cancel, tools), cancel)
    async with contextlib.aclosing(events) as items:
        async for item in items:
            if isinstance(item, str):
                text += item
                if is_looping(text):
                    log.info("llm: the reply says the same sentence over and over; it ends here")
                    return
            yield item


async def from_thread(
    produce: Callable[[], Iterator[Any]], cancel: threading.Event
) -> AsyncIterator[Any]:
    """The items of a blocking iterator, made in a thread and handed over on the event loop (the
    one bridge from a model's thread to the loop). An exception in the thread is raised here;
    leaving early (or being cancelled) sets ``cancel``, which the thread sees at its next item."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def work() -> None:
        try:
            for item in produce():
                loop.call_soon_threadsafe(queue.put_nowait, item)
                if cancel.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    loop.run_in_executor(None, work)
    finished = False
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not finished:  # the consumer left early: the thread stops at its next item
            cancel.set()
