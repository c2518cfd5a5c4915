"""Every failure path of the HTTP LLM backend, driven through the real openai client against a
scripted OpenAI-compatible server on loopback; each asserts the line the user reads."""

from __future__ import annotations

import threading
import time

import pytest
from fault_server import MODEL, REPLY, closed_port_url
from servers import fault_server_fixture  # noqa: F401  (the fault_server fixture)

from perslm_voice.config import LLMConfig
from perslm_voice.errors import (
    BackendUnavailable,
    LLMAuthError,
    LLMError,
    LLMModelNotFound,
    LLMStreamBroken,
    LLMTimeout,
    LLMUnreachable,
)
from perslm_voice.llm.base import LLM, Message
from perslm_voice.llm.fallback import FallbackLLM, build_llm
from perslm_voice.llm.openai import OpenAILLM

QUESTION = [Message("system", "Be brief."), Message("user", "Say hello.")]


def make(url: str, **settings: object) -> OpenAILLM:
    values: dict[str, object] = {"backend": "openai", "base_url": url, "model": MODEL}
    values.update(settings)
    return OpenAILLM(LLMConfig(**values))


def ask(llm: LLM, messages: list[Message] = QUESTION) -> str:
    return "".join(llm.stream(messages, threading.Event()))


def test_refused_names_the_url_and_how_to_start_the_server():
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(LLMUnreachable) as caught:
        ask(make(url, preset="ollama"))
    assert str(caught.value) == (
        f"cannot reach the LLM server at {url}: is it running? (start it with: ollama serve)"
    )
    assert time.monotonic() - started < 5  # a few quick retries, not the whole timeout


@pytest.mark.parametrize(
    ("preset", "hint"),
    [
        ("llamacpp", "python -m llama_cpp.server --model FILE.gguf --port 8080"),
        ("vllm", "vllm serve MODEL"),
    ],
)
def test_refused_hint_per_preset(preset, hint):
    url = closed_port_url()
    with pytest.raises(LLMUnreachable, match="start it with: ") as caught:
        ask(make(url, preset=preset))
    assert str(caught.value).endswith(f"(start it with: {hint})")
    assert url in str(caught.value)


def test_500_then_success_is_retried_without_duplicated_text(fault_server):
    fault_server.enqueue("500", "500")
    assert ask(make(fault_server.url)) == REPLY
    assert len(fault_server.requests) == 3


def test_persistent_500_gives_up_with_the_status(fault_server):
    fault_server.enqueue(*["500"] * 10)
    with pytest.raises(LLMError) as caught:
        ask(make(fault_server.url))
    assert str(caught.value) == (
        f"the LLM server at {fault_server.url} failed (500): internal failure"
    )


