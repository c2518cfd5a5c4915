"""Recall: BM25 full-text search over one user's past turns and facts (SQLite FTS5)."""

from __future__ import annotations

from collections.abc import Iterable

from .core import StoreCore
from .records import Recalled
from .terms import fts_query, query_terms

__all__ = ["RecallMixin", "fts_query", "query_terms"]


class RecallMixin(StoreCore):
    """Store methods that find past turns and facts relevant to a text."""

    def recall(
        self,
        user_id: str,
        text: str,
        limit: int = 5,
        exclude_session: int | None = None,
        *,
        kinds: Iterable[str] = ("turn", "fact"),
    ) -> list[Recalled]:
        """The user's turns and facts that best match ``text`` (BM25), best first.

        Turns of ``exclude_session`` (the current one, already in the prompt) are left out.
        An interrupted assistant turn reads as what the user heard of it.
        """
        # The user key keeps the MATCH within the user's postings; the row's user_id is checked
        # as well, so isolation does not rest on the key (ten letters of a hash).
        match = fts_query(text, user_id)
        if match is None or limit <= 0:
            return []
        kinds = set(kinds)
        found: list[Recalled] = []
        if "turn" in kinds:
            rows = self.query(
                "SELECT t.id, CASE WHEN t.interrupted AND t.heard IS NOT NULL"
                " THEN t.heard ELSE t.text END, turns_fts.rank, t.started_at, t.role, t.session_id"
                " FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid"
                " WHERE turns_fts MATCH ? AND t.user_id = ? AND t.session_id IS NOT ?"
                " ORDER BY turns_fts.rank LIMIT ?",
                (match, user_id, exclude_session, limit),
            )
            found += [Recalled("turn", r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
        if "fact" in kinds:
            rows = self.query(
                "SELECT f.id, f.text, facts_fts.rank, f.created_at"
                " FROM facts_fts JOIN facts f ON f.id = facts_fts.rowid"
                " WHERE facts_fts MATCH ? AND f.user_id = ?"
                " ORDER BY facts_fts.rank LIMIT ?",
                (match, user_id, limit),
            )
            found += [Recalled("fact", r[0], r[1], r[2], r[3]) for r in rows]
        found.sort(key=lambda r: r.score)
        return found[:limit]

    def search(self, user_id: str, text: str, limit: int = 20) -> list[Recalled]:
        """Everything of the user's (any session, turns and facts) that matches ``text``."""
        return self.recall(user_id, text, limit)
