"""Native tool calls over the OpenAI ``tools`` API, streamed: text pieces as they come, and the
tool calls assembled from their deltas (a call's name and JSON arguments arrive in pieces,
keyed by ``index``) once the model has finished asking.

Kept beside openai.py rather than in it: the plain text stream there has its own retry and
fault handling; a tool request is only retried by the caller (the orchestrator), since a
half-run tool round must not be replayed behind the user's back.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import (
    LLMAuthError,
    LLMError,
    LLMModelNotFound,
    LLMStreamBroken,
    LLMTimeout,
    LLMUnreachable,
)
from .base import Message, ToolCall
from .openai_stream import ReplyBudget
from .watch import StreamWatch

if TYPE_CHECKING:
    from .openai import OpenAILLM

log = logging.getLogger(__name__)


class _Pending:
    """One tool call being assembled from its deltas."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: Any) -> None:
        if getattr(delta, "id", None):
            self.id = delta.id
        function = getattr(delta, "function", None)
        if function is not None:
            if getattr(function, "name", None):
                self.name += function.name
            if getattr(function, "arguments", None):
                self.arguments.append(function.arguments)

    def done(self) -> ToolCall:
        return ToolCall(
            id=self.id or f"call_{uuid.uuid4().hex[:12]}",
            name=self.name,
            arguments="".join(self.arguments) or "{}",
        )


def stream_with_tools(
    llm: OpenAILLM,
    messages: list[Message],
    cancel: threading.Event,
    tools: list[dict[str, Any]],
) -> Iterator[str | ToolCall]:
    """Yield text pieces, then the ToolCalls the model asked for; typed LLMErrors on failure."""
    import openai

    llm.load()
    client = llm._ensure_client()
    # A barge-in hangs up a read that is waiting on the server, as in the plain stream.
    watch = StreamWatch(cancel, time.monotonic() + llm.config.timeout, idle_s=llm.config.timeout)
    stream: Any = None
    text: list[str] = []
    calls: dict[int, _Pending] = {}
    finish: str | None = None
    try:
        try:
            stream = client.chat.completions.create(
                model=llm.model,
                messages=[m.as_dict() for m in messages],
                tools=tools,
                stream=True,
                temperature=llm.config.temperature,
                max_tokens=llm.config.max_tokens,
            )
        except openai.APIConnectionError:
            raise LLMUnreachable(llm._unreachable_message()) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise LLMAuthError(llm._auth_message()) from None
        except openai.NotFoundError:
            raise LLMModelNotFound(llm._model_message()) from None
        except openai.APIStatusError as exc:
            raise LLMError(
                f"the LLM server at {llm.base_url} refused a request with tools"
                f" ({exc.status_code}); does it support tool calls? (llama.cpp's server needs"
                " --jinja; Ollama a model with tool support)"
            ) from None
        watch.attach(stream.response)
        budget = ReplyBudget(llm.config.max_tokens)  # a runaway server ends at max_tokens too
        for chunk in stream:
            watch.first_token = True
            if cancel.is_set():
                return
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    kept = budget.take(delta.content)
                    if kept:
                        text.append(kept)
                        yield kept
                    if budget.spent:
                        log.info("llm: the reply reached llm.max_tokens; it ends here")
                        return
                for call in delta.tool_calls or []:
                    calls.setdefault(call.index or 0, _Pending()).add(call)
            if choice.finish_reason:
                finish = choice.finish_reason
    except LLMError:
        raise
    except Exception as exc:  # a read failing mid-answer
        if cancel.is_set():
            return
        if watch.timed_out:
            raise LLMTimeout(
                f"the LLM server at {llm.base_url} sent nothing for {llm.config.timeout:g} s"
            ) from None
        log.info("llm: tool stream from %s broke (%s)", llm.base_url, type(exc).__name__)
        if text or calls:
            raise LLMStreamBroken(
                f"the LLM server at {llm.base_url} stopped mid-answer", partial="".join(text)
            ) from None
        unusable = True  # nothing came that could be read: the plain request says why
    else:
        unusable = False
    finally:
        watch.finished = True
        if stream is not None:
            stream.close()
    if cancel.is_set():
        return
    if unusable:
        yield from llm.stream(messages, cancel)
        return
    if finish is None and not calls and not text:
        # Nothing usable came (a web page, garbage, an empty stream): ask again without tools,
        # where every failure is read and named (not JSON, the context, a dead server).
        log.info("llm: the tool stream from %s gave nothing; asking without tools", llm.base_url)
        yield from llm.stream(messages, cancel)
        return
    if finish is None and not calls:
        raise LLMStreamBroken(
            f"the LLM server at {llm.base_url} stopped mid-answer", partial="".join(text)
        )
    for index in sorted(calls):
        call = calls[index].done()
        if call.name:
            yield call
