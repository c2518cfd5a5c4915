"""Spoken memory commands: "remember that ...", "forget that ...", "what do you remember about me?".

``handle_memory_intent`` answers them from the store without the language model; any other text
gives None and goes to the model. Facts are stored in the user's own words ("My favourite
colour is teal."); replies turn them around ("your favourite colour is teal"), and are short
because they are spoken.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import StoreError
from .terms import query_terms

if TYPE_CHECKING:
    from .store import Store

LEAD = (
    r"^(?:(?:ok|okay|so|and|also|hey|well|now|assistant|please|can you|could you|would you)[ ,]+)*"
)
REMEMBER = re.compile(
    LEAD + r"(?:remember|don't forget|do not forget|keep in mind|note)"
    r"(?:\s*[:,]\s*|\s+that\s+|\s+this\s*[:,]?\s+|\s+(?=(?:i|i'm|i've|my|our|we)\b))"
    r"(?P<fact>.+)$",
    re.I,
)
FORGET = re.compile(
    LEAD + r"forget(?:\s+(?:about|that|what i (?:said|told you) about|the fact that))?"
    r"\s*[:,]?\s+(?P<what>.+)$",
    re.I,
)
LIST = re.compile(
    LEAD + r"(?:what (?:do|did|have) you (?:remember(?:ed)?|know|stored|saved|kept)"
    r"(?: about me| of me)?(?: so far)?"
    r"|what did i (?:ask|tell) you to remember"
    r"|what have i (?:asked|told) you to remember"
    r"|(?:list|tell me|show me) (?:my facts|what you remember(?: about me)?))$",
    re.I,
)
EVERYTHING = {"everything", "everything about me", "all", "all of it", "all my facts", "all facts"}

# First person (stored) -> second person (spoken back), and the other way round.
SWAP = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "you": "me",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
    "you're": "I'm",
    "you've": "I've",
    "you'll": "I'll",
    "you'd": "I'd",
}
MAX_LISTED = 5


def _normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split()).strip(" .!")


def as_stored(fact: str) -> str:
    """The fact as stored: the user's words, capitalised, ending with a full stop."""
    fact = fact.strip(" .!,;")
    return fact[:1].upper() + fact[1:] + "."


def spoken(fact: str) -> str:
    """A stored fact turned towards the user: "My cat is Tom." -> "your cat is Tom"."""
    pieces = re.findall(r"[\w']+|[^\w']+", fact.strip(" .!"))
    words = [i for i, p in enumerate(pieces) if p[0].isalnum() or p[0] == "'"]
    out = list(pieces)
    for n, i in enumerate(words):
        word = pieces[i].lower()
        after = pieces[words[n + 1]].lower() if n + 1 < len(words) else ""
        before = pieces[words[n - 1]].lower() if n else ""
        if word == "was" and before in ("i", "you"):
            out[i] = "were" if before == "i" else "was"
            continue
        if word == "were" and before == "you":
            out[i] = "was"
            continue
        swap = SWAP.get(word)
        if swap == "me" and (n == 0 or after in ("are", "were", "have", "can", "should", "will")):
            swap = "I"
        if swap:
            out[i] = swap
    text = "".join(out)
    first = text.split(" ", 1)[0]
    if first != "I" and first.lower() in {*SWAP.values(), "the", "a", "an"}:
        text = text[:1].lower() + text[1:]
    return text


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _remember(store: Store | None, user_id: str, fact: str, turn_id: int | None) -> str:
    if store is None:
        return "My memory is off right now, so I can't keep that."
    if store.readonly:
        return "This is an incognito session, so I won't remember that."
    try:
        store.add_fact(user_id, as_stored(fact), source_turn_id=turn_id)
    except StoreError:
        return "Sorry, I couldn't save that: my memory isn't working right now."
    return f"Got it, I'll remember that {spoken(fact)}."


def _forget(store: Store | None, user_id: str, what: str) -> str | None:
    if not query_terms(what):
        return None  # "forget it" means "never mind": a conversation, not a command
    if what.lower() in EVERYTHING:
        return "To forget everything, run: perslm-voice memory forget --all."
    if store is None:
        return "My memory is off right now, so there is nothing to forget."
    if store.readonly:
        return "This is an incognito session, so I can't change my memory now."
    try:
        removed = store.forget_matching(user_id, what)
    except StoreError:
        return "Sorry, I couldn't change my memory: it isn't working right now."
    if not removed:
        return "I don't have anything like that in my memory."
    if len(removed) == 1:
        return f"Okay, I've forgotten that {spoken(removed[0].text)}."
    return f"Okay, I've forgotten {len(removed)} things about that."


def _list(store: Store | None, user_id: str) -> str:
    if store is None:
        return "My memory is off right now."
    try:
        facts = store.facts(user_id)
    except StoreError:
        return "Sorry, my memory isn't working right now."
    if not facts:
        return 'I don\'t have anything saved about you yet. Say "remember that" and I will.'
    said = [f"that {spoken(f.text)}" for f in facts[-MAX_LISTED:]]
    if len(facts) <= MAX_LISTED:
        return f"I remember {_join(said)}."
    return (
        f"I remember {len(facts)} things. The latest: {_join(said)}."
        " Run perslm-voice memory export to see them all."
    )


def match_memory_intent(text: str) -> tuple[str, str] | None:
    """("list", ""), ("remember", fact) or ("forget", what) when ``text`` is a memory command."""
    said = _normalise(text)
    if not said:
        return None
    if LIST.match(said.rstrip("?")):
        return ("list", "")
    if said.endswith("?"):
        return None  # "remember when we ...?" is a question for the model
    match = REMEMBER.match(said)
    if match:
        fact = match.group("fact").strip()
        if fact.lower().startswith("to ") or not query_terms(fact):
            return None  # "remember to ..." asks for a reminder, which this is not
        return ("remember", fact)
    match = FORGET.match(said)
    if match:
        return ("forget", match.group("what").strip())
    return None


def handle_memory_intent(
    store: Store | None, user_id: str, text: str, turn_id: int | None = None
) -> str | None:
    """The spoken reply to a memory command in ``text``, or None when it is not one.

    ``turn_id`` is the stored user turn that said it (kept as the fact's source, so forgetting
    that session forgets the fact too). Works with ``store=None`` (memory off) and a read-only
    store (incognito) by saying why nothing is kept.
    """
    intent = match_memory_intent(text)
    if intent is None:
        return None
    kind, argument = intent
    if kind == "list":
        return _list(store, user_id)
    if kind == "remember":
        return _remember(store, user_id, argument, turn_id)
    return _forget(store, user_id, argument)
