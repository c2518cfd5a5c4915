"""The embedded llama.cpp model: reading the next prompt ahead (prefill) with the real SmolLM2."""

from __future__ import annotations

import threading

import pytest

from perslm_voice.llm.base import Message

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm(load_embedded_llm):
    llm = load_embedded_llm(n_ctx=1024, max_tokens=24, temperature=0.0)
    yield llm
    llm.close()


def conversation(note: str = "") -> list[Message]:
    system = "You are a friendly voice assistant. Answer in one short sentence." + note
    return [
        Message("system", system),
        Message("user", "What is the capital of France?"),
        Message("assistant", "The capital of France is Paris —"),
        Message("user", "And of Italy?"),
        Message("assistant", "Rome is the capital of Italy."),
    ]


def reply(llm, messages: list[Message]) -> str:
    return "".join(llm.stream(messages, threading.Event()))


def cached_tokens(llm) -> list[int]:
    model = llm._model
    return list(model._input_ids[: model.n_tokens])


def test_prefill_caches_everything_before_the_users_words(smollm):
    known = conversation(" An answer that ends with a dash was interrupted there.")
    question = Message("user", "How do I boil an egg?")
    reply(smollm, [Message("system", "Something else entirely."), question])  # a cold cache
    smollm.prefill(known)
    cached = cached_tokens(smollm)
    full = smollm._prompt_tokens([m.as_dict() for m in [*known, question]])
    assert full[: len(cached)] == cached  # a prefix of the real prompt ...
    text = smollm._model.detokenize(cached, special=True).decode()
    assert "Rome is the capital of Italy." in text  # ... holding all that was known
    assert (
        len(full) - len(cached) <= len(smollm._model.tokenize(b"How do I boil an egg?")) + 8
    )  # and the template


def test_prefill_does_not_change_the_reply(smollm):
    question = Message("user", "Name a colour.")
    smollm.prefill([Message("system", "Unrelated words to fill the cache with.")])
    cold = reply(smollm, [*conversation(), question])
    reply(smollm, [Message("system", "Unrelated again."), question])
    smollm.prefill(conversation())
    assert reply(smollm, [*conversation(), question]) == cold
    assert cold.strip()


def test_prefill_of_what_is_already_cached_reads_almost_nothing(smollm):
    smollm.prefill(conversation())
    before = cached_tokens(smollm)
    smollm.prefill(conversation())
    assert cached_tokens(smollm) == before
