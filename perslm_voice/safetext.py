"""Text from the model, the store or the user, made safe to show on a terminal.

Such text is data. Printed as it is, an escape sequence in it would act on the terminal: clear
the screen, move the cursor over earlier lines, change the window title (OSC 0/2), hide a link
behind other words (OSC 8), or, on some terminals, write into the clipboard (OSC 52). Rich markup
in it (``[bold red]x[/]``) would be interpreted instead of shown as typed.

``visible(text)`` keeps the text and turns every control character into a visible escape
(``\\x1b``), so a sequence shows up as what it is and does nothing; newlines and tabs stay
where a layout wants them. ``as_text(text)`` is the same as a Rich ``Text`` (never read as markup),
for tables and ``console.print``. ``json_safe(dumped)`` does the same for a JSON document.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls except tab and newline, DEL, and C1 controls (U+0080-U+009F: U+009B is a one-character
# CSI, U+009D an OSC, on terminals that take 8-bit controls). Also the Unicode bidi overrides and
# isolates, which reorder what is shown without being seen ("Trojan Source", CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_NO_NEWLINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\x9b``,
    ``\\u202e``) instead of acting on the terminal. Newlines and tabs are kept, unless
    ``one_line``: then they are shown too (a table cell, a log line)."""
    pattern = _CONTROL_NO_NEWLINE if one_line else _CONTROL
    return pattern.sub(_escape, text)


def as_text(text: object, *, one_line: bool = False, style: str = "") -> Text:
    """A Rich ``Text`` of ``visible(str(text))``: shown as typed, its brackets never markup."""
    return Text(visible(str(text), one_line=one_line), style=style)


def json_safe(dumped: str) -> str:
    """A JSON document with the characters ``json.dumps(..., ensure_ascii=False)`` leaves raw
    (DEL, C1 controls, bidi overrides) written as ``\\uXXXX`` escapes: the same data, nothing a
    terminal acts on. (C0 controls are always escaped by ``json.dumps``.)"""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)
