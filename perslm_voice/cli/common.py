"""What every command shares: options, configuration loading, consoles, JSON output."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from rich.console import Console

from ..config import Config, load_config
from ..safetext import json_safe

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Ids and counts go to SQLite, whose integers are 64-bit: a larger one is a usage error (exit 2)
# named with its range, not an OverflowError deep in a query.
SQLITE_INT_MAX = 2**63 - 1
ROW_ID = click.IntRange(1, SQLITE_INT_MAX)
COUNT = click.IntRange(1, SQLITE_INT_MAX)


def default_user() -> str:
    name = os.environ.get("PERSLM_VOICE_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "default"


def check_user(value: str) -> str:
    """A user id: letters, digits, '.', '_' and '-' (it names a profile, never a path)."""
    if not USER_NAME.match(value or ""):
        raise click.BadParameter(
            f"{value!r} is not a valid user name: use 1-64 letters, digits, '.', '_' or '-'",
            param_hint="'--user'",
        )
    return value


def user_option(fn: F) -> F:
    return click.option(
        "--user",
        "-u",
        default=default_user,
        show_default="$PERSLM_VOICE_USER, else your login name",
        callback=lambda ctx, param, value: check_user(value),
        help="Whose profile and memory to use.",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(fn)


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=str),
        default=None,
        help="A YAML file layered over the defaults and your user config.",
    )(fn)


def load(config_file: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """The effective configuration; ConfigError (exit 2) lists every problem."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return load_config(config_file, given).config


def print_json(data: Any) -> None:
    """JSON on stdout, unstyled, for scripts (the raw C1 controls and bidi overrides that
    json.dumps leaves in strings written as \\u escapes: the same data, safe on a terminal)."""
    dumped = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(json_safe(dumped) + "\n")
    sys.stdout.flush()
