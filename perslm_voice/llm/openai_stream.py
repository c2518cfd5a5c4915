"""The OpenAI-compatible backend's pieces that are not the request itself: the stream as pieces
with its budget (``max_tokens``, or characters where the server does not count), what an error
says, and history trimming for a prompt that is too long."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .base import Message

MAX_CHARS_PER_TOKEN = 8  # a server that sends many tokens per chunk: a bound on characters too
SNIPPET_CHARS = 120  # of a body that is not what it should be, shown to the user


class _ContextTooLong(Exception):
    """The server said (or, when ``silent``, likely meant) the prompt exceeds the context."""

    def __init__(self, silent: bool = False):
        super().__init__("context too long")
        self.silent = silent


class _NotJSON(Exception):
    """A 200 answer whose body (``snippet``) is not the JSON it should be."""

    def __init__(self, snippet: str):
        super().__init__(snippet)
        self.snippet = snippet


class ReplyBudget:
    """Counts a streamed reply against llm.max_tokens: chunks as tokens, and characters for a
    server that sends many tokens per chunk (or ignores max_tokens and never stops)."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self.max_chars = max_tokens * MAX_CHARS_PER_TOKEN
        self.pieces = 0
        self.chars = 0

    @property
    def spent(self) -> bool:
        return self.pieces >= self.max_tokens or self.chars >= self.max_chars

    def take(self, piece: str) -> str:
        """The part of ``piece`` within the budget ("" once it is spent), counted."""
        if self.spent:
            return ""
        kept = piece[: self.max_chars - self.chars]
        self.pieces += 1
        self.chars += len(kept)
        return kept


class _Handle:
    """One open completion stream: its text pieces and how it ended."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.finish_reason: str | None = None
        self.events = 0  # server-sent events read, chunks or not

    def pieces(self) -> Iterator[str]:
        try:
            for chunk in self.stream:
                self.events += 1
                choices = getattr(chunk, "choices", None)
                if not isinstance(choices, list) or not choices:
                    continue
                choice = choices[0]
                if getattr(choice, "finish_reason", None):
                    self.finish_reason = choice.finish_reason
                delta = getattr(choice, "delta", None)
                text = getattr(delta, "content", None) if delta is not None else None
                if isinstance(text, str) and text:
                    yield text
        except json.JSONDecodeError as exc:  # an event whose data is not JSON
            raise _NotJSON(_snippet(exc.doc)) from None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def trim_history(messages: list[Message]) -> list[Message] | None:
    """Drop the older half of the non-system messages, keeping the last; None if nothing to drop."""
    others = [i for i, m in enumerate(messages) if m.role != "system"]
    if len(others) <= 1:
        return None
    rest = others[len(others) // 2 :]
    # A chat must not resume with the assistant's words once the user's question was dropped.
    while len(rest) > 1 and messages[rest[0]].role == "assistant":
        rest.pop(0)
    keep = set(rest)
    return [m for i, m in enumerate(messages) if m.role == "system" or i in keep]


def _detail(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return str(getattr(error, "message", error))


def _retry_after_s(error: Any) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare for APIs; fall back to our own backoff
        return None


def _snippet(text: str) -> str:
    """The start of a body, on one line, for an error message."""
    line = " ".join(text.split())
    return line if len(line) <= SNIPPET_CHARS else line[:SNIPPET_CHARS] + "…"


def _head(response: Any, limit: int = 4 * SNIPPET_CHARS, snippet: bool = True) -> str:
    """The start of a streamed response's body, ``limit`` bytes at most (it may be endless)."""
    data = b""
    for block in response.iter_bytes():
        data += block
        if len(data) >= limit:
            break
    text = data[:limit].decode("utf-8", "replace")
    return _snippet(text) if snippet else text
