"""`perslm-voice stats`: per-turn latency by stage (p50/p95), per user and backend."""

from __future__ import annotations

import click
from rich.table import Table

from ..latency import STAGES, summarize
from .common import COUNT, config_option, console, json_option, print_json, user_option
from .memory import open_store


@click.command()
@user_option
@click.option("--last", type=COUNT, default=None, help="Only the last N replies.")
@config_option
@json_option
def stats(user: str, last: int | None, config_file: str | None, as_json: bool) -> None:
    """How long each stage of the assistant's replies took: speech-to-text, first LLM token,
    first synthesized audio, first audio played, and end of speech to first audio."""
    store = open_store(config_file, readonly=True)
    try:
        turns = [t for t in store.turns(user) if t.role == "assistant" and t.timings]
    finally:
        store.close()
    if last:
        turns = turns[-last:]
    summary = summarize((t.backend, t.timings) for t in turns)
    if as_json:
        print_json({"user": user, **summary})
        return
    if not summary["turns"]:
        console.print(f"No timed replies for {user} yet.")
        return
    for title, stages in [("all backends", summary["stages"]), *summary["by_backend"].items()]:
        table = Table(title=f"{user}: {title}", header_style="bold", box=None)
        table.add_column("stage")
        table.add_column("p50 ms", justify="right")
        table.add_column("p95 ms", justify="right")
        table.add_column("turns", justify="right")
        for stage in STAGES:
            if stage in stages:
                row = stages[stage]
                table.add_row(
                    stage.removesuffix("_ms"),
                    f"{row['p50']:.0f}",
                    f"{row['p95']:.0f}",
                    str(row["n"]),
                )
        console.print(table)
