"""A small OpenAI-compatible chat server on loopback whose answers are scripted, to inject faults.

It speaks the real wire format (``POST /v1/chat/completions`` with ``stream: true`` answered by
Server-Sent Events ``data: {...}`` and ``data: [DONE]``, ``GET /v1/models``), so the real
``openai`` client and ``OpenAILLM`` run unchanged against it. Each request takes the next mode
from a queue (``enqueue``); with the queue empty it answers normally.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY_PIECES = ["Hello", " there", ",", " friend", "."]
REPLY = "".join(REPLY_PIECES)
MODEL = "tiny-model"

# Modes: ok, 500, 401, 403, 429 (Retry-After: 1), stall (headers, then nothing for stall_s),
# die (two pieces, then the connection is cut), context (400 context_length_exceeded),
# slow (a piece every 0.1 s for a long answer; notices when the client hangs up), cut (two
# pieces, then a clean end of stream with no finish_reason and no [DONE]), endless (a word per
# chunk, as fast as it goes, until the client hangs up: a server that ignores max_tokens), flood
# (chunks of 10,000 characters until the client hangs up), html (200 with a web page), garbage
# (200 with an event stream whose data is not JSON), whole (the reply as one JSON completion, as
# a server that ignores stream=true sends it), json (200 with JSON that is no completion).
MODES = {
    "ok", "500", "401", "403", "429", "stall", "die", "context", "slow", "cut",
    "endless", "flood", "html", "garbage", "whole", "json",
}  # fmt: skip
FLOOD_CHARS = 10_000
PAGE = (
    "<html><body><h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is"
    " successfully installed and working. Further configuration is required.</p>\n"
    + "<p>For online documentation and support please refer to the manual.</p>\n" * 40
    + "</body></html>"
)


class FaultServer:
    """The scripted server; ``url`` is its ``/v1`` base URL. Use as a context manager."""

    def __init__(
        self,
        models: list[str] | None = None,
        stall_s: float = 3.0,
        api_key: str | None = None,
        models_page: bool = False,
    ):
        self.models = models or [MODEL]
        self.stall_s = stall_s
        self.api_key = api_key  # when set, a request without "Bearer <api_key>" gets a 401
        self.models_page = models_page  # GET /v1/models answers 200 with a web page
        self.requests: list[dict[str, Any]] = []  # the JSON bodies of chat requests, in order
        self.headers: list[dict[str, str]] = []
        self.client_gone = threading.Event()  # set when a client hung up on a `slow` stream
        self.pieces_sent = 0
        self._modes: deque[str] = deque()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def enqueue(self, *modes: str) -> None:
        unknown = set(modes) - MODES
        assert not unknown, f"unknown modes {unknown}"
        with self._lock:
            self._modes.extend(modes)

    def next_mode(self) -> str:
        with self._lock:
            return self._modes.popleft() if self._modes else "ok"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    """Clients hanging up (on purpose, in these tests) are not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the assertions
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        self._json(status, body, headers)

    def _page(self) -> None:
        data = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _key_refused(self) -> bool:
        key = self.owner.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return False
        self._error(401, "Incorrect API key provided", "invalid_api_key")
        return True

    def do_GET(self) -> None:
        if self._key_refused():
            return
        if self.owner.models_page:
            self._page()
        elif self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "fault"} for m in self.owner.models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        owner = self.owner
        owner.requests.append(body)
        owner.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self._key_refused():
            return
        mode = owner.next_mode()
        if mode == "html":
            self._page()
        elif mode == "json":
            self._json(200, {"status": "ok", "hint": "this is a health check"})
        elif mode == "whole":
            message = {"role": "assistant", "content": REPLY}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self._json(200, {"object": "chat.completion", "model": MODEL, "choices": [choice]})
        elif mode == "401":
            self._error(401, "Incorrect API key provided", "invalid_api_key")
        elif mode == "403":
            self._error(403, "This key may not use this model", "forbidden")
        elif mode == "500":
            self._error(500, "internal failure", "server_error")
        elif mode == "429":
            self._error(429, "Rate limit reached", "rate_limit_exceeded", **{"Retry-After": "1"})
        elif mode == "context":
            self._error(
                400,
                "This model's maximum context length is 2048 tokens. However, you requested "
                "3037 tokens. Please reduce the length of the messages or completion.",
                "context_length_exceeded",
            )
        elif body.get("model") not in owner.models:
            self._error(404, f"The model `{body.get('model')}` does not exist", "model_not_found")
        else:
            self._stream(mode)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _send(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, mode: str) -> None:
        owner = self.owner
        self._start_stream()
        if mode == "stall":
            owner._stopping.wait(owner.stall_s)
        pieces: Iterable[str] = REPLY_PIECES
        if mode == "slow":
            pieces = [f" word{i}" for i in range(300)]
        elif mode == "endless":
            pieces = (f" word{i}" for i in itertools.count())
        elif mode == "flood":
            pieces = itertools.repeat("la " * (FLOOD_CHARS // 3))
        try:
            if mode == "garbage":
                self._send(b"data: this is not json\n\n")
                self._send(b"")
                return
            for index, piece in enumerate(pieces):
                if mode in ("die", "cut") and index == 2:
                    break
                self._send(_chunk(piece))
                owner.pieces_sent += 1
                if mode == "slow":
                    time.sleep(0.1)
            if mode == "die":
                # Cut the connection inside the chunked body: the client sees a protocol error.
                self.wfile.write(b'40\r\ndata: {"trunc')
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if mode == "cut":
                self._send(b"")  # a clean end of the body, without finish_reason or [DONE]
                return
            self._send(_chunk(None, "stop"))
            self._send(b"data: [DONE]\n\n")
            self._send(b"")
        except (BrokenPipeError, ConnectionResetError):
            owner.client_gone.set()
            self.close_connection = True
