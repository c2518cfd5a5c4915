"""Lights and other devices through Home Assistant's REST API (URL from tools.home_assistant.url,
a long-lived token from the variable named by token_env; the token is sent, never shown)."""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import ToolError
from . import _http
from .base import Tool, ToolContext, ToolResult

SERVICE = "Home Assistant"
_ACTIONS = {"on": "turn_on", "off": "turn_off", "toggle": "toggle"}
_FILLER = re.compile(r"\b(the|my|a|please)\b")


def _words(name: str) -> set[str]:
    """'the Living Room Lights' -> {'living', 'room', 'light'}: how a spoken name is compared."""
    words = re.findall(r"[a-z0-9]+", _FILLER.sub(" ", name.lower().replace("_", " ")))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


class _HomeAssistant:
    def __init__(self, context: ToolContext):
        self.settings = context.config.home_assistant

    def _headers(self) -> dict[str, str]:
        if not self.settings.url:
            raise ToolError("Home Assistant is not set up: set tools.home_assistant.url")
        token = os.environ.get(self.settings.token_env, "").strip()
        if not token:
            raise ToolError(
                f"Home Assistant needs a token: export {self.settings.token_env}=<long-lived token>"
            )
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = self._headers()
        url = (self.settings.url or "").rstrip("/") + path
        resp = await _http.request(SERVICE, method, url, headers=headers, json_body=body)
        if resp.status in (401, 403):
            raise ToolError(f"{SERVICE} refused the token in ${self.settings.token_env}")
        if resp.status == 404:
            raise ToolError(f"{SERVICE} has no {path.rsplit('/', 1)[-1]}")
        if resp.status >= 400:
            raise ToolError(f"{SERVICE} failed ({resp.status})")
        return resp.json(SERVICE)

    async def find(self, target: str) -> dict[str, Any]:
        """The entity a spoken name or an entity id means; an error lists close names."""
        states = await self.call("GET", "/api/states")
        if not isinstance(states, list):
            raise ToolError(f"{SERVICE} answered /api/states without a list")
        for state in states:
            if state.get("entity_id") == target:
                return state
        wanted = _words(target)
        scored = []
        for state in states:
            name = state.get("attributes", {}).get("friendly_name") or state.get("entity_id", "")
            have = _words(name) | _words(state.get("entity_id", "").split(".", 1)[-1])
            common = len(wanted & have)
            if common:
                scored.append((common / len(wanted | _words(name)), state))
        if not scored:
            raise ToolError(f"{SERVICE} has no device called {target!r}")
        scored.sort(key=lambda s: -s[0])
        return scored[0][1]


def _name(state: dict[str, Any]) -> str:
    return str(state.get("attributes", {}).get("friendly_name") or state.get("entity_id"))


def _ha_problem(home: _HomeAssistant) -> str | None:
    if not home.settings.url:
        return "not set up: set tools.home_assistant.url"
    return None


class ControlDeviceTool(Tool):
    name = "control_device"
    description = "Turn a light, switch or other Home Assistant device on or off, or toggle it."
    side_effects = True
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "target": {
                "type": "string",
                "description": "the device's name, e.g. 'living room lights'",
            },
            "action": {"type": "string", "enum": ["on", "off", "toggle"]},
            "brightness_percent": {"type": "integer", "description": "lights only, 1-100"},
        },
        "required": ["target", "action"],
    }

    def __init__(self, context: ToolContext):
        self.home = _HomeAssistant(context)

    def setup_problem(self) -> str | None:
        return _ha_problem(self.home)

    def confirmation(self, args: dict[str, Any]) -> str:
        verb = {"on": "Turn on", "off": "Turn off", "toggle": "Toggle"}.get(
            args.get("action"), "Switch"
        )
        return f"{verb} the {args.get('target', 'device')}?".replace("the the ", "the ")

    async def run(self, args: dict[str, Any]) -> ToolResult:
        state = await self.home.find(args["target"])
        entity = str(state["entity_id"])
        domain = entity.split(".", 1)[0]
        body: dict[str, Any] = {"entity_id": entity}
        if (
            args.get("brightness_percent") is not None
            and domain == "light"
            and args["action"] == "on"
        ):
            body["brightness_pct"] = max(1, min(100, int(args["brightness_percent"])))
        await self.home.call("POST", f"/api/services/{domain}/{_ACTIONS[args['action']]}", body)
        done = {"on": "on", "off": "off", "toggle": "toggled"}[args["action"]]
        word = "Toggled" if done == "toggled" else f"Turned {done}"
        return ToolResult(
            f"{word} {_name(state)}.", {"entity_id": entity, "action": args["action"]}
        )


class DeviceStateTool(Tool):
    name = "get_device_state"
    description = "Whether a Home Assistant device is on or off, or a sensor's reading."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"target": {"type": "string", "description": "the device's name"}},
        "required": ["target"],
    }

    def __init__(self, context: ToolContext):
        self.home = _HomeAssistant(context)

    def setup_problem(self) -> str | None:
        return _ha_problem(self.home)

    async def run(self, args: dict[str, Any]) -> ToolResult:
        state = await self.home.find(args["target"])
        fresh = await self.home.call("GET", f"/api/states/{state['entity_id']}")
        unit = fresh.get("attributes", {}).get("unit_of_measurement", "")
        value = f"{fresh.get('state')}{' ' + unit if unit else ''}"
        return ToolResult(
            f"{_name(fresh)} is {value}.",
            {"entity_id": fresh.get("entity_id"), "state": fresh.get("state")},
        )


def tools(context: ToolContext) -> list[Tool]:
    return [ControlDeviceTool(context), DeviceStateTool(context)]
