"""Every tool in one place: the built-ins, Python plugins (entry point group
``perslm_voice.tools``, each a ``factory(context) -> list[Tool]``, the same shape the built-ins
have) and the tools of the configured MCP servers; and which of them a user may use."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import PerslmVoiceError, ToolForbidden, ToolNotFound
from .base import Tool, ToolContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "perslm_voice.tools"
# name -> "module:factory"; a module is imported only when its tools are loaded.
BUILTINS = {
    "clock": "perslm_voice.tools.clock:tools",
    "calculator": "perslm_voice.tools.calculator:tools",
    "timers": "perslm_voice.tools.timers:tools",
    "weather": "perslm_voice.tools.weather:tools",
    "calendar": "perslm_voice.tools.calendars:tools",
    "home_assistant": "perslm_voice.tools.home_assistant:tools",
    "email": "perslm_voice.tools.smtp_email:tools",
}
Factory = Callable[[ToolContext], list[Tool]]


@dataclass(frozen=True)
class Entry:
    """A registered tool and whether this user may use it, with the reason when not."""

    tool: Tool
    enabled: bool
    why_not: str = ""


def _load(target: str) -> Factory:
    module, _, attr = target.partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    return factory


class ToolRegistry:
    """The tools of a session, by name, with the user's permissions applied."""

    def __init__(
        self, context: ToolContext, tools: Iterable[Tool] = (), problems: Iterable[str] = ()
    ):
        self.context = context
        self._tools: dict[str, Tool] = {}
        self.problems = list(problems)  # sources that could not load, one line each
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            self.problems.append(
                f"tool {tool.name!r} of {tool.source} is ignored: {self._tools[tool.name].source}"
                " has one of that name"
            )
            return
        self._tools[tool.name] = tool

    def entries(self) -> list[Entry]:
        """Every tool with whether it is enabled for the context's user."""
        config = self.context.config
        allowed = {}
        if self.context.store is not None:
            allowed = self.context.store.tool_permissions(self.context.user_id)
        out = []
        for tool in self._tools.values():
            if not config.enabled:
                out.append(Entry(tool, False, "tools.enabled is false"))
            elif problem := tool.setup_problem():
                out.append(Entry(tool, False, problem))
            elif tool.name in allowed:
                ok = allowed[tool.name]
                out.append(
                    Entry(tool, ok, "" if ok else f"forbidden in {self.context.user_id}'s profile")
                )
            elif tool.name in config.disabled:
                out.append(Entry(tool, False, "listed in tools.disabled"))
            else:
                out.append(Entry(tool, True))
        return out

    def enabled(self) -> list[Tool]:
        return [e.tool for e in self.entries() if e.enabled]

    def get(self, name: str) -> Tool:
        """The tool if this user may use it; ToolNotFound / ToolForbidden say why not."""
        for entry in self.entries():
            if entry.tool.name == name:
                if not entry.enabled:
                    raise ToolForbidden(f"the tool {name} is off: {entry.why_not}")
                return entry.tool
        names = ", ".join(sorted(self._tools)) or "none"
        raise ToolNotFound(f"no tool called {name!r}; there are: {names}")


def builtin_tools(context: ToolContext) -> list[Tool]:
    return [tool for target in BUILTINS.values() for tool in _load(target)(context)]


def plugin_tools(context: ToolContext) -> tuple[list[Tool], list[str]]:
    """Tools from installed plugins; a plugin that fails is one problem line, not a crash."""
    tools: list[Tool] = []
    problems: list[str] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            for tool in point.load()(context):
                tool.source = f"plugin:{point.name}"
                tools.append(tool)
        except Exception as exc:  # someone else's code: report it, keep the others
            problems.append(
                f"tool plugin {point.name!r} failed to load: {type(exc).__name__}: {exc}"
            )
    return tools, problems


async def load_registry(context: ToolContext, *, with_mcp: bool = True) -> ToolRegistry:
    """The built-ins, the plugins and (``with_mcp``) each configured MCP server's tools; a
    server that cannot be reached is a line in ``problems`` and its tools are missing."""
    plugins, problems = plugin_tools(context)
    registry = ToolRegistry(context, builtin_tools(context) + plugins, problems)
    if with_mcp:
        from . import mcp

        for name, server in context.config.mcp_servers.items():
            try:
                for tool in await mcp.discover(name, server):
                    registry.add(tool)
            except PerslmVoiceError as exc:
                log.info("tools: %s", exc)
                registry.problems.append(str(exc))
    return registry
