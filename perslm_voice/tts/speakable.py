"""Text made for speaking: an LLM's markdown turned into sentences a voice can say.

Code blocks are not read out symbol by symbol (a short note says they are on screen), links become
"a link to example.com", list items and headings become sentences, tables are read row by row and
emoji are dropped. The terminal shows the original; only the voice gets this.

``SpeakableStream`` does this on a token stream, handing out each sentence as soon as it is
complete (so speech can start before the reply ends); ``to_speech`` does it on a whole text.
"""

from __future__ import annotations

import re

from .base import SENTENCE_END

CODE_NOTE = "The code is shown on screen."
FIRST_CLAUSE_MIN_WORDS = 2
FIRST_PHRASE_MIN_WORDS = 4  # a first piece with no punctuation may end before a phrase after this
# Words that start a phrase a voice may pause before ("The sky is blue | because ..."); "and",
# "of" and "to" are left out: they join words inside a phrase as often as phrases.
PHRASE_STARTS = (
    "because", "but", "so", "which", "that", "who", "when", "where", "while", "if", "although",
    "since", "until", "unless", "whether", "called", "in", "for", "with", "from", "during",
    "after", "before", "without",
)  # fmt: skip
MAX_PIECE_CHARS = 160  # a piece with no punctuation is cut here, so speech does not wait for it
# Words after which a full stop does not end a sentence.
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "fig",
    "mt", "inc", "ltd", "no",
}  # fmt: skip
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")
_PHRASE_START = re.compile(rf"\s+(?=(?:{'|'.join(PHRASE_STARTS)})\s)", re.IGNORECASE)
CODE_SNIPPET = "a code snippet"

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s+|$)")
_BULLET = re.compile(r"^\s*[-*+•]\s+")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_RULE = re.compile(r"^\s{0,3}([-*_=]\s*){3,}$")
_TABLE_SEPARATOR = re.compile(r"^:?-{1,}:?$")

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>()\"']+[^\s<>()\"'.,;:!?]")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols, flags
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2b00-\u2bff"  # arrows and stars used as emoji
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_CODE_SYMBOLS = set("=<>{}[]()*/+|&;$%^\\")
_SPACES = re.compile(r"\s+")


def _link_words(url: str) -> str:
    host = re.sub(r"^(?:(?:https?|ftp)://)?(?:www\.)?", "", url).split("/")[0].split("?")[0]
    host = host.split("@")[-1].split(":")[0]
    return f"a link to {host}" if host else "a link"


def _code_words(code: str) -> str:
    """Inline code as words: identifiers are said, a dense expression is only mentioned."""
    if _URL.fullmatch(code):
        return _link_words(code)
    if sum(ch in _CODE_SYMBOLS for ch in code) >= 4:
        return CODE_SNIPPET
    words = re.sub(r"[_`'\"()\[\]{}<>;]", " ", code)
    return _SPACES.sub(" ", words).strip()


def inline_to_speech(text: str) -> str:
    """Inline markdown of one line as plain words."""
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(_code_words(match.group(2).strip()))
        return f"\x00{len(codes) - 1}\x00"  # protected from the rules below

    text = _INLINE_CODE.sub(keep_code, text)
    # An escaped marker (\*) is a literal character: hidden from the emphasis rules.
    text = _ESCAPE.sub(lambda m: f"\x01{ord(m.group(1))}\x01", text)
    text = _IMAGE.sub(lambda m: f"an image of {m.group(1)}" if m.group(1) else "an image", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: _link_words(m.group(1)), text)
    text = _URL.sub(lambda m: _link_words(m.group(0)), text)
    text = _HTML_TAG.sub(" ", text)
    text = _BOLD.sub(lambda m: m.group(2), text)
    for pattern in (_STRIKE, _ITALIC_STAR, _ITALIC_UNDERSCORE):
        text = pattern.sub(lambda m: m.group(1), text)
    text = _EMOJI.sub("", text)
    text = text.replace("`", "")  # a stray marker left by an unclosed code span
    text = re.sub(r"\s*(?:->|=>|→)\s*", " to ", text)
    text = re.sub(r"\s+&\s+", " and ", text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)
    text = re.sub(r"\x01(\d+)\x01", lambda m: chr(int(m.group(1))), text)
    text = _SPACES.sub(" ", text).strip()
    return re.sub(r"\s+([,.;:!?])", r"\1", text)


def _as_sentence(text: str) -> str:
    """Close a unit (heading, list item, line) with a full stop unless it has its own."""
    text = text.strip().rstrip(",;")
    if text and text[-1] not in ".!?:…":
        text += "."
    return text


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_to_speech(lines: list[str]) -> list[str]:
    """A markdown table read row by row, each value with its column's name when there is one."""
    rows = [_cells(line) for line in lines]
    header: list[str] = []
    if len(rows) >= 2 and all(_TABLE_SEPARATOR.match(c) for c in rows[1] if c):
        header, rows = [inline_to_speech(c) for c in rows[0]], rows[2:]
    sentences = []
    for row in rows:
        parts = []
        for i, cell in enumerate(row):
            value = inline_to_speech(cell)
            if not value:
                continue
            name = header[i] if i < len(header) else ""
            parts.append(f"{name}: {value}" if name else value)
        if parts:
            sentences.append(_as_sentence(", ".join(parts)))
    return sentences


def _could_grow_into_block(head: str) -> bool:
    """Whether an unfinished line start may still turn out to be a fence, table or rule."""
    stripped = head.strip()
    return (
        len(stripped) < 4 or stripped[0] in "|`~" or bool(re.fullmatch(r"([-*_=]\s*)+", stripped))
    )


