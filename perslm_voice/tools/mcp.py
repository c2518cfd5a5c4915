"""Tools of MCP servers (tools.mcp_servers), through the official ``mcp`` SDK: stdio (a program
started for the session) and streamable HTTP (a URL).

Each call opens its own connection (a stdio server is started, asked and stopped): slower than
a kept-open session (about 0.3-1 s per call for a Python server), but a crashed or hung server
never outlives the call. Side effects: every MCP tool asks first unless the server is trusted
(trust_read_only) and the tool says readOnlyHint; MCP's own spec calls annotations hints that
an untrusted server may get wrong.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import BackendUnavailable, ToolError, ToolUnreachable
from .base import Tool, ToolResult

if TYPE_CHECKING:
    from ..config import MCPServerConfig

INSTALL = "pip install 'perslm-voice[mcp]'"
MAX_RESULT_CHARS = 4000  # a tool's text beyond this is cut: it goes into the prompt


def _require() -> None:
    if importlib.util.find_spec("mcp") is None:
        raise BackendUnavailable(f"MCP servers need the mcp package: {INSTALL}")


def stderr_log(name: str) -> Path:
    """Where a stdio server's own error output goes: a file, not the conversation's terminal."""
    return paths.log_dir() / f"mcp-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"


@asynccontextmanager
async def _stdio(name: str, params: Any) -> AsyncIterator[Any]:
    from mcp.client.stdio import stdio_client

    log_file = stderr_log(name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as streams:
            yield streams


def _client(name: str, server: MCPServerConfig) -> Any:
    """An ``mcp.Client`` for the configured server (not yet connected)."""
    _require()
    from mcp import Client, StdioServerParameters

    if server.command:
        env = {k: os.environ[k] for k in server.pass_env if k in os.environ}
        from mcp.client.stdio import get_default_environment

        params = StdioServerParameters(
            command=server.command, args=list(server.args), env={**get_default_environment(), **env}
        )
        return Client(_stdio(name, params), read_timeout_seconds=server.timeout_s)
    if server.url:
        headers = {h: os.environ.get(v, "") for h, v in server.headers_env.items()}
        if headers:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers=headers, timeout=server.timeout_s)
            return Client(
                streamable_http_client(server.url, http_client=http),
                read_timeout_seconds=server.timeout_s,
            )
        return Client(server.url, read_timeout_seconds=server.timeout_s)
    raise ToolError(f"tools.mcp_servers.{name}: set command (stdio) or url (streamable HTTP)")


def _unreachable(name: str, exc: BaseException) -> ToolUnreachable:
    inner = exc
    # anyio's task groups wrap the real failure (Python 3.11+ ExceptionGroup; 3.10 has none)
    while getattr(inner, "exceptions", None):
        inner = inner.exceptions[0]  # type: ignore[attr-defined]
    return ToolUnreachable(f"the MCP server {name!r} failed: {type(inner).__name__}: {inner}")


class MCPTool(Tool):
    """One tool of an MCP server."""

    def __init__(self, server_name: str, server: MCPServerConfig, listed: Any):
        self.server_name = server_name
        self.server = server
        self.remote_name = listed.name
        self.name = listed.name
        self.description = listed.description or ""
        self.parameters = listed.input_schema or {"type": "object", "properties": {}}
        self.source = f"mcp:{server_name}"
        self.timeout_s = server.timeout_s
        hints = listed.annotations
        read_only = bool(hints and hints.read_only_hint)
        self.side_effects = not (server.trust_read_only and read_only)

    async def run(self, args: dict[str, Any]) -> ToolResult:
        try:
            async with _client(self.server_name, self.server) as client:
                result = await client.call_tool(self.remote_name, args)
        except (ToolError, BackendUnavailable):
            raise
        except Exception as exc:
            raise _unreachable(self.server_name, exc) from None
        texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
        text = "\n".join(texts).strip()
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        if result.is_error:
            raise ToolError(
                f"{self.name} (MCP {self.server_name}) failed: {text[:200] or 'no reason given'}"
            )
        return ToolResult(text[:MAX_RESULT_CHARS], result.structured_content)


async def discover(name: str, server: MCPServerConfig) -> list[Tool]:
    """List the server's tools; ToolUnreachable when it cannot be started or asked."""
    try:
        async with _client(name, server) as client:
            listed = await client.list_tools()
    except (ToolError, BackendUnavailable):
        raise
    except Exception as exc:
        raise _unreachable(name, exc) from None
    return [MCPTool(name, server, t) for t in listed.tools]
