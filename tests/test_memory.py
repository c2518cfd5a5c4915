"""Facts, recall and spoken memory commands on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perslm_voice.memory import Store
from perslm_voice.memory.intents import handle_memory_intent, spoken
from perslm_voice.memory.terms import fts_query, index_terms_v1, query_terms, user_key


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.db") as s:
        yield s


def remember(store: Store, user: str, text: str) -> str | None:
    session = store.start_session(user)
    turn = store.add_turn(session, user, "user", text)
    return handle_memory_intent(store, user, text, turn_id=turn)


def test_query_terms_drop_stop_words_and_keep_specific_words():
    assert query_terms("What is my favourite colour?") == ["favourite", "colour"]
    assert query_terms("the and of is") == []
    assert fts_query("", "bob") is None
    key = user_key("bob")
    assert fts_query('say "NEAR" * -x', "bob") == f'"{key}near"'
    assert index_terms_v1("bob", "The Café is OPEN") == f"{key}cafe {key}open"
    assert user_key("alice") != key and user_key("alice").isalpha()


HOSTILE = [
    '"', '""', "'", "NEAR", "NEAR(a b)", "a NEAR/2 b", "*", "a*", "-", "-teal", "^teal",
    "colour:teal", "user_id:alice", "AND", "OR NOT", "(", ")", "{a b}", "+", "teal OR 1=1",
    "x'; DROP TABLE turns; --", "\x00", "é\u0301", "🙂 emoji", "   ", "NOT teal",
]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_recall_takes_any_text(store, text):
    store.add_fact("alice", "My favourite colour is teal.")
    store.recall("alice", text, 5)
    store.search("alice", text)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80))
def test_recall_never_raises_on_any_text(store, text):
    store.recall("alice", text, 5)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.sampled_from(list('"*-^:(){}+ NEARORANDNOTab')), max_size=40))
def test_recall_never_raises_on_fts_syntax(store, text):
    store.recall("alice", text, 5)


def test_recall_is_per_user_even_when_ids_tokenize_alike(store):
    # "john.doe" and "john-doe" are the same FTS tokens: the row's user_id must still decide.
    for user in ("john.doe", "john-doe", "alice"):
        session = store.start_session(user)
        store.add_turn(session, user, "user", f"{user} keeps a secret about kayaking")
        store.add_fact(user, f"{user} owns a red kayak")
    for user in ("john.doe", "john-doe", "alice"):
        found = store.recall(user, "kayaking kayak secret", 10)
        assert found and all(r.text.startswith(user) for r in found), found
    assert store.recall("nobody", "kayaking", 10) == []


def test_recall_excludes_the_current_session_and_reads_interrupted_turns_as_heard(store):
    past = store.start_session("alice")
    store.add_turn(past, "alice", "user", "Tell me about the volcano trip")
    store.add_turn(
        past, "alice", "assistant", "The volcano trip starts at dawn and ends at noon",
        interrupted=True, heard="The volcano trip starts",
    )  # fmt: skip
    now = store.start_session("alice")
    store.add_turn(now, "alice", "user", "volcano again")
    found = store.recall("alice", "volcano", 5, exclude_session=now)
    assert {r.session_id for r in found} == {past}
    assert "The volcano trip starts" in [r.text for r in found]


def test_facts_are_deduplicated_and_forgotten_by_id_only_for_their_user(store):
    first = store.add_fact("alice", "My cat is Tom.")
    assert store.add_fact("alice", "my cat is   Tom.") == first
    bob_fact = store.add_fact("bob", "My cat is Felix.")
    assert not store.forget_fact("alice", bob_fact)
    assert [f.text for f in store.facts("bob")] == ["My cat is Felix."]
    assert store.forget_fact("alice", first)
    assert store.facts("alice") == []


def raw_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_forget_all_cleans_the_index_and_wipes_the_pages(tmp_path):
    path = tmp_path / "store.db"
    with Store(path) as store:
        assert remember(store, "alice", "Remember that my password hint is zanzibarquux")
        session = store.start_session("alice")
        for i in range(200):
            store.add_turn(session, "alice", "user", f"zanzibarquux number {i} " + "filler " * 30)
        store.add_fact("bob", "Bob likes zanzibarquux too")
        assert store.search("alice", "zanzibarquux")
        removed = store.forget_all("alice")
        assert removed["facts"] == 1 and removed["turns"] == 201
        assert store.search("alice", "zanzibarquux") == []
        assert [r.kind for r in store.search("bob", "zanzibarquux")] == ["fact"]
        assert store.query("PRAGMA integrity_check") == [("ok",)]
        assert store.query("PRAGMA freelist_count") == [(0,)]
    # Only bob's copy of the word is left anywhere in the file.
    assert raw_bytes(path).count(b"zanzibarquux") <= 2


def test_forget_session_takes_its_facts_along(store):
    one = store.start_session("alice")
    turn = store.add_turn(one, "alice", "user", "Remember that my locker code is 4312")
    store.add_fact("alice", "My locker code is 4312.", source_turn_id=turn)
    two = store.start_session("alice")
    store.add_turn(two, "alice", "user", "I like lockers")
    assert store.forget_session("bob", one) == {"sessions": 0, "turns": 0, "facts": 0}
    assert store.forget_session("alice", one) == {"sessions": 1, "turns": 1, "facts": 1}
    assert [r.session_id for r in store.search("alice", "locker code lockers")] == [two]


def test_remember_forget_and_list(store):
    assert remember(store, "alice", "Remember that my favourite colour is teal.") == (
        "Got it, I'll remember that your favourite colour is teal."
    )
    assert remember(store, "alice", "please remember: I take my coffee black") == (
        "Got it, I'll remember that you take your coffee black."
    )
    assert remember(store, "alice", "Don't forget that my sister is called Ann.")
    facts = store.facts("alice")
    assert [f.text for f in facts][0] == "My favourite colour is teal."
    assert facts[0].source_turn_id is not None
    listed = handle_memory_intent(store, "alice", "What do you remember about me?")
    assert listed is not None
    assert "your favourite colour is teal" in listed and "you take your coffee black" in listed
    assert handle_memory_intent(store, "bob", "what do you know about me") is not None
    assert "teal" not in (handle_memory_intent(store, "bob", "what do you know about me") or "")
    gone = handle_memory_intent(store, "alice", "Forget that my favourite colour is teal.")
    assert gone == "Okay, I've forgotten that your favourite colour is teal."
    assert handle_memory_intent(store, "alice", "forget about my coffee") is not None
    assert [f.text for f in store.facts("alice")] == ["My sister is called Ann."]
    assert handle_memory_intent(store, "alice", "forget about my uncle's boat") == (
        "I don't have anything like that in my memory."
    )


@pytest.mark.parametrize(
    "text",
    ["hello there", "forget it", "Remember when we went to Paris?", "I remember my first car",
     "remember to buy milk", "Do you remember me?", ""],
)  # fmt: skip
def test_ordinary_talk_is_not_a_memory_command(store, text):
    assert handle_memory_intent(store, "alice", text) is None
    assert store.facts("alice") == []


def test_memory_commands_without_memory_or_in_incognito(tmp_path):
    assert "off" in (handle_memory_intent(None, "alice", "remember that I like tea") or "")
    path = tmp_path / "store.db"
    Store(path).close()
    with Store(path, readonly=True) as store:
        reply = handle_memory_intent(store, "alice", "remember that I like tea")
        assert reply and "incognito" in reply
        assert store.facts("alice") == []


def test_spoken_turns_facts_towards_the_user():
    assert spoken("My cat is Tom.") == "your cat is Tom"
    assert spoken("I was born in Oslo.") == "you were born in Oslo"
    assert spoken("You should call me Al.") == "I should call you Al"
