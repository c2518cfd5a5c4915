"""Loopback servers that speak the documented REST APIs the tools use: Open-Meteo (forecast and
geocoding), Home Assistant (/api/states, /api/services) and an OpenAI-compatible chat server
that streams scripted tool-call deltas. Each records what it was asked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 with a handler method per request; a context manager."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._dispatch(self, "GET")

            def do_POST(self) -> None:
                owner._dispatch(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        request = {
            "method": method,
            "path": parts.path,
            "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "headers": dict(handler.headers),
            "body": json.loads(raw) if raw else None,
        }
        self.requests.append(request)
        status, body = self.answer(request)
        if isinstance(body, (bytes, bytearray)):
            handler.send_response(status)
            handler.end_headers()
            handler.wfile.write(body)
            return
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, request: dict[str, Any]) -> tuple[int, Any]:
        raise NotImplementedError


class OpenMeteo(_Server):
    """GET /v1/forecast (current + daily, as api.open-meteo.com answers) and GET /v1/search."""

    def __init__(self, rain_percent: int = 80):
        super().__init__()
        self.rain_percent = rain_percent

    def answer(self, request: dict[str, Any]) -> tuple[int, Any]:
        q = request["query"]
        if request["path"] == "/v1/search":
            if q.get("name", "").lower() == "nowhereville":
                return 200, {"generationtime_ms": 0.1}  # Open-Meteo omits results when none
            return 200, {
                "results": [
                    {
                        "name": q["name"].title(),
                        "latitude": 48.85,
                        "longitude": 2.35,
                        "country": "X",
                    }
                ]
            }
        if request["path"] == "/v1/forecast":
            if "latitude" not in q or "longitude" not in q:
                return 400, {"error": True, "reason": "Parameter 'latitude' is missing"}
            return 200, {
                "latitude": float(q["latitude"]),
                "longitude": float(q["longitude"]),
                "current_units": {"temperature_2m": "°C"},
                "current": {
                    "time": "2026-12-03T10:00",
                    "interval": 900,
                    "temperature_2m": 11.6,
                    "weather_code": 61,
                    "wind_speed_10m": 12.0,
                    "precipitation": 0.4,
                },
                "daily": {
                    "time": ["2026-12-03"],
                    "temperature_2m_max": [13.2],
                    "temperature_2m_min": [6.8],
                    "precipitation_probability_max": [self.rain_percent],
                },
            }
        return 404, {"error": True, "reason": "Not Found"}


class HomeAssistant(_Server):
    """Home Assistant's REST API: bearer token, GET /api/states[/id], POST /api/services/d/s."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token
        self.states = {
            "light.living_room": {
                "state": "on",
                "attributes": {"friendly_name": "Living Room Light"},
            },
            "light.kitchen": {"state": "off", "attributes": {"friendly_name": "Kitchen Light"}},
            "sensor.outdoor_temperature": {
                "state": "7.5",
                "attributes": {"friendly_name": "Outdoor Temperature", "unit_of_measurement": "°C"},
            },
        }

    def _state(self, entity: str) -> dict[str, Any]:
        return {"entity_id": entity, **self.states[entity]}

    def answer(self, request: dict[str, Any]) -> tuple[int, Any]:
        if request["headers"].get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Invalid authentication"}
        path = request["path"]
        if path == "/api/states":
            return 200, [self._state(e) for e in self.states]
        if path.startswith("/api/states/"):
            entity = path.rsplit("/", 1)[-1]
            if entity not in self.states:
                return 404, {"message": "Entity not found."}
            return 200, self._state(entity)
        if path.startswith("/api/services/") and request["method"] == "POST":
            domain, service = path.split("/")[3:5]
            entity = (request["body"] or {}).get("entity_id")
            if entity not in self.states:
                return 400, {"message": "Invalid entity"}
            new = {"turn_on": "on", "turn_off": "off"}.get(service)
            if service == "toggle":
                new = "off" if self.states[entity]["state"] == "on" else "on"
            self.states[entity]["state"] = new
            return 200, [self._state(entity)]
        return 404, {"message": "Not found"}


class ToolCallingLLM(_Server):
    """POST /v1/chat/completions with stream: true, answered from a script: each request takes
    the next turn, either text pieces or tool calls streamed as deltas (the name first, then
    the JSON arguments in several pieces, as OpenAI and vLLM send them)."""

    MODEL = "tool-model"

    def __init__(self) -> None:
        super().__init__()
        self.script: list[dict[str, Any]] = []
        self.client_gone = threading.Event()

    def say(self, *pieces: str) -> None:
        self.script.append({"text": list(pieces)})

    def call(self, *calls: tuple[str, dict[str, Any]], before: str = "") -> None:
        self.script.append({"calls": list(calls), "before": before})

    def answer(self, request: dict[str, Any]) -> tuple[int, Any]:
        if request["path"] == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.MODEL, "object": "model"}]}
        return 404, {"error": {"message": "not found"}}

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        if method != "POST":
            return super()._dispatch(handler, method)
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length))
        self.requests.append({"path": handler.path, "body": body})
        turn = self.script.pop(0) if self.script else {"text": ["Okay."]}
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

        def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": self.MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()

        try:
            send({"role": "assistant", "content": ""})
            if "text" in turn:
                for piece in turn["text"]:
                    if piece == "<slow>":
                        for _ in range(200):
                            send({"content": " la"})
                            threading.Event().wait(0.05)
                        continue
                    send({"content": piece})
                send({}, "stop")
            else:
                if turn["before"]:
                    send({"content": turn["before"]})
                for index, (name, args) in enumerate(turn["calls"]):
                    text = json.dumps(args)
                    send(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": f"call_{index}",
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            ]
                        }
                    )
                    for start in range(0, len(text), 5):
                        send(
                            {
                                "tool_calls": [
                                    {
                                        "index": index,
                                        "function": {"arguments": text[start : start + 5]},
                                    }
                                ]
                            }
                        )
                send({}, "tool_calls")
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.client_gone.set()
