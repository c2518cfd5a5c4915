"""MCP servers as tool sources, against real MCP servers written here with the official SDK:
one over stdio (started by the client), one over streamable HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("mcp")

from servers import free_port  # noqa: E402

from perslm_voice.config import ToolsConfig  # noqa: E402
from perslm_voice.errors import ToolError, ToolUnreachable  # noqa: E402
from perslm_voice.tools import ToolContext, load_registry  # noqa: E402
from perslm_voice.tools.mcp import stderr_log  # noqa: E402

SERVER = '''
import os, sys
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("notes")
NOTES = {"shopping": "milk, bread"}


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_note(title: str) -> str:
    """Read one of the user's notes."""
    return NOTES.get(title, "no such note")


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_note(title: str) -> str:
    """Delete a note."""
    NOTES.pop(title, None)
    return f"deleted {title}"


@server.tool()
def secret_seen() -> str:
    """Whether the server was given NOTES_TOKEN."""
    return "token: " + ("yes" if os.environ.get("NOTES_TOKEN") else "no")


@server.tool()
def broken() -> str:
    """Always fails."""
    print("broken was called", file=sys.stderr)
    raise ToolError("the notes disk is full")


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(os.environ["PORT"]))
    else:
        server.run()
'''


@pytest.fixture
def server_file(tmp_path):
    path = tmp_path / "notes_server.py"
    path.write_text(SERVER)
    return path


def load(servers: dict) -> object:
    return asyncio.run(load_registry(ToolContext(ToolsConfig(mcp_servers=servers)), with_mcp=True))


def test_stdio_server_tools_are_listed_and_called(server_file, monkeypatch):
    monkeypatch.setenv("NOTES_TOKEN", "tok-123")
    stdio = {"command": sys.executable, "args": [str(server_file)], "pass_env": ["NOTES_TOKEN"]}
    reg = load({"notes": stdio})
    assert reg.problems == []
    tools = {e.tool.name: e.tool for e in reg.entries() if e.tool.source == "mcp:notes"}
    assert set(tools) == {"read_note", "delete_note", "secret_seen", "broken"}
    assert tools["read_note"].description == "Read one of the user's notes."
    assert tools["read_note"].parameters["required"] == ["title"]
    # Untrusted by default: even a tool that says it only reads asks first.
    assert tools["read_note"].side_effects and tools["delete_note"].side_effects
    result = asyncio.run(tools["read_note"].call({"title": "shopping"}, 20))
    assert result.text == "milk, bread"
    assert asyncio.run(tools["secret_seen"].call({}, 20)).text == "token: yes"
    with pytest.raises(ToolError, match="broken \\(MCP notes\\) failed: .*the notes disk is full"):
        asyncio.run(tools["broken"].call({}, 20))
    # the server's own stderr went to a log file, not into the conversation's terminal
    assert "broken was called" in stderr_log("notes").read_text()


def test_a_trusted_server_s_read_only_tools_run_without_asking(server_file):
    stdio = {"command": sys.executable, "args": [str(server_file)], "trust_read_only": True}
    tools = {e.tool.name: e.tool for e in load({"notes": stdio}).entries()}
    assert not tools["read_note"].side_effects
    assert tools["delete_note"].side_effects  # no read-only hint: still asks


def test_a_server_that_cannot_start_is_one_problem_line_and_the_rest_loads(tmp_path):
    reg = load({"ghost": {"command": str(tmp_path / "no-such-program")}})
    assert len(reg.problems) == 1
    assert reg.problems[0].startswith("the MCP server 'ghost' failed:")
    assert "get_time" in {t.name for t in reg.enabled()}


def test_streamable_http_server(server_file):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(server_file), "http"],
        env={**__import__("os").environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        import socket

        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        reg = load({"notes": {"url": url}})
        assert reg.problems == []
        tool = reg.get("read_note")
        assert tool.source == "mcp:notes"
        assert asyncio.run(tool.call({"title": "shopping"}, 20)).text == "milk, bread"
    finally:
        proc.terminate()
        proc.wait(10)
    with pytest.raises(ToolUnreachable, match="the MCP server 'notes' failed"):
        asyncio.run(tool.call({"title": "shopping"}, 20))


def test_tools_list_cli_shows_mcp_tools(server_file, tmp_path, run_cli):
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps(
            {
                "tools": {
                    "mcp_servers": {
                        "notes": {"command": sys.executable, "args": [str(server_file)]}
                    }
                }
            }
        )
    )
    done = run_cli("tools", "list", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr.decode()
    rows = {r["name"]: r for r in json.loads(done.stdout)["tools"]}
    assert rows["delete_note"]["source"] == "mcp:notes" and rows["delete_note"]["side_effects"]
    called = run_cli(
        "tools",
        "call",
        "read_note",
        "--args",
        '{"title": "shopping"}',
        "--yes",
        "--config",
        str(config),
    )
    assert called.returncode == 0, called.stderr.decode()
    assert called.stdout.decode().strip() == "milk, bread"
