"""Plain HTTP for the tools (standard library, run in a thread): one request, typed failures
whose message names the service and never a token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError, ToolUnreachable

USER_AGENT = "perslm-voice"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self, service: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise ToolError(f"{service} answered with something that is not JSON") from None


def _request(
    service: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout_s: float,
) -> Response:
    request = urllib.request.Request(
        url, data=body, headers={"User-Agent": USER_AGENT, **headers}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return Response(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ToolUnreachable(f"cannot reach {service} at {_origin(url)}: {reason}") from None


async def request(
    service: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    timeout_s: float = 10.0,
) -> Response:
    """One HTTP request off the event loop; ToolUnreachable when the server cannot be reached."""
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    all_headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    return await asyncio.to_thread(_request, service, method, url, all_headers, data, timeout_s)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
