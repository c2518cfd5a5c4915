"""An incremental sentence and clause splitter: LLM pieces in, speakable chunks out, as early as sensible.

The first chunk of a reply may end at a clause boundary (a comma after a few words) so that speech
starts while the rest is still being generated; later chunks are whole sentences, which sound better.
"""

from __future__ import annotations

import re

# Words after which a full stop does not end a sentence.
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no",
    "fig", "mt", "inc", "ltd", "co",
}  # fmt: skip
SENTENCE_END = re.compile(r"([.!?…]+[\"')\]]*)(\s+|$)")
CLAUSE_END = re.compile(r"([,;:—–])(\s+)")


class SentenceSplitter:
    """Feed text pieces; get back the complete sentences (or a first clause) they finish."""

    def __init__(self, first_clause_min_words: int = 4, max_chunk_chars: int = 300):
        self.first_clause_min_words = first_clause_min_words
        self.max_chunk_chars = max_chunk_chars
        self._pending = ""
        self._emitted = 0

    def feed(self, piece: str) -> list[str]:
        self._pending += piece
        out: list[str] = []
        while True:
            chunk = self._take()
            if chunk is None:
                return out
            out.append(chunk)

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        if rest:
            self._emitted += 1
            return [rest]
        return []

    def _take(self) -> str | None:
        text = self._pending
        for match in SENTENCE_END.finditer(text):
            if not match.group(2) and match.end() == len(text):
                return (
                    None  # the stop may be a decimal point or an abbreviation still being written
                )
            end = match.end(1)
            if self._is_false_stop(text, match.start(1)):
                continue
            return self._cut(end)
        if self._emitted == 0:
            for match in CLAUSE_END.finditer(text):
                if len(text[: match.start()].split()) >= self.first_clause_min_words:
                    return self._cut(match.end(1))
        if len(text) > self.max_chunk_chars:
            # No punctuation for a long while (a list, a run-on): cut at the last space.
            space = text.rfind(" ", 0, self.max_chunk_chars)
            return self._cut(space if space > 0 else self.max_chunk_chars)
        return None

    def _is_false_stop(self, text: str, stop: int) -> bool:
        if text[stop] != ".":
            return False
        word = re.search(r"([\w.]+)$", text[:stop])
        if word and word.group(1).lower().rstrip(".") in ABBREVIATIONS:
            return True
        # "3.5", "v1.2": a digit on both sides is not a sentence end
        return stop + 1 < len(text) and text[stop - 1 : stop].isdigit() and text[stop + 1].isdigit()

    def _cut(self, end: int) -> str | None:
        chunk, self._pending = self._pending[:end].strip(), self._pending[end:]
        if not chunk:
            return None if not self._pending.strip() else self._take()
        self._emitted += 1
        return chunk
