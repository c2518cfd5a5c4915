"""Any OpenAI-compatible chat server (Ollama, llama.cpp server, vLLM, OpenAI, Groq, Cerebras).

Built on the official ``openai`` client with its own retries off: retrying is ours, because it
is only safe before the first token (after that, a retry would speak the same words twice).
Every failure becomes one typed error whose message is the line the user reads.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception

from ..config import LLMConfig
from ..errors import (
    BackendUnavailable,
    LLMAuthError,
    LLMBadResponse,
    LLMError,
    LLMModelNotFound,
    LLMStreamBroken,
    LLMTimeout,
    LLMUnreachable,
)
from . import presets
from .base import LLM, Message, ToolCall
from .openai_stream import (
    MAX_CHARS_PER_TOKEN,
    ReplyBudget,
    _ContextTooLong,
    _detail,
    _Handle,
    _head,
    _NotJSON,
    _retry_after_s,
    _snippet,
    trim_history,
)
from .watch import StreamWatch

log = logging.getLogger(__name__)

PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client insists on one
MAX_ATTEMPTS = 5  # per request, before the first token, for 5xx and 429
MAX_CONNECT_ATTEMPTS = 3  # a refused connection rarely heals within a second: say so soon
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0
CONTEXT_ERROR = re.compile(r"context.?length|context window|too long|maximum context", re.I)
MAX_UNSTREAMED_BYTES = 1_000_000  # a whole reply sent as JSON by a server that does not stream


class _Retry(Exception):
    """A failure before the first token that another attempt may cure."""

    def __init__(self, error: Exception, wait_s: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.wait_s = wait_s  # what the server asked for (Retry-After), if anything


class OpenAILLM(LLM):
    """A chat model behind an OpenAI-compatible HTTP endpoint, streamed token by token."""

    name = "openai"
    supports_tools = True

    def __init__(self, config: LLMConfig):
        super().__init__(presets.resolve(config))
        self.base_url = (self.config.base_url or "").rstrip("/")
        self.model: str | None = self.config.model
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"{self.model or '(server default)'} at {self.base_url}"

    # -- set-up -------------------------------------------------------------------------------

    def api_key(self) -> str:
        """The key from the variable named by llm.api_key_env; local servers need none."""
        env = self.config.api_key_env
        key = os.environ.get(env, "").strip() if env else ""
        if key:
            return key
        if env and not presets.is_local(self.base_url):
            raise BackendUnavailable(
                f"the LLM server at {self.base_url} needs an API key: export {env}=..."
            )
        return PLACEHOLDER_KEY

    def _ensure_client(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self.base_url:
                    raise BackendUnavailable("llm.base_url is not set: set it, or use a preset")
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key(),
                    timeout=self.config.timeout,
                    max_retries=0,
                )
            return self._client

    def load(self) -> None:
        """Create the HTTP client; ask the server for its model only when none is configured."""
        self._ensure_client()
        if self.model is None:
            served = self.list_models()
            if not served:
                raise LLMModelNotFound(
                    f"the LLM server at {self.base_url} serves no model; set llm.model"
                )
            self.model = served[0]
            log.info("llm: using %s, the model %s serves", self.model, self.base_url)

    def list_models(self) -> list[str]:
        """The models the server offers (GET /models); typed errors when it cannot say."""
        import openai

        client = self._ensure_client()
        try:
            return sorted(m.id for m in client.models.list())
        except openai.APIConnectionError:
            raise LLMUnreachable(self._unreachable_message()) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise LLMAuthError(self._auth_message()) from None
        except openai.APIStatusError as exc:
            raise LLMError(
                f"the LLM server at {self.base_url} cannot list its models"
                f" ({exc.status_code}); is the URL right? it usually ends in /v1"
            ) from None
        except (json.JSONDecodeError, openai.APIResponseValidationError, AttributeError) as exc:
            # A 200 whose body is not the model list: a web page, a proxy's login form.
            raise self._not_json(_snippet(getattr(exc, "doc", "") or str(exc))) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- messages for the user -----------------------------------------------------------------

    def _unreachable_message(self) -> str:
        hint = presets.start_hint(self.config)
        start = f" (start it with: {hint})" if hint else ""
        return f"cannot reach the LLM server at {self.base_url}: is it running?{start}"

    def _auth_message(self) -> str:
        env = self.config.api_key_env
        if env and os.environ.get(env, "").strip():
            return f"the key in ${env} was refused by {self.base_url}"
        return (
            f"the LLM server at {self.base_url} wants an API key:"
            " set llm.api_key_env to the name of the variable that holds it"
        )

    def _not_json(self, snippet: str, what: str = "answered with something that") -> LLMBadResponse:
        return LLMBadResponse(
            f"the LLM server at {self.base_url} {what} is not JSON: {snippet!r};"
            " is llm.base_url an OpenAI-compatible API? it usually ends in /v1"
        )

    def _unstreamed(self, response: Any) -> str:
        """The text of a chat completion sent whole, as JSON, instead of as a stream."""
        data = _head(response, MAX_UNSTREAMED_BYTES, snippet=False)
        try:
            body = json.loads(data)
        except json.JSONDecodeError:
            raise _NotJSON(_snippet(data)) from None
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                raise LLMError(
                    f"the LLM server at {self.base_url} failed: {_snippet(error['message'])}"
                ) from None
            raise LLMBadResponse(
                f"the LLM server at {self.base_url} answered with JSON that is not a chat"
                f" completion: {_snippet(data)!r}"
            ) from None
        return text[: self.config.max_tokens * MAX_CHARS_PER_TOKEN] if isinstance(text, str) else ""

    def _model_message(self) -> str:
        try:
            served = self.list_models()
        except LLMError:
            served = []
        have = f"; it has: {', '.join(served)}" if served else ""
        return f"the LLM server at {self.base_url} has no model {self.model!r}{have}"

    # -- streaming -----------------------------------------------------------------------------

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        self.load()
        deadline = time.monotonic() + self.config.timeout
        watch = StreamWatch(cancel, deadline, idle_s=self.config.timeout)
        handle: Any = None
        received: list[str] = []
        try:
            handle, pieces, first = self._first_piece(messages, cancel, watch)
            if first is None:
                return
            watch.first_token = True
            budget = ReplyBudget(self.config.max_tokens)
            for piece in itertools.chain([first], pieces):
                if cancel.is_set():
                    return
                kept = budget.take(piece)
                if kept:
                    received.append(kept)
                    yield kept
                if budget.spent:
                    log.info(
                        "llm: the reply from %s reached llm.max_tokens (%d); it ends here",
                        self.base_url,
                        self.config.max_tokens,
                    )
                    return
            if handle.finish_reason is None and not cancel.is_set():
                raise self._broken(received, "the stream ended early")
        except _NotJSON as exc:
            raise self._not_json(exc.snippet, "sent a stream that") from None
        except LLMError:
            raise
        except Exception as exc:  # a read failing mid-answer: keep what came
            if cancel.is_set():
                return
            raise self._broken(received, type(exc).__name__) from None
        finally:
            watch.finished = True
            if handle is not None:
                handle.close()

    def stream_events(
        self,
        messages: list[Message],
        cancel: threading.Event,
        tools: list[dict[str, Any]] | None = None,
    ) -> Iterator[str | ToolCall]:
        """With ``tools``: native streamed tool calls (openai_tools.py); without: ``stream``."""
        if not tools:
            yield from self.stream(messages, cancel)
            return
        from .openai_tools import stream_with_tools

        yield from stream_with_tools(self, messages, cancel, tools)

    def _broken(self, received: list[str], why: str) -> LLMStreamBroken:
        log.info("llm: stream from %s broke mid-answer (%s)", self.base_url, why)
        return LLMStreamBroken(
            f"the LLM server at {self.base_url} stopped mid-answer", partial="".join(received)
        )

    def _first_piece(
        self, messages: list[Message], cancel: threading.Event, watch: StreamWatch
    ) -> tuple[Any, Iterator[str], str | None]:
        """Open the stream and read up to the first text, retrying what may be retried."""
        trimmed = False
        while True:
            try:
                return self._retrying(messages, cancel, watch)
            except _ContextTooLong as exc:
                shorter = trim_history(messages)
                if trimmed or shorter is None:
                    if exc.silent:
                        raise LLMError(
                            f"the LLM server at {self.base_url} ended the reply without a word"
                            " (is the prompt longer than its context window?)"
                        ) from None
                    raise LLMError(
                        f"the conversation is too long for the model at {self.base_url},"
                        " even with older turns left out"
                    ) from None
                log.info(
                    "llm: context too long; retrying without %d old messages",
                    len(messages) - len(shorter),
                )
                messages, trimmed = shorter, True

    def _retrying(
        self, messages: list[Message], cancel: threading.Event, watch: StreamWatch
    ) -> tuple[Any, Iterator[str], str | None]:
        def stop(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            cause = error.error if isinstance(error, _Retry) else error
            import openai

            limit = (
                MAX_CONNECT_ATTEMPTS
                if isinstance(cause, openai.APIConnectionError)
                else MAX_ATTEMPTS
            )
            upcoming = state.upcoming_sleep or 0.0
            late = time.monotonic() + upcoming >= watch.deadline
            return cancel.is_set() or state.attempt_number >= limit or late

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Retry) and error.wait_s is not None:
                return error.wait_s
            return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (state.attempt_number - 1))

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retry)),
            stop=stop,
            wait=wait,
            sleep=lambda s: cancel.wait(s) and None,  # a barge-in ends the wait at once
            reraise=True,
        )
        try:
            return retrying(self._attempt, messages, cancel, watch)
        except _Retry as exc:
            raise self._final_error(exc.error) from None

    def _final_error(self, error: Exception) -> LLMError:
        import openai

        if isinstance(error, openai.APIConnectionError):
            return LLMUnreachable(self._unreachable_message())
        if isinstance(error, openai.RateLimitError):
            return LLMError(
                f"the LLM server at {self.base_url} is rate-limiting requests (429);"
                f" nothing within {self.config.timeout:g} s"
            )
        status = getattr(error, "status_code", "?")
        return LLMError(f"the LLM server at {self.base_url} failed ({status}): {_detail(error)}")

    def _attempt(
        self, messages: list[Message], cancel: threading.Event, watch: StreamWatch
    ) -> tuple[Any, Iterator[str], str | None]:
        import openai

        if cancel.is_set():
            return _Handle(None), iter(()), None
        handle = _Handle(None)
        try:
            stream = self._client.chat.completions.create(
                model=self.model,
                messages=[m.as_dict() for m in messages],
                stream=True,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
            )
            handle = _Handle(stream)
            watch.attach(stream.response)
            kind = stream.response.headers.get("content-type", "")
            if "json" in kind:  # a server that ignored stream=true: its whole answer at once
                handle.finish_reason = "stop"
                return handle, iter(()), self._unstreamed(stream.response) or None
            if kind and "event-stream" not in kind:
                # Not a stream at all (a web page, a proxy's error page): read what it says.
                raise _NotJSON(_head(stream.response))
            pieces = handle.pieces()
            for piece in pieces:
                return handle, pieces, piece
            if handle.finish_reason is None and not cancel.is_set() and handle.events == 0:
                # An empty stream with no finish_reason: llama.cpp's server answers a prompt
                # beyond its context window this way (200, then nothing), so treat it as one.
                raise _ContextTooLong(silent=True)
            if handle.finish_reason is None and not cancel.is_set():
                raise LLMBadResponse(
                    f"the LLM server at {self.base_url} sent a stream without a chat completion"
                    " chunk; is llm.base_url an OpenAI-compatible API? it usually ends in /v1"
                )
            return handle, pieces, None
        except _NotJSON as exc:
            handle.close()
            raise self._not_json(exc.snippet) from None
        except Exception as exc:
            handle.close()
            if cancel.is_set():
                return _Handle(None), iter(()), None
            if watch.timed_out:
                raise LLMTimeout(
                    f"the LLM server at {self.base_url} sent nothing for {self.config.timeout:g} s"
                ) from None
            if isinstance(exc, openai.RateLimitError):
                raise _Retry(exc, _retry_after_s(exc)) from None
            if isinstance(exc, (openai.APIConnectionError, openai.InternalServerError)):
                raise _Retry(exc) from None
            if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
                raise LLMAuthError(self._auth_message()) from None
            if isinstance(exc, openai.NotFoundError):
                raise LLMModelNotFound(self._model_message()) from None
            if isinstance(exc, openai.BadRequestError) and CONTEXT_ERROR.search(_detail(exc)):
                raise _ContextTooLong() from None
            if isinstance(exc, openai.APIStatusError):
                raise LLMError(
                    f"the LLM server at {self.base_url} refused the request"
                    f" ({exc.status_code}): {_detail(exc)}"
                ) from None
            if isinstance(exc, openai.APIError):  # e.g. an error event inside the stream
                raise _Retry(exc) from None
            raise
