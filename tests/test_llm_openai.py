"""The HTTP LLM backend against a real OpenAI-compatible server: llama.cpp's, on loopback,
serving the embedded SmolLM2; and the presets and --llm flag that pick a server."""

from __future__ import annotations

import threading
import time

import pytest
from servers import llama_server_fixture  # noqa: F401  (the llama_server fixture)

from perslm_voice.config import LLMConfig, load_config
from perslm_voice.errors import ConfigError
from perslm_voice.llm.base import Message
from perslm_voice.llm.fallback import build_llm
from perslm_voice.llm.openai import OpenAILLM, trim_history
from perslm_voice.llm.presets import apply_llm_flag, resolve

pytestmark = pytest.mark.slow

HELLO = [Message("system", "Answer briefly."), Message("user", "Say hello to Ana.")]
STORY = [Message("user", "Tell me a very long story about a dragon and a knight.")]


def server_llm(url: str, **settings: object) -> OpenAILLM:
    values: dict[str, object] = {"backend": "openai", "preset": "llamacpp", "base_url": url}
    values.update(settings)
    return OpenAILLM(LLMConfig(**values))


def first_token_s(llm: OpenAILLM, messages: list[Message]) -> float:
    started = time.monotonic()
    pieces = llm.stream(messages, threading.Event())
    next(pieces)
    spent = time.monotonic() - started
    pieces.close()
    return spent


def test_streams_a_reply_in_pieces(llama_server):
    llm = server_llm(llama_server.url, model="smollm2", max_tokens=32, temperature=0.0)
    pieces = list(llm.stream(HELLO, threading.Event()))
    assert len(pieces) > 3
    assert len("".join(pieces).strip()) > 5
    assert llm.description == f"smollm2 at {llama_server.url}"


def test_without_a_model_name_it_uses_the_one_the_server_serves(llama_server):
    llm = server_llm(llama_server.url, max_tokens=8)
    llm.load()
    assert llm.model is not None and llm.model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "".join(llm.stream(HELLO, threading.Event())).strip()


def test_cancel_closes_the_stream_and_the_server_stops(llama_server):
    llm = server_llm(llama_server.url, model="smollm2", max_tokens=400, temperature=0.0)
    cancel = threading.Event()
    got: list[str] = []
    for piece in llm.stream(STORY, cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
            cancelled_at = time.monotonic()
    assert len(got) == 3  # nothing after the cancel
    assert time.monotonic() - cancelled_at < 0.5
    # Had the server kept generating 400 tokens, it would still be busy: the next request
    # would wait for it. It answers promptly instead.
    assert first_token_s(server_llm(llama_server.url, model="smollm2"), HELLO) < 5.0


def test_context_too_long_is_trimmed_and_answered(llama_server):
    filler = "the quick brown fox jumps over the lazy dog " * 30  # ~300 tokens
    history = [
        Message("system", "Answer briefly."),
        Message("user", filler),
        Message("assistant", "Noted."),
        Message("user", filler),
        Message("assistant", "Noted again."),
        Message("user", "Thanks."),
        Message("assistant", "You are welcome."),
        Message("user", "Say hello."),
    ]
    llm = server_llm(llama_server.url, model="smollm2", max_tokens=8, temperature=0.0)
    # The whole history exceeds the server's 512-token window; without the old fillers it fits.
    assert "".join(llm.stream(history, threading.Event())).strip()


def test_build_llm_resolves_the_preset(llama_server):
    llm = build_llm(LLMConfig(preset="llamacpp", base_url=llama_server.url, model="smollm2"))
    assert isinstance(llm, OpenAILLM)
    assert llm.base_url == llama_server.url


# -- presets and the --llm flag (no server needed) ---------------------------------------------


def test_llm_flag_overrides():
    assert apply_llm_flag("llamacpp") == {"llm.backend": "openai", "llm.preset": "llamacpp"}
    assert apply_llm_flag("Ollama") == {"llm.backend": "openai", "llm.preset": "ollama"}
    assert apply_llm_flag("embedded") == {"llm.backend": "llama_cpp"}
    assert apply_llm_flag("llama_cpp") == {"llm.backend": "llama_cpp"}
    assert apply_llm_flag("openai") == {"llm.backend": "openai", "llm.preset": "openai"}


def test_unknown_llm_flag_lists_the_valid_names():
    with pytest.raises(ConfigError) as caught:
        apply_llm_flag("olama")
    assert str(caught.value) == (
        "--llm: unknown server or backend 'olama'; valid choices: cerebras, embedded, groq,"
        " llama_cpp, llamacpp, ollama, openai, vllm"
    )


def test_preset_fills_only_what_the_user_left_unset():
    filled = resolve(LLMConfig(backend="openai", preset="groq"))
    assert filled.base_url == "https://api.groq.com/openai/v1"
    assert filled.api_key_env == "GROQ_API_KEY"
    assert filled.model == "llama-3.1-8b-instant"
    mine = resolve(LLMConfig(preset="ollama", base_url="http://gpu-box:11434/v1", model="qwen3"))
    assert (mine.backend, mine.base_url, mine.model) == (
        "openai",
        "http://gpu-box:11434/v1",
        "qwen3",
    )
    bare = resolve(LLMConfig(backend="openai"))
    assert bare.base_url == "https://api.openai.com/v1" and bare.api_key_env == "OPENAI_API_KEY"
    assert resolve(LLMConfig()) == LLMConfig()  # the embedded default is left alone


def test_environment_url_beats_the_preset_url():
    loaded = load_config(
        overrides=apply_llm_flag("llamacpp") | {"llm.model": "smollm2"},
        environ={"PERSLM_VOICE_LLM__BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert resolve(loaded.config.llm).base_url == "http://127.0.0.1:9/v1"
    assert OpenAILLM(loaded.config.llm).base_url == "http://127.0.0.1:9/v1"


def test_trim_history_keeps_system_and_the_last_question():
    msgs = [Message("system", "s")]
    for i in range(3):
        msgs += [Message("user", f"u{i}"), Message("assistant", f"a{i}")]
    msgs.append(Message("user", "last"))
    trimmed = trim_history(msgs)
    assert trimmed is not None
    assert trimmed[0] == Message("system", "s") and trimmed[-1] == Message("user", "last")
    assert trimmed[1].role == "user" and len(trimmed) < len(msgs)
    assert trim_history([Message("system", "s"), Message("user", "only")]) is None
