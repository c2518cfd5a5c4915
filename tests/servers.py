"""Real servers on loopback for the HTTP LLM backend: llama.cpp's OpenAI-compatible server
serving the embedded SmolLM2 GGUF, and the scripted fault server.

Import the fixtures into a test module: ``from servers import llama_server_fixture, fault_server_fixture``
(registered under the names ``llama_server`` and ``fault_server``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fault_server import FaultServer

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LlamaServer:
    """A running `python -m llama_cpp.server`; ``url`` is its /v1 base URL."""

    url: str
    process: subprocess.Popen[bytes]


def start_llama_server(n_ctx: int = 512, port: int | None = None) -> LlamaServer:
    """Start llama.cpp's server on a free loopback port (or ``port``) and wait until GET
    /v1/models answers.

    A small context window keeps prompts cheap on a small test machine.
    """
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    from perslm_voice.llm.llama_cpp import embedded_model_path

    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(embedded_model_path()),
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1):
                return LlamaServer(url, process)
        except OSError:
            time.sleep(0.2)  # the server is still loading the model
    stop_llama_server(LlamaServer(url, process))
    raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:g} s")


def stop_llama_server(server: LlamaServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module", name="llama_server")
def llama_server_fixture() -> Iterator[LlamaServer]:
    """The real llama.cpp OpenAI-compatible server, one per test module."""
    server = start_llama_server()
    try:
        yield server
    finally:
        stop_llama_server(server)


@pytest.fixture(name="fault_server")
def fault_server_fixture() -> Iterator[FaultServer]:
    """A fresh scripted OpenAI-compatible server for each test."""
    with FaultServer(stall_s=3.0) as server:
        yield server
