"""Per-turn timings: the observer that stores them for ``stats``, and the table ``/timings`` shows.

Marks are ``time.monotonic()`` seconds keyed by stage (``speech_end``, ``transcript_ready``,
``typed``, ``first_token``, ``first_audio_synthesized``, ``first_audio_played``, ...); the stages
they make are defined once, in perslm_voice/latency.py.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import StoreError
from ..events import TurnTimings

log = logging.getLogger(__name__)

START_MARKS = ("speech_end", "typed")  # what a turn's timings count from


def timing_rows(marks: dict[str, float]) -> list[tuple[str, str]]:
    """Each mark as (stage, ms since the user finished: end of speech, or the typed line)."""
    start = next((marks[m] for m in START_MARKS if m in marks), min(marks.values(), default=0.0))
    return [
        (stage.replace("_", " "), f"{(t - start) * 1000:.0f}")
        for stage, t in sorted(marks.items(), key=lambda kv: kv[1])
    ]


def attach(session: Any) -> None:
    """Store each finished turn's timings with its stored reply, where ``stats`` reads them."""

    def store_timings(event: TurnTimings) -> None:
        if event.stored_turn is None or not session.store.writable:
            return

        def write(store: Any) -> None:
            store.set_turn_timings(event.stored_turn, event.marks, event.backend)

        async def run() -> None:
            try:
                await session.store.run(write)
            except StoreError as exc:
                log.warning("could not store this turn's timings: %s", exc)

        session.spawn(run(), "store timings", keep=True)

    session.subscribe(store_timings, TurnTimings)
