"""`perslm-voice doctor`: what works on this machine, one line per check, with the fix."""

from __future__ import annotations

import sys

import click
from rich.text import Text

from ..safetext import as_text
from .common import config_option, console, json_option, load, print_json

MARKS = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


@click.command()
@config_option
@json_option
def doctor(config_file: str | None, as_json: bool) -> None:
    """Check PortAudio, audio devices, each configured model and backend, and the store.

    Exits 0 when nothing failed (warnings allowed), 1 otherwise.
    """
    from .. import paths
    from ..doctor import Check, run_checks

    home = paths.home_problem()
    if home:
        # Every other check reads the configuration from under that folder.
        results = [
            Check("user files", "fail", home, "unset PERSLM_VOICE_HOME or point it at a folder")
        ]
    else:
        results = run_checks(load(config_file))
    failed = any(r.status == "fail" for r in results)
    if as_json:
        print_json({"ok": not failed, "checks": [r.as_dict() for r in results]})
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            line = Text.from_markup(f"{MARKS[r.status]}  {r.name:<{width}}  ")
            line.append_text(as_text(r.detail, one_line=True))
            if r.fix:
                line.append_text(as_text(f"  fix: {r.fix}", one_line=True, style="dim"))
            console.print(line)
    sys.exit(1 if failed else 0)
