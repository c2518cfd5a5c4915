"""Facts: what a user explicitly asked the assistant to remember."""

from __future__ import annotations

import time

from .core import StoreCore
from .records import Fact
from .terms import query_terms

_COLUMNS = "id, user_id, text, source_turn_id, created_at"


class FactsMixin(StoreCore):
    """Store methods for facts."""

    def add_fact(self, user_id: str, text: str, source_turn_id: int | None = None) -> int:
        """Store a fact (committed at once) and return its id; an identical fact is not repeated."""
        text = " ".join(text.split())
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time())
            )
            same = db.execute(
                "SELECT id FROM facts WHERE user_id = ? AND lower(text) = lower(?)", (user_id, text)
            ).fetchone()
            if same:
                return int(same[0])
            cur = db.execute(
                "INSERT INTO facts (user_id, text, source_turn_id, created_at) VALUES (?, ?, ?, ?)",
                (user_id, text, source_turn_id, time.time()),
            )
            return int(cur.lastrowid or 0)

    def facts(self, user_id: str) -> list[Fact]:
        """The user's facts, oldest first."""
        rows = self.query(f"SELECT {_COLUMNS} FROM facts WHERE user_id = ? ORDER BY id", (user_id,))
        return [Fact(*row) for row in rows]

    def fact(self, user_id: str, fact_id: int) -> Fact | None:
        rows = self.query(
            f"SELECT {_COLUMNS} FROM facts WHERE user_id = ? AND id = ?", (user_id, fact_id)
        )
        return Fact(*rows[0]) if rows else None

    def forget_fact(self, user_id: str, fact_id: int) -> bool:
        """Remove one of the user's facts (another user's id does nothing); True if removed."""
        with self.transaction() as db:
            cur = db.execute("DELETE FROM facts WHERE user_id = ? AND id = ?", (user_id, fact_id))
            removed = cur.rowcount == 1
        if removed:
            self.reclaim_space("facts")
        return removed

    def matching_facts(self, user_id: str, text: str) -> list[Fact]:
        """The user's facts that ``text`` describes: all its content words occur in the fact,
        or failing that, the facts sharing the most content words with it."""
        wanted = set(query_terms(text, max_terms=64))
        if not wanted:
            return []
        scored = []
        for fact in self.facts(user_id):
            have = set(query_terms(fact.text, max_terms=1000))
            shared = len(wanted & have)
            if shared:
                scored.append((shared, fact))
        if not scored:
            return []
        complete = [f for n, f in scored if n == len(wanted)]
        if complete:
            return complete
        best = max(n for n, _ in scored)
        # Half the words or more in common: "forget my coffee order" -> "I take my coffee black".
        return [f for n, f in scored if n == best and n * 2 >= len(wanted)]

    def forget_matching(self, user_id: str, text: str) -> list[Fact]:
        """Remove the facts ``text`` describes (see matching_facts) and return them."""
        found = self.matching_facts(user_id, text)
        if not found:
            return []
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM facts WHERE user_id = ? AND id = ?", [(user_id, f.id) for f in found]
            )
        self.reclaim_space("facts")
        return found
