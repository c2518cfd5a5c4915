"""Builds each reply's prompt from the profile, the user's facts, recalled past turns and this session.

The prompt is laid out so that it starts the same from one turn to the next: the system message
(profile, facts in the order they were told, the note on interruptions) and this session's history
come first, and what depends on the question (the turns recalled from earlier sessions) comes with
the question, in the last message. A model server that keeps the prompt it has read (llama.cpp)
then reads only the end of it again (``LLM.prefill`` reads that start before the user speaks).

Everything fits a token budget: ``memory.prompt_token_budget`` and the model's context window
less the reply's ``llm.max_tokens``. When it does not fit, the oldest turns of this session go
first, then the least relevant recalled turns, then facts; the user's current text is never
dropped (a huge one is shortened, keeping its end, where the question usually is).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Config
from .errors import StoreError
from .llm.base import LLM, Message
from .memory.records import Fact, Profile, Recalled

if TYPE_CHECKING:
    from .memory.store import Store

log = logging.getLogger("perslm_voice.persona")

INTERRUPTED_MARK = "[you were interrupted here]"
MESSAGE_OVERHEAD_TOKENS = 4  # chat-template tokens around each message
KEEP_LAST_HISTORY = 2  # the latest exchange goes only after recalled turns
FACTS_HEADER = 'What {name} asked you to remember, in their words ("I" and "my" mean {name}):'
RECALLED_HEADER = "From earlier conversations, in case it helps:"
LANGUAGES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "sv": "Swedish", "pl": "Polish", "ru": "Russian",
    "uk": "Ukrainian", "tr": "Turkish", "ar": "Arabic", "hi": "Hindi", "ja": "Japanese",
    "ko": "Korean", "zh": "Chinese",
}  # fmt: skip


@dataclass
class PromptPlan:
    """What goes into one prompt, before rendering: kept after the token budget was applied."""

    profile: Profile
    facts: list[Fact] = field(default_factory=list)
    recalled: list[Recalled] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    user_text: str = ""
    budget_tokens: int = 0
    used_tokens: int = 0


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` without a tokenizer (the same estimate as ``LLM.count_tokens``)."""
    return max(1, len(text) // 3)


def language_name(code: str) -> str:
    return LANGUAGES.get(code.split("-")[0].split("_")[0].lower(), code)


def _profile_lines(profile: Profile) -> list[str]:
    name = profile.display_name or profile.user_id
    lines = [f"You are talking with {name}."]
    if profile.address_as and profile.address_as != name:
        lines.append(f"Address them as {profile.address_as}.")
    if profile.language:
        lines.append(f"Always reply in {language_name(profile.language)}.")
    if profile.persona:
        lines.append(profile.persona.strip())
    if profile.preferences:
        prefs = "; ".join(f"{k}: {v}" for k, v in sorted(profile.preferences.items()))
        lines.append(f"Their preferences: {prefs}.")
    return lines


def render_system(config: Config, plan: PromptPlan, interrupted_note: str | None = None) -> str:
    """The system message for ``plan``."""
    name = plan.profile.name_to_use
    parts = [config.llm.system_prompt.strip(), " ".join(_profile_lines(plan.profile))]
    if plan.facts:
        # In the order they were told, not by relevance: the message stays the same whatever
        # the question (relevance decides only which facts a tight budget keeps).
        listed = "\n".join(f"- {f.text}" for f in sorted(plan.facts, key=lambda f: f.id))
        parts.append(f"{FACTS_HEADER.format(name=name)}\n{listed}")
    if interrupted_note:
        parts.append(interrupted_note.strip())
    return "\n\n".join(p for p in parts if p)


def render_question(plan: PromptPlan) -> str:
    """The last message: the turns recalled for this question (if any), then the question."""
    if not plan.recalled:
        return plan.user_text
    name = plan.profile.name_to_use
    said = "\n".join(
        f"- {'You' if r.role == 'assistant' else name} said: {r.text}" for r in plan.recalled
    )
    return f"{RECALLED_HEADER}\n{said}\n\n{plan.user_text}"


def _history_from_store(store: Store, user_id: str, session_id: int, limit: int) -> list[Message]:
    messages = []
    for turn in store.turns(user_id, session_id=session_id, limit=limit):
        if turn.role == "assistant" and turn.interrupted:
            heard = (turn.heard or "").strip()
            messages.append(Message("assistant", f"{heard} {INTERRUPTED_MARK}".strip()))
        else:
            messages.append(Message("user" if turn.role == "user" else "assistant", turn.text))
    return messages


def _recent(past: list[Message], keep: int) -> list[Message]:
    """At most the last ``keep`` messages, cut where the cut moves only every ``keep // 2``
    messages: the prompt then starts the same from one turn to the next, and llama.cpp reuses
    what it has read (cutting one message off the front at every turn made it read the whole
    prompt again: about 1 s for 280 tokens on a busy 2-core machine)."""
    if keep <= 0:
        return []
    if len(past) <= keep:
        return past
    step = max(1, keep // 2)
    start = -(-(len(past) - keep) // step) * step
    return past[start:]


def _ordered_facts(store: Store, user_id: str, user_text: str) -> list[Fact]:
    """All the user's facts, those relevant to ``user_text`` first, then the newest."""
    facts = store.facts(user_id)
    relevant = [r.id for r in store.recall(user_id, user_text, len(facts) or 1, kinds=("fact",))]
    rank = {fact_id: i for i, fact_id in enumerate(relevant)}
    newest_first = list(reversed(facts))
    return sorted(newest_first, key=lambda f: rank.get(f.id, len(rank)))


def _shorten(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The end of ``text`` within ``max_tokens`` (found by halving the kept length)."""
    if count(text) <= max_tokens:
        return text
    keep = len(text)
    while keep > 1 and count("…" + text[-keep:]) > max_tokens:
        keep //= 2
    return "…" + text[-keep:]


def plan_prompt(
    *,
    store: Store | None,
    user_id: str,
    session_id: int | None,
    user_text: str,
    config: Config,
    count_tokens: Callable[[str], int],
    context_window: int,
    history: Sequence[Message] | None = None,
    interrupted_note: str | None = None,
) -> PromptPlan:
    """Choose what the prompt holds for ``user_text`` within the token budget.

    ``history`` (this session's turns, oldest first) overrides reading them from the store:
    for incognito sessions, whose turns are never stored. A store that fails is logged and
    treated as empty: a reply without memory beats no reply.
    """
    memory = config.memory
    budget = min(memory.prompt_token_budget, max(1, context_window - config.llm.max_tokens))
    profile, facts, recalled, past = Profile(user_id), [], [], list(history or [])
    if store is not None:
        try:
            profile = store.get_profile(user_id)
            facts = _ordered_facts(store, user_id, user_text)
            recalled = store.recall(
                user_id, user_text, memory.recall_limit, exclude_session=session_id,
                kinds=("turn",),
            )  # fmt: skip
            if history is None and session_id is not None and memory.recent_turns:
                past = _history_from_store(store, user_id, session_id, memory.recent_turns + 1)
        except StoreError as exc:
            log.warning("memory unavailable for this reply: %s", exc)
    if past and past[-1].role == "user" and past[-1].content == user_text:
        past = past[:-1]  # the loop stored the current turn before asking for the prompt
    past = _recent(past, memory.recent_turns)

    plan = PromptPlan(profile, facts, recalled, past, user_text, budget)

    count = functools.lru_cache(maxsize=None)(count_tokens)
    fixed = count(render_system(config, PromptPlan(profile), interrupted_note))
    name = profile.name_to_use
    headers = count(FACTS_HEADER.format(name=name)) + count(RECALLED_HEADER) + 4

    def used() -> int:
        # Each piece is counted once (cached), then summed: trimming stays linear in the pieces.
        # +1 a piece covers the separators and token boundaries at the joins.
        total = fixed + headers + count(plan.user_text) + 1
        total += sum(count(f.text) + 1 for f in plan.facts)
        total += sum(count(r.text) + 4 for r in plan.recalled)
        total += sum(count(m.content) + MESSAGE_OVERHEAD_TOKENS for m in plan.history)
        return total + MESSAGE_OVERHEAD_TOKENS * 2

    while used() > budget:
        if len(plan.history) > KEEP_LAST_HISTORY:
            plan.history.pop(0)
        elif plan.recalled:
            plan.recalled.pop()
        elif plan.history:
            plan.history.pop(0)
        elif plan.facts:
            plan.facts.pop()
        else:
            plan.user_text = ""
            room = budget - used()
            plan.user_text = _shorten(user_text, max(1, room), count_tokens)
            break
    plan.used_tokens = used()
    return plan


def build_messages(
    *,
    store: Store | None,
    user_id: str,
    session_id: int | None,
    user_text: str,
    config: Config,
    llm: LLM,
    interrupted_note: str | None = None,
    history: Sequence[Message] | None = None,
) -> list[Message]:
    """The messages for the model's next reply: system (profile, facts), this session's recent
    turns, then the turns recalled for the user's text with that text. Logged in full at debug
    level."""
    plan = plan_prompt(
        store=store,
        user_id=user_id,
        session_id=session_id,
        user_text=user_text,
        config=config,
        count_tokens=llm.count_tokens,
        context_window=llm.context_window,
        history=history,
        interrupted_note=interrupted_note,
    )
    messages = [
        Message("system", render_system(config, plan, interrupted_note)),
        *plan.history,
        Message("user", render_question(plan)),
    ]
    if log.isEnabledFor(logging.DEBUG):
        shown = "\n".join(f"[{m.role}] {m.content}" for m in messages)
        log.debug(
            "prompt for %s (%d of %d tokens):\n%s", user_id, plan.used_tokens, plan.budget_tokens,
            shown,
        )  # fmt: skip
    return messages
