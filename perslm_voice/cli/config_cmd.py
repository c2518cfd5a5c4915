"""`perslm-voice config show`: the effective configuration and where each value came from."""

from __future__ import annotations

import click
from rich.table import Table

from ..config import effective_items, load_config
from ..safetext import as_text
from .common import config_option, console, json_option, print_json


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@config_option
@json_option
def show(config_file: str | None, as_json: bool) -> None:
    """Print every setting, its value and the layer it came from.

    Layers, lowest first: default, your user config file, --config FILE, environment variables
    PERSLM_VOICE_<SECTION>__<KEY>, command-line flags.
    """
    loaded = load_config(config_file)
    rows = effective_items(loaded)
    if as_json:
        print_json({key: {"value": value, "source": source} for key, value, source in rows})
        return
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("key")
    table.add_column("value")
    table.add_column("source", style="dim")
    for key, value, source in rows:
        table.add_row(key, as_text("null" if value is None else value), as_text(source))
    console.print(table)
