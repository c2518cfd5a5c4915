"""The tool interface: a name, a description, JSON-schema parameters, an async call with a
timeout, and whether it acts on the world (then the user is asked first)."""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError, ToolArgumentsError, ToolError, ToolTimeout

if TYPE_CHECKING:
    from ..config import ToolsConfig
    from ..memory import Store

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns: ``text`` is what the model (or the user) reads; ``data`` the same as
    JSON for scripts. Data, never instructions: nothing in it is executed."""

    text: str
    data: Any = None


@dataclass(frozen=True)
class ToolContext:
    """What built-in tools need: their settings, the store (timers) and whose session it is."""

    config: ToolsConfig
    user_id: str = "default"
    store: Store | None = None
    clock: Callable[[], float] = time.time
    # Called after a timer or reminder is added or cancelled (Reminders.wake), so the engine's
    # wait for the next one due is cut short instead of polling.
    on_reminders_changed: Callable[[], None] | None = None

    def timezone(self) -> ZoneInfo | None:
        """The user's time zone (tools.timezone), or None for the system's local time."""
        name = self.config.timezone
        if not name:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"tools.timezone: unknown time zone {name!r} (use an IANA name, e.g. Europe/Paris)"
            ) from None


class Tool(ABC):
    """One callable tool. Subclasses set the class attributes and write ``run``."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    side_effects: bool = False  # acts on the world: the user confirms each call
    source: str = "builtin"  # builtin, plugin:<entry point>, mcp:<server>
    timeout_s: float | None = None  # None: tools.timeout_s

    def setup_problem(self) -> str | None:
        """Why the tool cannot work as configured (then it is listed but off), or None."""
        return None

    @abstractmethod
    async def run(self, args: dict[str, Any]) -> ToolResult:
        """Do the work; raise a ToolError whose message is the line the user hears."""

    def confirmation(self, args: dict[str, Any]) -> str:
        """The yes/no question asked before a side-effect call ("Send it to Ann?")."""
        shown = ", ".join(f"{k} {v}" for k, v in args.items())
        return f"Shall I run {self.name}" + (f" with {shown}?" if shown else "?")

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    async def call(self, args: dict[str, Any] | str, timeout_s: float) -> ToolResult:
        """Check ``args`` against the parameters, then run with a timeout. Only ToolErrors leave."""
        checked = check_arguments(self, args)
        limit = self.timeout_s or timeout_s
        try:
            return await asyncio.wait_for(self.run(checked), limit)
        except asyncio.TimeoutError:
            raise ToolTimeout(f"{self.name} gave no answer within {limit:g} s") from None
        except ToolError:
            raise
        except Exception as exc:  # a bug or an unexpected failure: one line, the loop goes on
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from None


def check_arguments(tool: Tool, args: dict[str, Any] | str) -> dict[str, Any]:
    """Parse (from the model's JSON text) and check arguments: the required ones are there,
    none is unknown, and each has its JSON type; the schema's other keywords are the tool's."""
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except ValueError:
            raise ToolArgumentsError(f"{tool.name}: the arguments are not valid JSON") from None
    if not isinstance(args, dict):
        raise ToolArgumentsError(f"{tool.name}: the arguments must be a JSON object")
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    missing = [k for k in tool.parameters.get("required", []) if k not in args]
    if missing:
        raise ToolArgumentsError(f"{tool.name}: missing argument {', '.join(missing)}")
    if tool.parameters.get("additionalProperties") is False or tool.source == "builtin":
        unknown = [k for k in args if k not in properties]
        if unknown:
            raise ToolArgumentsError(
                f"{tool.name}: unknown argument {', '.join(unknown)}"
                f" (it takes: {', '.join(properties) or 'none'})"
            )
    for key, value in args.items():
        kind = properties.get(key, {}).get("type")
        allowed = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
        # bool is an int to Python, not to JSON schema
        if allowed and (
            not isinstance(value, allowed) or (kind != "boolean" and isinstance(value, bool))
        ):
            raise ToolArgumentsError(f"{tool.name}: {key} must be a {kind}")
        enum = properties.get(key, {}).get("enum")
        if enum and value not in enum:
            raise ToolArgumentsError(
                f"{tool.name}: {key} must be one of {', '.join(map(str, enum))}"
            )
    return args
