"""``llm.fallback: embedded``: answer with the embedded model while the server is down, and say so.

The default (``none``) is no wrapper at all: the server's error reaches the user as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..config import LLMConfig
from ..errors import LLMTimeout, LLMUnreachable
from .base import LLM, Message, ToolCall

log = logging.getLogger(__name__)

RECHECK_S = 60.0  # while down, the server is tried again at most this often


class FallbackLLM(LLM):
    """The configured server, replaced by a local model for the turns where it does not answer.

    Only failures before the first token switch over (the server unreachable, or silent past
    llm.timeout), so no reply is ever half one model and half the other. ``notify`` receives one
    line when the switch happens and one when the server is back.
    """

    name = "fallback"

    def __init__(
        self,
        primary: LLM,
        fallback_factory: Callable[[], LLM],
        notify: Callable[[str], None] | None = None,
        recheck_s: float = RECHECK_S,
    ):
        super().__init__(primary.config)
        self.primary = primary
        self._factory = fallback_factory
        self._fallback: LLM | None = None
        self._notify = notify or (lambda line: None)
        self.recheck_s = recheck_s
        self._down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def using_fallback(self) -> bool:
        """Whether the last turn was answered by the fallback model."""
        return self._down_since is not None

    @property
    def description(self) -> str:
        return f"{self.primary.description} (fallback: embedded model)"

    @property
    def context_window(self) -> int:
        return self.primary.context_window

    def count_tokens(self, text: str) -> int:
        return self.primary.count_tokens(text)

    def _where(self) -> str:
        return getattr(self.primary, "base_url", self.primary.description)

    def fallback(self) -> LLM:
        """The fallback model, created and loaded the first time it is needed."""
        with self._lock:
            if self._fallback is None:
                self._fallback = self._factory()
            model = self._fallback
        model.load()
        return model

    def load(self) -> None:
        try:
            self.primary.load()
        except (LLMUnreachable, LLMTimeout) as exc:
            self._went_down(exc)

    def _went_down(self, exc: Exception) -> None:
        log.info("llm: primary failed (%s); using the fallback", exc)
        if self._down_since is None:
            self._notify(
                f"the server at {self._where()} is down; answering with the embedded model"
            )
        self._down_since = time.monotonic()

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        down = self._down_since is not None
        if not down or time.monotonic() - (self._down_since or 0.0) >= self.recheck_s:
            try:
                pieces = self.primary.stream(messages, cancel)
                first = next(pieces, None)
            except (LLMUnreachable, LLMTimeout) as exc:
                self._went_down(exc)
            else:
                if down:
                    self._down_since = None
                    self._notify(f"the server at {self._where()} is back")
                if first is not None:
                    yield first
                    yield from pieces
                return
        if not cancel.is_set():
            yield from self.fallback().stream(messages, cancel)

    @property  # type: ignore[override]
    def supports_tools(self) -> bool:
        """The server's tool calls while it is up; none while the embedded model answers."""
        return self.primary.supports_tools and not self.using_fallback

    def stream_events(
        self,
        messages: list[Message],
        cancel: threading.Event,
        tools: list[dict[str, Any]] | None = None,
    ) -> Iterator[str | ToolCall]:
        if tools and self.supports_tools:
            try:
                yield from self.primary.stream_events(messages, cancel, tools)
                return
            except (LLMUnreachable, LLMTimeout) as exc:
                self._went_down(exc)  # this reply, then the next ones, come from the embedded model
        yield from self.stream(messages, cancel)

    def prefill(self, messages: list[Message]) -> None:
        # The embedded model answers while the server is down: its prompt is the one worth reading.
        (self.fallback() if self.using_fallback else self.primary).prefill(messages)

    def close(self) -> None:
        self.primary.close()
        if self._fallback is not None:
            self._fallback.close()


def build_llm(config: LLMConfig, notify: Callable[[str], None] | None = None) -> LLM:
    """The LLM the configuration asks for: presets resolved, wrapped when a fallback is chosen.

    ``notify`` gets the one-line notices of FallbackLLM (print them, speak them).
    """
    from . import presets
    from .registry import create_llm

    config = presets.resolve(config)
    llm = create_llm(config)
    if config.fallback != "embedded" or config.backend == "llama_cpp":
        return llm

    def embedded() -> LLM:
        return create_llm(config.model_copy(update={"backend": "llama_cpp"}))

    return FallbackLLM(llm, embedded, notify)
