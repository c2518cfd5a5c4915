"""Benchmark `perslm-voice serve`: N clients at once, each streaming spoken questions at real time
over the WebSocket, as a browser would.

For each LLM (the embedded model, and llama.cpp's server on loopback) and each N it reports:
end of speech -> first audio byte at the client (p50/p95), end of speech -> final transcript,
when the first partial transcript came after speech began, errors and dropped sessions, and the
server's CPU per session (its process time over the run's wall time, from /proc).

python scripts/bench_serve.py                      # 1, 2, 4 clients, both LLMs, 2 turns each
python scripts/bench_serve.py --clients 1,2,4,8 --llm embedded --turns 3
python scripts/bench_serve.py --partials 0         # the same without partial transcripts
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from serve_client import Client, Server, speech_pcm  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a cat have?",
    "Name a color of the sky.",
    "What is two plus two?",
    "Which planet is closest to the sun?",
    "What do bees make?",
    "How many days are in a week?",
    "What is the opposite of hot?",
]
TOKEN = "bench-token-0000"


@dataclass
class Run:
    first_audio_ms: list[float] = field(default_factory=list)
    transcript_ms: list[float] = field(default_factory=list)
    first_partial_ms: list[float] = field(default_factory=list)
    partials: int = 0
    turns: int = 0
    errors: int = 0
    dropped: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


def pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]:.0f}"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_client(url: str, index: int, turns: int, clips: list, run: Run) -> None:
    client = await Client.connect(url, f"bench{index}")
    try:
        for turn in range(turns):
            pcm, speech_s, lead_s = clips[(index + turn) % len(clips)]
            seen = len(client.got.messages)
            sent_at = time.monotonic()
            sender = asyncio.create_task(client.stream(pcm))
            t_start, t_end = sent_at + lead_s, sent_at + lead_s + speech_s
            try:
                done = await client.wait_for("reply_done", timeout=180, after=seen)
            except AssertionError:
                run.dropped += 1
                return
            await sender
            got = client.got
            new = got.messages[seen:]
            run.turns += 1
            partials = [t for t, m in new if m["type"] == "partial_transcript"]
            run.partials += len(partials)
            if partials:
                run.first_partial_ms.append((partials[0] - t_start) * 1000)
            transcript = next((t for t, m in new if m["type"] == "transcript"), None)
            if transcript is not None:
                run.transcript_ms.append((transcript - t_end) * 1000)
            first_audio = got.first_audio_at.get(done["turn"])
            if first_audio is not None:
                run.first_audio_ms.append((first_audio - t_end) * 1000)
            run.errors += sum(1 for _, m in new if m["type"] == "error")
            await asyncio.sleep(1.0)  # the reply has played; the user thinks of the next one
    finally:
        await client.close()


async def clients(url: str, n: int, turns: int, clips: list) -> Run:
    run = Run()
    results = await asyncio.gather(
        *(one_client(url, i, turns, clips, run) for i in range(n)), return_exceptions=True
    )
    run.dropped += sum(1 for r in results if isinstance(r, BaseException))
    for r in results:
        if isinstance(r, BaseException):
            print(f"  a client failed: {type(r).__name__}: {r}", file=sys.stderr)
    return run


def start_llama_server() -> Any:
    """llama.cpp's server on loopback with the embedded model. ``--interrupt_requests false``:
    by default it cuts a streaming reply short when another request comes in, and with several
    sessions every reply would be cut by the next session's."""
    from servers import LlamaServer, free_port

    from perslm_voice.llm.llama_cpp import embedded_model_path

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--interrupt_requests", "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", process)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{server.url}/models", timeout=1):
                return server
        except OSError:
            time.sleep(0.5)  # still loading the model
    process.kill()
    raise SystemExit("llama_cpp.server did not start (pip install 'perslm-voice[server]')")


def make_clips(workdir: Path) -> list:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import say_to_file

    clips = []
    for i, text in enumerate(QUESTIONS):
        wav = say_to_file(text, workdir / f"q{i}.wav")
        lead_s, tail_s = 0.5, 2.5
        pcm = speech_pcm(wav, lead_s=lead_s, tail_s=tail_s)
        speech_s = len(pcm) / 16000 - lead_s - tail_s
        clips.append((pcm, speech_s, lead_s))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4", help="numbers of clients at once")
    parser.add_argument("--llm", choices=["embedded", "llamacpp", "both"], default="both")
    parser.add_argument("--turns", type=int, default=2, help="questions per client")
    parser.add_argument("--partials", type=float, default=0.5, help="speech.partial_interval_s")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]
    llms = ["embedded", "llamacpp"] if args.llm == "both" else [args.llm]
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    clips = make_clips(workdir)
    rows = []
    for llm in llms:
        env = {
            "PERSLM_VOICE_HOME": str(workdir / f"home-{llm}"),
            "PERSLM_VOICE_SPEECH__PARTIAL_INTERVAL_S": str(args.partials),
            # room for the sessions of the last round that are still putting their turns away
            "PERSLM_VOICE_SERVE__MAX_SESSIONS": str(2 * max(counts)),
        }
        extra: list[str] = []
        llama = None
        if llm == "llamacpp":
            llama = start_llama_server()
            env["PERSLM_VOICE_LLM__BASE_URL"] = llama.url
            extra = ["--llm", "llamacpp"]
        server = Server("--token", TOKEN, *extra, env=env)
        try:
            url = f"{server.ws_url}?token={TOKEN}"
            asyncio.run(clients(url, 1, 1, clips[-1:]))  # load the models; not counted
            for n in counts:
                cpu0, wall0 = process_cpu_s(server.proc.pid), time.monotonic()
                run = asyncio.run(clients(url, n, args.turns, clips))
                run.cpu_s = process_cpu_s(server.proc.pid) - cpu0
                run.wall_s = time.monotonic() - wall0
                rows.append((llm, n, run))
                print(f"{llm} x{n}: done ({run.turns} turns)", file=sys.stderr)
        finally:
            server.stop()
            if llama is not None:
                llama.process.terminate()
                with contextlib.suppress(Exception):
                    llama.process.wait(10)
    print(
        f"\nbench_serve: {args.turns} spoken questions per client, real time, partials every"
        f" {args.partials:g} s of speech; {os.cpu_count()} cores\n"
    )
    print(
        "| LLM | clients | turns | end of speech -> first audio p50 / p95 (ms) |"
        " -> transcript p50 (ms) | first partial after speech began p50 (ms) | partials/turn |"
        " errors | dropped | server CPU per session |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for llm, n, run in rows:
        per_session = run.cpu_s / run.wall_s / n * 100 if run.wall_s else 0.0
        print(
            f"| {llm} | {n} | {run.turns} | {pct(run.first_audio_ms, 0.5)} /"
            f" {pct(run.first_audio_ms, 0.95)} | {pct(run.transcript_ms, 0.5)} |"
            f" {pct(run.first_partial_ms, 0.5)} | {run.partials / max(1, run.turns):.1f} |"
            f" {run.errors} | {run.dropped} | {per_session:.0f}% of a core |"
        )
    failed = sum(run.dropped for _, _, run in rows)
    print(f"\n{failed} dropped sessions")


if __name__ == "__main__":
    main()
