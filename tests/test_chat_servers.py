"""The conversation through OpenAI-compatible servers: the real llama.cpp server and a scripted one
that fails the way servers fail. The user's side is asserted: what they read, what is kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fault_server import MODEL, REPLY, closed_port_url
from servers import fault_server_fixture, llama_server_fixture  # noqa: F401  (fixtures)

TEXT_ONLY = ("--input-mode", "text", "--output-mode", "text")


def stored(home: Path) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(home / "data" / "perslm-voice.db")
    try:
        return db.execute("SELECT role, text, interrupted FROM turns ORDER BY id").fetchall()
    finally:
        db.close()


def server_env(url: str, **extra: str) -> dict[str, str]:
    return {"PERSLM_VOICE_LLM__BASE_URL": url, "PERSLM_VOICE_LLM__MODEL": MODEL, **extra}


def test_converses_through_a_real_llama_cpp_server(run_cli, llama_server, isolated_home):
    result = run_cli(
        "--user", "srv", "--llm", "llamacpp", "--model", "smollm2", *TEXT_ONLY,
        input="Say hello.\n/quit\n", env={"PERSLM_VOICE_LLM__BASE_URL": llama_server.url},
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert f"smollm2 at {llama_server.url}" in out
    assert len(out.split("assistant:", 1)[1].strip()) > 5
    assert [r[0] for r in stored(isolated_home)] == ["user", "assistant"]


def test_server_down_keeps_the_turn_and_the_session(run_cli, isolated_home):
    url = closed_port_url()
    result = run_cli(
        "--user", "srv", "--llm", "ollama", *TEXT_ONLY,
        input="Are you there?\nStill there?\n/quit\n", env=server_env(url),
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0
    assert f"cannot reach the LLM server at {url}" in out and "ollama serve" in out
    assert "Type /retry to ask again." in out and "Traceback" not in out + result.stderr.decode()
    assert [r[:2] for r in stored(isolated_home)] == [
        ("user", "Are you there?"),
        ("user", "Still there?"),
    ]


def test_retry_asks_again_after_a_refused_key(run_cli, fault_server, isolated_home):
    fault_server.enqueue("401")
    result = run_cli(
        "--user", "srv", "--llm", "openai", *TEXT_ONLY, input="Hello?\n/retry\n/quit\n",
        env=server_env(
            fault_server.url,
            OPENAI_API_KEY="sk-test-secret-123",
            PERSLM_VOICE_LLM__API_KEY_ENV="OPENAI_API_KEY",
        ),
    )  # fmt: skip
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "the key in $OPENAI_API_KEY was refused" in out
    assert REPLY.strip() in out  # /retry asked again and the server answered
    assert "sk-test-secret-123" not in out + err
    assert [r[:2] for r in stored(isolated_home)] == [
        ("user", "Hello?"),
        ("assistant", REPLY.strip()),
    ]
    assert len(fault_server.requests) == 2


def test_a_stream_that_dies_keeps_what_was_said(run_cli, fault_server, isolated_home):
    fault_server.enqueue("die")
    result = run_cli(
        "--user", "srv", "--llm", "openai", *TEXT_ONLY, input="Tell me.\n/quit\n",
        env=server_env(fault_server.url),
    )  # fmt: skip
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "[cut off]" in out
    role, text, interrupted = stored(isolated_home)[1]
    assert role == "assistant" and text and REPLY.startswith(text) and interrupted == 1