def test_401_names_the_variable_never_the_key(fault_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    fault_server.enqueue("401")
    with pytest.raises(LLMAuthError) as caught:
        ask(make(fault_server.url, api_key_env="OPENAI_API_KEY"))
    assert str(caught.value) == f"the key in $OPENAI_API_KEY was refused by {fault_server.url}"
    assert "sk-secret" not in str(caught.value)
    assert len(fault_server.requests) == 1  # a refused key is not retried
    assert fault_server.headers[0]["authorization"] == "Bearer sk-secret-value-123"


def test_403_is_an_auth_error_too(fault_server, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-1")
    fault_server.enqueue("403")
    with pytest.raises(LLMAuthError, match=r"the key in \$GROQ_API_KEY was refused by"):
        ask(make(fault_server.url, api_key_env="GROQ_API_KEY"))


def test_404_model_lists_the_models_the_server_has(fault_server):
    fault_server.models = ["llama3.2", "qwen2.5:0.5b"]
    with pytest.raises(LLMModelNotFound) as caught:
        ask(make(fault_server.url, model="llama3"))
    assert str(caught.value) == (
        f"the LLM server at {fault_server.url} has no model 'llama3'; it has: llama3.2, qwen2.5:0.5b"
    )


def test_429_waits_as_told_then_answers(fault_server):
    fault_server.enqueue("429")
    started = time.monotonic()
    assert ask(make(fault_server.url)) == REPLY
    assert time.monotonic() - started >= 0.9  # Retry-After: 1
    assert len(fault_server.requests) == 2


def test_429_beyond_the_timeout_gives_up(fault_server):
    fault_server.enqueue(*["429"] * 10)
    with pytest.raises(LLMError) as caught:
        ask(make(fault_server.url, timeout=1.5))
    assert str(caught.value) == (
        f"the LLM server at {fault_server.url} is rate-limiting requests (429);"
        " nothing within 1.5 s"
    )


def test_stall_before_first_token_times_out(fault_server):
    fault_server.enqueue("stall")
    started = time.monotonic()
    with pytest.raises(LLMTimeout) as caught:
        ask(make(fault_server.url, timeout=1.0))
    assert str(caught.value) == f"the LLM server at {fault_server.url} sent nothing for 1 s"
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("mode", ["die", "cut"])
def test_stream_dying_mid_answer_keeps_the_partial_text(fault_server, mode):
    fault_server.enqueue(mode)
    got: list[str] = []
    with pytest.raises(LLMStreamBroken) as caught:
        for piece in make(fault_server.url).stream(QUESTION, threading.Event()):
            got.append(piece)
    assert str(caught.value) == f"the LLM server at {fault_server.url} stopped mid-answer"
    assert caught.value.partial == "Hello there" == "".join(got)
    assert len(fault_server.requests) == 1  # never retried after a token: nothing said twice


def test_context_too_long_trims_older_history_and_retries_once(fault_server):
    history = [Message("system", "Be brief.")]
    for i in range(4):
        history += [Message("user", f"question {i}"), Message("assistant", f"answer {i}")]
    history.append(Message("user", "last question"))
    fault_server.enqueue("context")
    assert ask(make(fault_server.url), history) == REPLY
    first, second = fault_server.requests
    assert len(first["messages"]) == 10
    sent = second["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["role"] == "user" and sent[-1]["content"] == "last question"
    assert len(sent) < len(first["messages"])


def test_context_too_long_twice_is_an_error(fault_server):
    history = [Message("user", "a"), Message("assistant", "b"), Message("user", "c")]
    fault_server.enqueue("context", "context")
    with pytest.raises(LLMError, match="too long for the model at .*even with older turns left"):
        ask(make(fault_server.url), history)


def test_cancel_hangs_up_so_the_server_stops(fault_server):
    fault_server.enqueue("slow")
    cancel = threading.Event()
    got = []
    for piece in make(fault_server.url).stream(QUESTION, cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
    assert got == [" word0", " word1", " word2"]
    assert fault_server.client_gone.wait(2.0)  # the server's next write found the socket closed


def test_cancel_while_waiting_for_the_first_token_returns_at_once(fault_server):
    fault_server.enqueue("stall")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    assert list(make(fault_server.url).stream(QUESTION, cancel)) == []
    assert time.monotonic() - started < 1.5  # the stall lasts 3 s


TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


def test_with_tools_a_stall_times_out_and_a_cancel_returns_at_once(fault_server):
    """The tool stream (every reply, when tools are on with a server) hangs up like the plain
    one: on a barge-in while the server says nothing, and at llm.timeout."""
    fault_server.enqueue("stall")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    assert list(make(fault_server.url).stream_events(QUESTION, cancel, TOOLS)) == []
    assert time.monotonic() - started < 1.5  # the stall lasts 3 s
    fault_server.enqueue("stall")
    started = time.monotonic()
    with pytest.raises(LLMTimeout) as caught:
        list(make(fault_server.url, timeout=1.0).stream_events(QUESTION, threading.Event(), TOOLS))
    assert str(caught.value) == f"the LLM server at {fault_server.url} sent nothing for 1 s"
    assert time.monotonic() - started < 2.5


def test_local_server_needs_no_key(fault_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert ask(make(fault_server.url, preset="openai")) == REPLY
    assert fault_server.headers[0]["authorization"] == "Bearer not-needed"


def test_cloud_preset_without_key_says_what_to_export(monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    llm = OpenAILLM(LLMConfig(backend="openai", preset="groq"))
    with pytest.raises(BackendUnavailable) as caught:
        llm.load()
    assert str(caught.value) == (
        "the LLM server at https://api.groq.com/openai/v1 needs an API key: export GROQ_API_KEY=..."
    )


def test_fallback_answers_with_the_embedded_model_and_says_so_once():
    down = closed_port_url()
    notices: list[str] = []
    config = LLMConfig(
        backend="openai", base_url=down, model=MODEL, fallback="embedded", max_tokens=8
    )
    llm = build_llm(config, notices.append)
    assert isinstance(llm, FallbackLLM)
    try:
        assert ask(llm).strip()  # the real embedded SmolLM2 answered
        assert ask(llm).strip()
    finally:
        llm.close()
    assert notices == [f"the server at {down} is down; answering with the embedded model"]
    assert llm.using_fallback


def test_fallback_not_used_when_the_server_answers(fault_server):
    notices: list[str] = []
    config = LLMConfig(
        backend="openai", base_url=fault_server.url, model=MODEL, fallback="embedded"
    )
    llm = build_llm(config, notices.append)
    assert ask(llm) == REPLY
    assert notices == [] and not llm.using_fallback


def test_no_fallback_by_default():
    llm = build_llm(LLMConfig(backend="openai", base_url=closed_port_url(), model=MODEL))
    assert isinstance(llm, OpenAILLM)
    with pytest.raises(LLMUnreachable):
        ask(llm)
