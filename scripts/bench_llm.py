"""Benchmark: the same conversation through the embedded model and through llama.cpp's
OpenAI-compatible server on loopback, side by side, to measure what HTTP adds.

Both sides run the same GGUF (SmolLM2-135M by default) with the same threads and context, at
temperature 0, in interleaved runs so that load on the machine hits both alike.

    .venv/bin/python scripts/bench_llm.py --runs 10 --max-tokens 32 --threads 2
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from perslm_voice.config import LLMConfig
from perslm_voice.llm.base import LLM, Message
from perslm_voice.llm.llama_cpp import LlamaCppLLM, embedded_model_path
from perslm_voice.llm.openai import OpenAILLM

CONVERSATION = [
    Message("system", "You are a friendly voice assistant. Answer in one or two sentences."),
    Message("user", "Hi, my name is Ana and I take my coffee black."),
    Message("assistant", "Nice to meet you, Ana! Black coffee it is."),
    Message("user", "What should I drink this afternoon?"),
]
TARGET_OVERHEAD_MS = 15.0


def start_server(model: Path, threads: int, n_ctx: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_ctx", str(n_ctx),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)  # still loading the model
    process.kill()
    raise SystemExit("llama_cpp.server did not start within 120 s")


def one_run(llm: LLM) -> tuple[float, float, int]:
    """(first-token latency in ms, tokens/s after the first, pieces) for one answer."""
    started = time.perf_counter()
    first: float | None = None
    pieces = 0
    for _ in llm.stream(CONVERSATION, threading.Event()):
        if first is None:
            first = time.perf_counter()
        pieces += 1
    end = time.perf_counter()
    if first is None:
        raise SystemExit(f"{llm.description} gave an empty answer")
    rate = (pieces - 1) / (end - first) if pieces > 1 and end > first else 0.0
    return (first - started) * 1000, rate, pieces


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured answers per backend")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured answers first")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads, both sides")
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF; default SmolLM2-135M")
    args = parser.parse_args()

    model = args.model or embedded_model_path()
    settings = {"max_tokens": args.max_tokens, "temperature": 0.0, "n_ctx": args.n_ctx}
    embedded = LlamaCppLLM(
        LLMConfig(backend="llama_cpp", model_path=str(model), n_threads=args.threads, **settings)
    )
    embedded.load()
    process, url = start_server(model, args.threads, args.n_ctx)
    server = OpenAILLM(LLMConfig(backend="openai", base_url=url, model="bench", **settings))
    results: dict[str, list[tuple[float, float, int]]] = {"embedded": [], "server": []}
    try:
        for _ in range(args.warmup):
            one_run(embedded)
            one_run(server)
        for _ in range(args.runs):  # interleaved: machine load hits both alike
            results["embedded"].append(one_run(embedded))
            results["server"].append(one_run(server))
    finally:
        server.close()
        embedded.close()
        process.terminate()
        process.wait(timeout=10)

    print(f"model {model.name}, {args.threads} threads, {args.runs} runs, {args.max_tokens} tokens")
    header = (
        f"{'backend':<26} {'first p50 ms':>12} {'first p95 ms':>12}"
        f" {'tok/s p50':>10} {'tok/s p95':>10} {'pieces':>7}"
    )
    print(header)
    print("-" * len(header))
    p50 = {}
    for name, label in (
        ("embedded", "embedded (in-process)"),
        ("server", "llama.cpp server (HTTP)"),
    ):
        first = [r[0] for r in results[name]]
        rate = [r[1] for r in results[name]]
        pieces = statistics.median(r[2] for r in results[name])
        p50[name] = pct(first, 50)
        print(
            f"{label:<26} {pct(first, 50):>12.1f} {pct(first, 95):>12.1f}"
            f" {pct(rate, 50):>10.1f} {pct(rate, 5):>10.1f} {pieces:>7.0f}"
        )
    overhead = p50["server"] - p50["embedded"]
    verdict = "within" if overhead <= TARGET_OVERHEAD_MS else "OVER"
    print(
        f"HTTP overhead on the first token (p50): {overhead:+.1f} ms"
        f" ({verdict} the {TARGET_OVERHEAD_MS:g} ms target)"
    )
    print("(tok/s p95 column: the slowest 5% of runs, i.e. the 5th percentile of the rate)")


if __name__ == "__main__":
    main()
