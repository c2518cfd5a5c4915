"""The prompt builder: profile, facts, recalled past turns and this session, within the budget."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from perslm_voice.config import Config
from perslm_voice.llm.base import LLM, Message
from perslm_voice.memory import Store
from perslm_voice.persona import INTERRUPTED_MARK, build_messages


class WordCountLLM(LLM):
    """A model that is only a tokenizer: one token per word (the prompt is all we test)."""

    name = "word-count"

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        yield "ok"


def config(**memory: int) -> Config:
    cfg = Config()
    for key, value in memory.items():
        setattr(cfg.memory, key, value)
    return cfg


def prompt_tokens(llm: LLM, messages: list[Message]) -> int:
    return sum(llm.count_tokens(m.content) for m in messages)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.db") as s:
        yield s


def test_prompt_holds_profile_facts_recall_and_this_session(store):
    cfg = Config()
    llm = WordCountLLM(cfg.llm)
    store.set_profile("alice", display_name="Alice", address_as="Ali", language="fr",
                      persona="Be cheerful.", preferences={"units": "metric"})  # fmt: skip
    store.add_fact("alice", "My favourite colour is teal.")
    past = store.start_session("alice")
    store.add_turn(past, "alice", "user", "I am planning a kayak trip to Norway")
    bob = store.start_session("bob")
    store.add_turn(bob, "bob", "user", "My kayak trip goes to Sweden, the colour is red")
    now = store.start_session("alice")
    store.add_turn(now, "alice", "user", "Hello there")
    store.add_turn(now, "alice", "assistant", "Hi Ali!")
    text = "What colour should my kayak be?"
    store.add_turn(now, "alice", "user", text)  # the loop may store the turn first

    messages = build_messages(store=store, user_id="alice", session_id=now, user_text=text,
                              config=cfg, llm=llm)  # fmt: skip
    system = messages[0].content
    assert messages[0].role == "system"
    assert system.startswith(cfg.llm.system_prompt)
    for expected in ("Alice", "Address them as Ali", "French", "Be cheerful.", "units: metric",
                     "My favourite colour is teal."):  # fmt: skip
        assert expected in system
    assert "Sweden" not in system and "Hello there" not in system
    assert [(m.role, m.content) for m in messages[1:-1]] == [
        ("user", "Hello there"),
        ("assistant", "Hi Ali!"),
    ]
    # What was recalled for the question comes with it, the question last.
    question = messages[-1]
    assert question.role == "user" and question.content.endswith(f"\n\n{text}")
    assert "Ali said: I am planning a kayak trip to Norway" in question.content
    assert "kayak" not in system and "Sweden" not in question.content


def test_the_prompt_starts_the_same_whatever_the_question(store):
    """Recall and the relevance of facts change with the question; the system message and the
    history do not, so the model's cache of what it has read holds for the next question."""
    cfg = Config()
    llm = WordCountLLM(cfg.llm)
    store.add_fact("alice", "My favourite colour is teal.")
    store.add_fact("alice", "My dog is called Rex.")
    past = store.start_session("alice")
    store.add_turn(past, "alice", "user", "I am planning a kayak trip to Norway")
    store.add_turn(past, "alice", "user", "Rex loves long walks in the forest")
    now = store.start_session("alice")
    store.add_turn(now, "alice", "user", "Hello there")
    store.add_turn(now, "alice", "assistant", "Hi!")
    prompts = [
        build_messages(
            store=store, user_id="alice", session_id=now, user_text=text, config=cfg, llm=llm
        )  # fmt: skip
        for text in ("Where does my kayak trip go?", "What does my dog Rex love?")
    ]
    assert prompts[0][:-1] == prompts[1][:-1]
    assert "Norway" in prompts[0][-1].content and "forest" in prompts[1][-1].content
    system = prompts[0][0].content
    assert system.index("teal") < system.index("Rex")  # as told, whatever the question


def test_the_session_history_keeps_its_start_from_turn_to_turn():
    """The oldest messages go a few at a time, not one a turn: the prompt's beginning (which
    llama.cpp has read already) stays the same for several turns, and it never holds more than
    memory.recent_turns messages."""
    cfg = config(recent_turns=8)
    llm = WordCountLLM(cfg.llm)
    history: list[Message] = []
    starts = []
    for i in range(12):
        messages = build_messages(
            store=None, user_id="alice", session_id=None, user_text=f"question {i}",
            config=cfg, llm=llm, history=history,
        )  # fmt: skip
        past = messages[1:-1]
        assert len(past) <= 8 and past == history[len(history) - len(past) :]
        starts.append(past[0].content if past else None)
        history += [Message("user", f"question {i}"), Message("assistant", f"answer {i}")]
    # One exchange a turn: the start moves every second turn once the history is full.
    changes = sum(a != b for a, b in zip(starts[4:], starts[5:], strict=False))
    assert changes <= 4, starts
    assert starts[-1] != starts[4]  # and it does move on


