"""`perslm-voice tools`: list the tools, run one by hand, allow or forbid one for a user."""

from __future__ import annotations

import asyncio
import json
import sys

import click
from rich.table import Table

from ..errors import ToolError, UsageError
from .common import config_option, console, err_console, json_option, load, print_json, user_option


def _registry(config_file: str | None, user: str, *, readonly: bool, with_mcp: bool = True):
    from ..memory import Store, store_path
    from ..tools.session import session_tools

    config = load(config_file)
    store = (
        Store(store_path(config.memory.path), readonly=readonly) if config.memory.enabled else None
    )
    return store, asyncio.run(session_tools(config, user, store, with_mcp=with_mcp))


@click.group()
def tools() -> None:
    """The tools the assistant may call: built-ins, plugins and MCP servers."""


@tools.command("list")
@user_option
@config_option
@click.option("--no-mcp", is_flag=True, help="Do not start or ask the MCP servers.")
@json_option
def list_tools(user: str, config_file: str | None, no_mcp: bool, as_json: bool) -> None:
    """Every tool, where it comes from, whether it acts on the world and is enabled for USER."""
    store, registry = _registry(config_file, user, readonly=False, with_mcp=not no_mcp)
    try:
        entries = registry.entries()
    finally:
        if store is not None:
            store.close()
    rows = [
        {
            "name": e.tool.name,
            "source": e.tool.source,
            "side_effects": e.tool.side_effects,
            "enabled": e.enabled,
            "why_not": e.why_not or None,
            "description": e.tool.description,
            "parameters": e.tool.parameters,
        }
        for e in entries
    ]
    if as_json:
        print_json({"user": user, "tools": rows, "problems": registry.problems})
        return
    table = Table(header_style="bold", box=None)
    for column in ("tool", "source", "asks first", "enabled", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["source"],
            "yes" if row["side_effects"] else "",
            "yes" if row["enabled"] else f"no: {row['why_not']}",
            row["description"],
        )
    console.print(table)
    for problem in registry.problems:
        err_console.print(f"warning: {problem}", markup=False)


@tools.command("call")
@click.argument("name")
@click.option("--args", "args_json", default="{}", show_default=True, help="The arguments as JSON.")
@click.option("--yes", is_flag=True, help="Do not ask before a tool that acts on the world.")
@user_option
@config_option
@json_option
def call(
    name: str, args_json: str, yes: bool, user: str, config_file: str | None, as_json: bool
) -> None:
    """Run the tool NAME once, as the assistant would (asking first when it acts on the world)."""
    from ..tools.base import check_arguments

    try:
        args = json.loads(args_json)
    except ValueError:
        raise UsageError(
            '--args is not valid JSON (e.g. --args \'{"expression": "2+2"}\')'
        ) from None
    with_mcp = bool(load(config_file).tools.mcp_servers)
    store, registry = _registry(config_file, user, readonly=False, with_mcp=with_mcp)
    try:
        tool = registry.get(name)
        args = check_arguments(tool, args)
        if tool.side_effects and not yes:
            question = tool.confirmation(args)
            err_console.print(f"{question} [y/N] ", end="", markup=False)
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                raise ToolError(f"not confirmed, nothing was done ({question})")
        result = asyncio.run(tool.call(args, registry.context.config.timeout_s))
    finally:
        if store is not None:
            store.close()
    if as_json:
        print_json({"tool": name, "text": result.text, "data": result.data})
    else:
        console.print(result.text, markup=False)


def _permission(name: str, user: str, config_file: str | None, allowed: bool | None) -> None:
    store, registry = _registry(config_file, user, readonly=False, with_mcp=False)
    try:
        known = {e.tool.name for e in registry.entries()}
        if name not in known and load(config_file).tools.mcp_servers == {}:
            raise UsageError(f"no tool called {name!r}; there are: {', '.join(sorted(known))}")
        if store is None:
            raise UsageError("per-user permissions need the memory store (memory.enabled: false)")
        store.set_tool_permission(user, name, allowed)
    finally:
        if store is not None:
            store.close()
    word = {True: "allowed", False: "forbidden", None: "back to the configuration's choice"}
    console.print(f"{name}: {word[allowed]} for {user}.", markup=False)


@tools.command("allow")
@click.argument("name")
@user_option
@config_option
def allow(name: str, user: str, config_file: str | None) -> None:
    """Let USER's assistant use the tool NAME (even if tools.disabled lists it)."""
    _permission(name, user, config_file, True)


@tools.command("forbid")
@click.argument("name")
@user_option
@config_option
def forbid(name: str, user: str, config_file: str | None) -> None:
    """Never let USER's assistant use the tool NAME."""
    _permission(name, user, config_file, False)


@tools.command("reset")
@click.argument("name")
@user_option
@config_option
def reset(name: str, user: str, config_file: str | None) -> None:
    """Forget USER's allow or forbid of NAME: the configuration decides again."""
    _permission(name, user, config_file, None)
