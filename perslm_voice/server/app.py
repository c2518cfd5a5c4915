"""The ASGI app of ``perslm-voice serve``: the browser client at ``/``, the WebSocket at ``/ws``,
``/healthz``, and the connected user's memory under ``/api/memory``.

The models are loaded once, when the app starts, and shared by every connection's session (the
embedded llama.cpp model answers one reply at a time: the others wait their turn on its lock;
an LLM server answers them at once). Every request but the page and ``/healthz`` carries the
token (``?token=`` or ``Authorization: Bearer``); a WebSocket without it is refused at the
upgrade (403), before a session exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .. import __version__
from ..config import Config
from ..errors import StoreError
from ..realtime_loop import Models
from .protocol import MEMORY_COMMANDS, PROTOCOL_VERSION, Memory

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PARTIAL_INTERVAL_S = 0.5  # speech.partial_interval_s when it is null


@dataclass
class ServerState:
    """What the connections share: the configuration, the models, the limits' counters."""

    config: Config
    token: str | None  # None: no authentication (--no-auth, loopback only)
    models: Models = field(default_factory=Models)
    sessions: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def partial_interval_s(self) -> float:
        interval = self.config.speech.partial_interval_s
        return DEFAULT_PARTIAL_INTERVAL_S if interval is None else interval

    def authorize(self, conn: HTTPConnection) -> tuple[bool, str | None]:
        """(allowed, the user the token is tied to, or None for any user)."""
        given = conn.query_params.get("token")
        header = conn.headers.get("authorization", "")
        if not given and header.lower().startswith("bearer "):
            given = header[7:].strip()
        if self.token is None:
            return True, None
        if not given:
            return False, None
        for token, user in self.config.serve.tokens.items():
            if hmac.compare_digest(given.encode(), token.encode()):
                return True, user
        return hmac.compare_digest(given.encode(), self.token.encode()), None

    def origin_allowed(self, conn: HTTPConnection) -> bool:
        """A browser page from another site may not use the user's token (cross-site WebSocket
        hijacking): its Origin must be this server's or one of serve.allowed_origins."""
        origin = conn.headers.get("origin")
        if origin is None:  # not a browser: the token is the whole check
            return True
        allowed = self.config.serve.allowed_origins
        host = conn.headers.get("host", "")
        return (
            "*" in allowed or origin in allowed or origin in (f"http://{host}", f"https://{host}")
        )


def create_app(config: Config, token: str | None) -> Starlette:
    """The app; ``token`` None turns authentication off (only ever on loopback)."""
    state = ServerState(config, token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.models = Models.load(config, hearing=True, speaking=True)
        for problem in state.models.problems:
            log.warning("%s", problem.text)
        try:
            yield
        finally:
            await asyncio.to_thread(_close_models, state.models)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        models = state.models

        def status(ready: Any) -> str:
            if ready is None:
                return "none"
            if not ready.done():
                return "loading"
            return "ready" if not ready.cancelled() and ready.exception() is None else "failed"

        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "sessions": state.sessions,
                "max_sessions": config.serve.max_sessions,
                "models": {
                    "llm": status(models.llm_ready),
                    "stt": status(models.stt_ready),
                    "tts": status(models.tts_ready),
                },
                "refused": dict(state.counters),
            }
        )

    async def memory(request: Request) -> Response:
        allowed, bound = state.authorize(request)
        if not allowed:
            return JSONResponse({"error": "a valid token is needed (?token= or Bearer)"}, 401)
        user = bound or request.query_params.get("user")
        if not user or (bound and request.query_params.get("user") not in (None, bound)):
            message = "this token is not for that user" if user else "give ?user=NAME"
            return JSONResponse({"error": message}, 403 if user else 400)
        command = request.path_params["command"]
        if command not in MEMORY_COMMANDS:
            return JSONResponse(
                {"error": f"no such command: use {', '.join(MEMORY_COMMANDS)}"}, 404
            )
        if command == "forget" and request.method != "POST":
            return JSONResponse({"error": "forget is a POST"}, 405)
        body: dict[str, Any] = {}
        if request.method == "POST":
            with contextlib.suppress(ValueError):
                body = await request.json()
        memory_message = Memory(
            command,
            everything=bool(body.get("everything") is True),
            fact_id=body.get("fact_id") if isinstance(body.get("fact_id"), int) else None,
        )
        from ..memory import Store, default_store_path
        from .memory import memory_command

        def run() -> dict[str, Any]:
            if not config.memory.enabled:
                return memory_command(None, user, memory_message)
            path = Path(config.memory.path).expanduser() if config.memory.path else None
            try:
                with Store(path or default_store_path(), readonly=command != "forget") as store:
                    return memory_command(store, user, memory_message)
            except StoreError as exc:
                return {"type": "memory", "command": command, "user": user, "error": str(exc)}

        return JSONResponse(await asyncio.to_thread(run))

    async def ws_endpoint(websocket: WebSocket) -> None:
        allowed, bound = state.authorize(websocket)
        if not allowed or not state.origin_allowed(websocket):
            state.counters["unauthorized"] = state.counters.get("unauthorized", 0) + 1
            await websocket.close(code=1008)  # before accept: the upgrade is answered 403
            return
        await websocket.accept()
        if state.sessions >= config.serve.max_sessions:
            state.counters["busy"] = state.counters.get("busy", 0) + 1
            await websocket.send_json(
                {
                    "type": "error",
                    "code": "busy",
                    "message": f"the server has {config.serve.max_sessions} sessions already"
                    " (serve.max_sessions): try again later",
                }
            )
            await websocket.close(code=1013)
            return
        from .connection import Connection

        state.sessions += 1
        try:
            await Connection(websocket, state, bound).run()
        finally:
            state.sessions -= 1

    routes = [
        Route("/", page),
        Route("/healthz", healthz),
        Route("/api/memory/{command:str}", memory, methods=["GET", "POST"]),
        WebSocketRoute("/ws", ws_endpoint),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.server = state
    return app


def _close_models(models: Models) -> None:
    for model in (models.llm, models.stt, models.tts):
        close = getattr(model, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