def test_interrupted_reply_reads_as_what_was_heard(store):
    cfg = Config()
    session = store.start_session("alice")
    store.add_turn(session, "alice", "user", "Tell me a long story")
    store.add_turn(session, "alice", "assistant", "Once upon a time there was a dragon who",
                   interrupted=True, heard="Once upon a time")  # fmt: skip
    messages = build_messages(store=store, user_id="alice", session_id=session,
                              user_text="Stop, a shorter one", config=cfg,
                              llm=WordCountLLM(cfg.llm), interrupted_note="They cut you off.")  # fmt: skip
    assert messages[2] == Message("assistant", f"Once upon a time {INTERRUPTED_MARK}")
    assert "dragon" not in " ".join(m.content for m in messages)
    assert messages[0].content.endswith("They cut you off.")


def test_budget_trims_oldest_history_then_recalled_and_keeps_the_question(store):
    cfg = config(prompt_token_budget=150, recent_turns=50, recall_limit=20)
    llm = WordCountLLM(cfg.llm)
    old = store.start_session("alice")
    for i in range(20):
        store.add_turn(old, "alice", "user", f"Earlier about gardens number {i} " + "word " * 10)
    now = store.start_session("alice")
    for i in range(30):
        store.add_turn(now, "alice", "user" if i % 2 == 0 else "assistant", f"turn {i} " + "x " * 8)
    messages = build_messages(store=store, user_id="alice", session_id=now,
                              user_text="What about my gardens?", config=cfg, llm=llm)  # fmt: skip
    assert prompt_tokens(llm, messages) <= 150
    assert messages[-1].role == "user"
    assert messages[-1].content.endswith("\n\nWhat about my gardens?")  # after what it recalled
    history = [m.content for m in messages[1:-1]]
    assert history and history[-1].startswith("turn 29")  # the newest stay
    assert not any(h.startswith("turn 0 ") for h in history)

    huge = "please explain " + "blah " * 5000 + "the very end"
    messages = build_messages(store=store, user_id="alice", session_id=now, user_text=huge,
                              config=cfg, llm=llm)  # fmt: skip
    assert prompt_tokens(llm, messages) <= 150
    assert messages[-1].role == "user" and messages[-1].content.endswith("the very end")


def test_context_window_less_reply_tokens_is_the_limit(store):
    cfg = config(prompt_token_budget=100000, recent_turns=200)
    cfg.llm.n_ctx = 512
    cfg.llm.max_tokens = 256
    llm = WordCountLLM(cfg.llm)
    session = store.start_session("alice")
    for _ in range(100):
        store.add_turn(session, "alice", "user", "word " * 20)
    messages = build_messages(store=store, user_id="alice", session_id=session,
                              user_text="hi", config=cfg, llm=llm)  # fmt: skip
    assert prompt_tokens(llm, messages) <= 512 - 256


def test_without_a_store_the_prompt_still_works():
    cfg = Config()
    history = [Message("user", "earlier"), Message("assistant", "reply")]
    messages = build_messages(store=None, user_id="alice", session_id=None, user_text="hello",
                              config=cfg, llm=WordCountLLM(cfg.llm), history=history)  # fmt: skip
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert "You are talking with alice." in messages[0].content


def test_incognito_uses_the_profile_and_the_given_history(tmp_path):
    path = tmp_path / "store.db"
    with Store(path) as store:
        store.set_profile("alice", display_name="Alice")
        store.add_fact("alice", "My favourite colour is teal.")
    cfg = Config()
    with Store(path, readonly=True) as store:
        messages = build_messages(store=store, user_id="alice", session_id=None,
                                  user_text="what is my favourite colour", config=cfg,
                                  llm=WordCountLLM(cfg.llm), history=[])  # fmt: skip
    assert "Alice" in messages[0].content and "teal" in messages[0].content


def test_the_prompt_is_logged_at_debug_level(store, caplog):
    cfg = Config()
    store.add_fact("alice", "My favourite colour is teal.")
    with caplog.at_level(logging.DEBUG, logger="perslm_voice.persona"):
        build_messages(store=store, user_id="alice", session_id=None,
                       user_text="what is my favourite colour", config=cfg,
                       llm=WordCountLLM(cfg.llm))  # fmt: skip
    assert "My favourite colour is teal." in caplog.text


@pytest.fixture(scope="module")
def smollm(load_embedded_llm):
    llm = load_embedded_llm(n_ctx=512, max_tokens=128)
    yield llm
    llm.close()


@pytest.mark.slow
def test_real_tokenizer_never_overruns_the_context(store, smollm):
    cfg = config(prompt_token_budget=100000, recent_turns=200)
    cfg.llm.n_ctx = 512
    cfg.llm.max_tokens = 128
    session = store.start_session("alice")
    for i in range(60):
        store.add_turn(
            session, "alice", "user", f"Sentence {i} about Zürich, café and naïve façades."
        )
    messages = build_messages(store=store, user_id="alice", session_id=session,
                              user_text="Summarise what I said", config=cfg, llm=smollm)  # fmt: skip
    assert prompt_tokens(smollm, messages) <= 512 - 128
