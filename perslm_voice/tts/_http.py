"""Plain HTTP for the cloud TTS backends (standard library only: nothing extra to install)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import BackendUnavailable

USER_AGENT = "perslm-voice"


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes

    def message(self) -> str:
        """The server's error message, from a JSON body when there is one."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.body[:200].decode(errors="replace").strip()
        error = (
            (data.get("error") or data.get("detail") or data) if isinstance(data, dict) else data
        )
        if isinstance(error, dict):
            error = error.get("message") or error.get("msg") or error
        return str(error)[:200]


def request(
    backend: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> Response:
    """One request; a server that cannot be reached is BackendUnavailable, an HTTP error a Response."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"User-Agent": USER_AGENT, **headers}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return Response(resp.status, resp.headers.get("Content-Type", ""), resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.headers.get("Content-Type", ""), exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendUnavailable(
            f"tts backend {backend!r} cannot reach {url.split('?')[0]}: {reason}"
            " (check the network and tts.base_url)"
        ) from None
