"""What the user types: a line made safe, and the /commands of a session."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import TYPE_CHECKING

from ..events import Level, Report
from .timings import timing_rows

if TYPE_CHECKING:
    from .session import Session

HELP = """Commands:
  /help      this list
  /retry     ask again what you said last (after an error)
  /timings   how long each stage of the last turn took
  /quit      end the session (Ctrl+D too)
Ctrl+C stops the reply in progress; twice in a row ends the session."""
QUIT = ("/quit", "/exit", "/bye")


def clean_line(raw: bytes | str) -> tuple[str, bool]:
    """A typed line made safe: decoded (bad UTF-8 replaced), control characters dropped.

    Returns the text and whether anything had to be replaced.
    """
    replaced = False
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
        replaced = "\ufffd" in text
    else:
        text = raw
    text = text.rstrip("\r\n")
    kept = "".join(
        ch if ch == "\t" or not unicodedata.category(ch).startswith("C") else " " for ch in text
    )
    return " ".join(kept.split()), replaced


def command_name(line: str) -> str | None:
    """``/name`` of a command line (lower case), or None for a line to answer."""
    if not line.startswith("/"):
        return None
    return line.split()[0].lower()


async def run_command(session: Session, line: str) -> bool:
    """Run a /command for ``session``; False ends the session."""
    name = command_name(line)
    if name in QUIT:
        return False
    if name in ("/help", "/?"):
        session.emit(Report(text=HELP))
    elif name == "/retry":
        if not await session.turns.retry():
            session.notify("Nothing to retry.", Level.INFO)
    elif name == "/timings":
        last = session.turns.last
        if last is None or not last.marks:
            session.notify("No turn yet.", Level.INFO)
        else:
            session.emit(Report("this turn", rows=tuple(timing_rows(last.marks))))
    else:
        session.notify(f"Unknown command {name}: type /help for the list.")
    return True


async def watch_idle(session: Session) -> None:
    """End the session after ``interaction.timeout`` seconds without a turn (a reply going on is
    activity too); it waits on the session's activity, it does not poll."""
    timeout = session.config.interaction.timeout
    if not timeout:
        return
    while True:
        session.activity.clear()
        try:
            await asyncio.wait_for(session.activity.wait(), timeout)
            continue  # something happened: the wait starts again
        except asyncio.TimeoutError:
            pass
        if session.replying():
            continue
        session.notify(f"No turn for {timeout:g} s: ending the session.", Level.INFO)
        session.stop()
        return
