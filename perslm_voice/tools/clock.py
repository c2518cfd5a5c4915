"""The current time and date, in the user's time zone (tools.timezone, else the system's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .base import Tool, ToolContext, ToolResult


def now(context: ToolContext) -> datetime:
    return datetime.fromtimestamp(context.clock(), context.timezone()).astimezone(
        context.timezone()
    )


def spoken_time(moment: datetime) -> str:
    """ "3:05 PM": what a voice says (no seconds, no leading zero)."""
    return moment.strftime("%I:%M %p").lstrip("0")


class TimeTool(Tool):
    name = "get_time"
    description = "The current time and date where the user is."
    parameters: dict[str, Any] = {"type": "object", "properties": {}}

    def __init__(self, context: ToolContext):
        self.context = context

    async def run(self, args: dict[str, Any]) -> ToolResult:
        moment = now(self.context)
        zone = moment.tzname() or ""
        text = f"It is {spoken_time(moment)} on {moment.strftime('%A, %B')} {moment.day}, {moment.year}"
        return ToolResult(
            text + (f" ({zone})." if zone else "."),
            {"iso": moment.isoformat(timespec="seconds"), "timezone": zone},
        )


def tools(context: ToolContext) -> list[Tool]:
    return [TimeTool(context)]