def _ends_with_abbreviation(text: str) -> bool:
    """Whether the full stop after ``text`` belongs to an abbreviation ("Dr.", "e.g.")."""
    word = re.search(r"([\w.]+)$", text)
    return bool(word) and word.group(1).lower().rstrip(".") in ABBREVIATIONS


def _balanced(text: str) -> bool:
    """No inline code or link left open: a sentence may not be cut inside one."""
    return (
        text.count("`") % 2 == 0
        and text.count("[") <= text.count("]")
        and (text.count("(") <= text.count(")"))
    )


def _first_break(line: str, pattern: re.Pattern[str], min_words: int) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``line`` after at least ``min_words`` words, outside
    inline code and links."""
    for match in pattern.finditer(line):
        head = line[: match.start()]
        if len(head.split()) >= min_words and _balanced(head):
            return match
    return None


class SpeakableStream:
    """Feed an LLM reply piece by piece; get speakable sentences as soon as each is complete."""

    def __init__(self) -> None:
        self._buffer = ""  # raw text not yet looked at
        self._line = ""  # the current line's inline text (its block marker removed)
        self._in_line = False  # the current line's start has been classified
        self._fence: str | None = None  # the marker of an open code block
        self._table: list[str] = []
        self._emitted = 0  # pieces handed out so far in this reply

    def feed(self, text: str) -> list[str]:
        """Sentences completed by ``text``."""
        self._buffer += text
        out = self._process(final=False)
        self._emitted += len(out)
        return out

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        out = self._process(final=True)
        self.__init__()  # type: ignore[misc]  # ready for the next reply
        return out

    def _process(self, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            if self._fence is not None:
                if not self._skip_code(out, final):
                    return out
                continue
            if not self._in_line:
                if not self._start_line(out, final):
                    return out
                continue
            newline = self._buffer.find("\n")
            if newline < 0 and not final:
                self._line += self._buffer
                self._buffer = ""
                out.extend(self._complete_sentences())
                return out
            end = len(self._buffer) if newline < 0 else newline
            self._line += self._buffer[:end]
            self._buffer = self._buffer[end + 1 :]
            out.extend(self._end_line())
            if newline < 0:
                return out

    def _skip_code(self, out: list[str], final: bool) -> bool:
        """Drop code lines until the fence closes; False when more text is needed."""
        while True:
            newline = self._buffer.find("\n")
            if newline < 0:
                if final:  # a block left open at the end of the reply is code all the same
                    self._buffer = ""
                    self._fence = None
                    out.append(CODE_NOTE)
                return False
            line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
            if self._fence and line.strip().startswith(self._fence):
                self._fence = None
                out.append(CODE_NOTE)
                return True

    def _start_line(self, out: list[str], final: bool) -> bool:
        """Classify the next line by its start; False when more text is needed."""
        newline = self._buffer.find("\n")
        if newline < 0:
            if not final and (not self._buffer or _could_grow_into_block(self._buffer)):
                return False
            if not self._buffer:  # the end of the reply
                out.extend(table_to_speech(self._table))
                self._table = []
                return False
            head, rest = self._buffer, ""
        else:
            head, rest = self._buffer[:newline], self._buffer[newline + 1 :]
        stripped = head.strip()
        if stripped.startswith("|"):
            self._table.append(head)
            self._buffer = rest
            return True
        if self._table:
            out.extend(table_to_speech(self._table))
            self._table = []
        fence = _FENCE.match(head)
        if fence:
            self._fence = fence.group(1)[:3]
            self._buffer = rest
            return True
        if not stripped or _RULE.match(head):
            self._buffer = rest
            return True
        marker = _HEADING.match(head) or _BULLET.match(head) or _NUMBERED.match(head)
        quote = _QUOTE.match(head)
        cut = marker.end() if marker else quote.end() if quote else 0
        self._buffer = self._buffer[cut:]
        self._in_line = True
        self._line = ""
        return True

    def _complete_sentences(self) -> list[str]:
        """Hand out the finished sentences of the current line, keep the unfinished rest.

        The first piece of a reply may end at a clause (a comma after a few words), or, with no
        punctuation yet, before a phrase ("The sky is blue | because ..."), so that speech starts
        while the rest is still being generated.
        """
        out = []
        while True:
            split_at = None
            for match in SENTENCE_END.finditer(self._line):
                head = self._line[: match.start()]
                if _balanced(head) and not _ends_with_abbreviation(head):
                    split_at = match
                    break
            if split_at is None and self._emitted + len(out) == 0:
                split_at = _first_break(
                    self._line, _CLAUSE_END, FIRST_CLAUSE_MIN_WORDS
                ) or _first_break(self._line, _PHRASE_START, FIRST_PHRASE_MIN_WORDS)
            if split_at is None:
                if len(self._line) <= MAX_PIECE_CHARS:
                    return out
                # No punctuation for a long while (a run-on, a long number): cut at a space.
                cut = self._line.rfind(" ", 0, MAX_PIECE_CHARS)
                cut = cut if cut > 0 else MAX_PIECE_CHARS
                head, self._line = self._line[:cut], self._line[cut:].lstrip()
                if sentence := inline_to_speech(head):
                    out.append(sentence)
                continue
            sentence = inline_to_speech(self._line[: split_at.start()])
            self._line = self._line[split_at.end() :]
            if sentence:
                out.append(sentence)

    def _end_line(self) -> list[str]:
        out = self._complete_sentences()
        rest = inline_to_speech(self._line)
        if rest:
            out.append(_as_sentence(rest))
        self._line = ""
        self._in_line = False
        return out


def to_speech(markdown_text: str) -> str:
    """The whole of a markdown reply as text to speak (sentences joined by spaces)."""
    stream = SpeakableStream()
    sentences = stream.feed(markdown_text) + stream.flush()
    return " ".join(s for s in sentences if s)
