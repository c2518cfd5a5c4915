"""How text becomes FTS5 index terms and safe MATCH queries (no SQL here, no store import).

Free text never reaches FTS5's query syntax: it is cut into word tokens, stop words are
dropped, and each token is quoted, so quotes, ``NEAR``, ``*``, ``-`` or ``:`` in what a user
says cannot cause a syntax error or change the query's meaning.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_QUERY_TERMS = 12
WORD = re.compile(r"[^\W_]+", re.UNICODE)
USER_KEY_LETTERS = "abcdefghijklmnop"  # letters only: the porter stemmer treats them as a word

# Words never indexed. Frozen with index_terms_v1: changing it needs a new index version.
INDEX_STOP_WORDS = frozenset(
    """
    a an and are as at be but by for if in into is it its of on or so such than that the their
    then there these they this those to was were will with
    """.split()
)

# Words that say nothing about what a turn is about; matching them would recall everything.
# Free to change: it only shapes queries.
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't could couldn't did didn't do does doesn't
    doing don't down during each few for from further had hadn't has hasn't have haven't having
    he her here hers herself him himself his how i if in into is isn't it it's its itself just
    let's me more most mustn't my myself no nor not now of off on once only or other ought our
    ours ourselves out over own same shan't she should shouldn't so some such than that that's
    the their theirs them themselves then there there's these they this those through to too
    under until up very was wasn't we were weren't what what's when where which while who whom
    why will with won't would wouldn't you your yours yourself yourselves s t d ll m re ve
    please tell know think remember something anything thing things okay ok yes yeah hi hello
    hey thanks thank really get got go going want like say said
    """.split()
)


def _words(text: str) -> list[str]:
    """Lowercased words without accents, stop words and single letters (single digits stay)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return [
        w for w in WORD.findall(folded) if (len(w) > 1 or w.isdigit()) and w not in INDEX_STOP_WORDS
    ]


def user_key(user_id: str) -> str:
    """Ten letters derived from the user id, prefixed to each of their indexed words."""
    digest = hashlib.blake2b(user_id.encode("utf-8"), digest_size=5).digest()
    return "".join(USER_KEY_LETTERS[b >> 4] + USER_KEY_LETTERS[b & 15] for b in digest)


def index_terms_v1(user_id: str | None, text: str | None) -> str:
    """What the FTS index holds for a row: the user's key + each content word.

    Registered as the SQL function ``pv_index_terms_v1``. Frozen: deleting a row recomputes
    it, so any change would leave stale postings behind (see migrations._fts).
    """
    key = user_key(user_id or "")
    return " ".join(key + word for word in _words(text or ""))


def query_terms(text: str, max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """The distinct content words of ``text``, longest (most specific) first."""
    seen = dict.fromkeys(w for w in _words(text) if w not in STOP_WORDS)
    return sorted(seen, key=len, reverse=True)[:max_terms]


def fts_query(text: str, user_id: str) -> str | None:
    """A safe FTS5 MATCH expression for any of the content words of ``text`` said by
    ``user_id`` (None when ``text`` has none). Each term is a quoted string, so nothing in
    ``text`` can be read as FTS5 syntax."""
    key = user_key(user_id)
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + (key + t).replace('"', '""') + '"' for t in terms)
