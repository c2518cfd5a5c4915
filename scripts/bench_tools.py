"""Benchmark: does each backend pick the right tool, with the right arguments, for ~60 things
people say (a third need no tool)? And what a tool call adds to end of speech -> first words.

Pickers: the router alone (what the embedded model gets), the embedded SmolLM2-135M asked to
answer with a JSON tool call (the embedded model alone), and with --server llama.cpp's
OpenAI-compatible server on loopback offering the tools natively (chat format
chatml-function-calling) with the same model.

    .venv/bin/python scripts/bench_tools.py            # router + embedded model
    .venv/bin/python scripts/bench_tools.py --server   # + llama.cpp server, native tool calls
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perslm_voice.config import LLMConfig, ToolsConfig  # noqa: E402
from perslm_voice.llm.base import LLM, Message, ToolCall, stream_async  # noqa: E402
from perslm_voice.tools.base import ToolContext  # noqa: E402
from perslm_voice.tools.registry import builtin_tools  # noqa: E402
from perslm_voice.tools.reply import ReplyText, ToolUse  # noqa: E402
from perslm_voice.tools.router import Router  # noqa: E402

# (what the user says, the tool it needs or None, arguments that must be there)
CASES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("What time is it?", "get_time", {}),
    ("what's the time", "get_time", {}),
    ("What day is it today?", "get_time", {}),
    ("What's today's date?", "get_time", {}),
    ("Hey, what time is it right now?", "get_time", {}),
    ("Set a timer for 5 minutes", "set_timer", {"seconds": 300}),
    ("set a ten minute timer", "set_timer", {"seconds": 600}),
    ("Start a timer for 30 seconds", "set_timer", {"seconds": 30}),
    ("Set a timer for an hour", "set_timer", {"seconds": 3600}),
    ("Can you set a 2 minute timer for the eggs", "set_timer", {"seconds": 120}),
    ("Remind me to call mom in 20 minutes", "set_reminder", {"in_minutes": 20}),
    ("Remind me to take out the trash at 7 pm", "set_reminder", {"at": "19:00"}),
    ("remind me to stretch in an hour", "set_reminder", {"in_minutes": 60}),
    ("Please remind me about the meeting at 9:30", "set_reminder", {"at": "09:30"}),
    ("What timers do I have?", "list_timers", {}),
    ("Cancel my timer", "cancel_timer", {}),
    ("What is 12 times 7?", "calculate", {}),
    ("what's 15 plus 27", "calculate", {}),
    ("Calculate 144 divided by 12", "calculate", {}),
    ("How much is 3.5 times 4?", "calculate", {}),
    ("what is 2 to the power of 10", "calculate", {}),
    ("What is 100 minus 37?", "calculate", {}),
    ("What's the weather like?", "get_weather", {}),
    ("Should I bring an umbrella today?", "get_weather", {}),
    ("What's the weather in Paris?", "get_weather", {"location": "paris"}),
    ("Will it rain today?", "get_weather", {}),
    ("What's the forecast for tomorrow in Berlin", "get_weather", {}),
    ("How cold is it outside?", "get_weather", {}),
    ("What's on my calendar today?", "get_calendar_events", {"day": "today"}),
    ("Do I have any meetings tomorrow?", "get_calendar_events", {"day": "tomorrow"}),
    ("What's my schedule for today?", "get_calendar_events", {"day": "today"}),
    ("Read me my appointments for tomorrow", "get_calendar_events", {"day": "tomorrow"}),
    ("Turn off the living room lights", "control_device", {"action": "off", "target": "living room lights"}),
    ("turn on the kitchen light", "control_device", {"action": "on", "target": "kitchen light"}),
    ("Switch the bedroom lamp off", "control_device", {"action": "off", "target": "bedroom lamp"}),
    ("Dim the hallway lights to 30 percent", "control_device", {"brightness_percent": 30}),
    ("Please turn on the fan", "control_device", {"action": "on", "target": "fan"}),
    ("Send an email to Ann saying I'll be late", "send_email", {"to": "ann"}),
    ("Write an email to Bob that says the report is done", "send_email", {"to": "bob"}),
    ("Send a message to Carol: dinner is at eight", "send_email", {"to": "carol"}),
    ("Tell me a joke", None, {}),
    ("What is the capital of France?", None, {}),
    ("How are you today?", None, {}),
    ("Thanks, that's all", None, {}),
    ("What's your name?", None, {}),
    ("I had a long day at work.", None, {}),
    ("Can you recommend a good book?", None, {}),
    ("What is photosynthesis?", None, {}),
    ("Remember that I take my coffee black", None, {}),
    ("Who wrote Hamlet?", None, {}),
    ("What time do kids usually go to bed?", None, {}),
    ("My light bulb burned out, what should I buy?", None, {}),
    ("I love rainy weather.", None, {}),
    ("Tell me about the history of calendars", None, {}),
    ("What is the meaning of life?", None, {}),
    ("How do I make pasta?", None, {}),
    ("Good morning!", None, {}),
    ("Why is the sky blue?", None, {}),
    ("Say something nice", None, {}),
    ("What's a good name for a cat?", None, {}),
]  # fmt: skip

# Written after the router was tuned on CASES, and never tuned on: how it does on new wordings.
HELD_OUT: list[tuple[str, str | None, dict[str, Any]]] = [
    ("Do you know what time it is?", "get_time", {}),
    ("What's the date today?", "get_time", {}),
    ("Give me a three minute countdown", "set_timer", {"seconds": 180}),
    ("Timer, 45 seconds", "set_timer", {"seconds": 45}),
    ("Wake me up in twenty minutes", "set_timer", {"seconds": 1200}),
    ("Don't let me forget to water the plants at 6 pm", "set_reminder", {"at": "18:00"}),
    ("Remind me in 15 minutes to check the oven", "set_reminder", {"in_minutes": 15}),
    ("What's seven times eight?", "calculate", {}),
    ("Is it going to rain this afternoon?", "get_weather", {}),
    ("Do I need a jacket today?", "get_weather", {}),
    ("What's the temperature in London?", "get_weather", {"location": "london"}),
    ("Am I free tomorrow afternoon?", "get_calendar_events", {"day": "tomorrow"}),
    ("What have I got on today?", "get_calendar_events", {"day": "today"}),
    ("Lights off in the kitchen please", "control_device", {"action": "off"}),
    ("Could you switch off the TV", "control_device", {"action": "off", "target": "tv"}),
    ("Email Ann that the meeting moved to Friday", "send_email", {"to": "ann"}),
    ("What's the weather been like in history?", None, {}),
    ("I set a timer on my phone already", None, {}),
    ("Turn the story into a poem", None, {}),
    ("How many minutes are in a day?", None, {}),
    ("My calendar app is broken, any advice?", None, {}),
    ("Tell me something about Paris", None, {}),
]  # fmt: skip

Picker = Callable[[str], tuple[str | None, dict[str, Any]]]


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return abs(want - got) < 1e-6
    return str(want).strip().lower() == str(got).strip().lower()


def score(
    picker: Picker, cases: list[tuple[str, str | None, dict[str, Any]]] = CASES
) -> dict[str, Any]:
    """Accuracy of: tool needed or not, which tool, which arguments; and time per pick."""
    need = tool = args = 0
    with_tool = sum(1 for _, t, _ in cases if t)
    times = []
    misses = []
    for text, want_tool, want_args in cases:
        started = time.perf_counter()
        got_tool, got_args = picker(text)
        times.append((time.perf_counter() - started) * 1000)
        need += (got_tool is None) == (want_tool is None)
        if want_tool and got_tool == want_tool:
            tool += 1
            if all(k in got_args and _same(v, got_args[k]) for k, v in want_args.items()):
                args += 1
            else:
                misses.append(f"{text!r}: args {got_args}")
        elif got_tool != want_tool:
            misses.append(f"{text!r}: {got_tool} instead of {want_tool}")
    return {
        "need": need / len(cases),
        "tool": tool / with_tool,
        "args": args / with_tool,
        "ms": statistics.median(times),
        "misses": misses,
    }


def router_picker() -> Picker:
    router = Router()
    names = {t.name for t in builtin_tools(ToolContext(ToolsConfig()))}

    def pick(text: str) -> tuple[str | None, dict[str, Any]]:
        routed = router.route(text, names)
        return (routed.tool, routed.arguments) if routed else (None, {})

    return pick


def _tool_list() -> str:
    lines = []
    for t in builtin_tools(ToolContext(ToolsConfig())):
        params = ", ".join(t.parameters.get("properties", {}))
        lines.append(f"- {t.name}({params}): {t.description}")
    return "\n".join(lines)


PROMPT = (
    "You can call these tools:\n{tools}\n\nIf the user's message needs a tool, answer only with"
    ' JSON like {{"tool": "get_time", "arguments": {{}}}}. If it needs none, answer only with'
    ' {{"tool": null}}.'
)


def embedded_picker(llm: LLM) -> Picker:
    system = Message("system", PROMPT.format(tools=_tool_list()))

    def pick(text: str) -> tuple[str | None, dict[str, Any]]:
        answer = "".join(llm.stream([system, Message("user", text)], threading.Event()))
        match = re.search(r"\{.*\}", answer, re.S)
        try:
            data = json.loads(match.group(0)) if match else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            return None, {}
        args = data.get("arguments") if isinstance(data.get("arguments"), dict) else {}
        return (data.get("tool") if isinstance(data.get("tool"), str) else None), args

    return pick


def native_picker(llm: LLM) -> Picker:
    specs = [t.spec() for t in builtin_tools(ToolContext(ToolsConfig()))]
    system = Message("system", "You are a voice assistant. Use a tool when one is needed.")

    def pick(text: str) -> tuple[str | None, dict[str, Any]]:
        for item in llm.stream_events([system, Message("user", text)], threading.Event(), specs):
            if isinstance(item, ToolCall):
                try:
                    return item.name, json.loads(item.arguments or "{}")
                except ValueError:
                    return item.name, {}
        return None, {}

    return pick


async def _first_words_ms(make: Callable[[], Any]) -> float:
    started = time.perf_counter()
    async for event in make():
        if isinstance(event, (ReplyText, str)) and (getattr(event, "text", event)).strip():
            return (time.perf_counter() - started) * 1000
    return (time.perf_counter() - started) * 1000


def latency(llm: LLM, runs: int) -> list[tuple[str, float, float]]:
    """(question, p50 ms to the first words without a tool, with the routed tool)."""
    tools = builtin_tools(ToolContext(ToolsConfig()))

    async def no(question: str) -> bool:
        return False

    use = ToolUse(llm, tools, no, router=Router())
    rows = []
    for question in ("What time is it?", "What is 12 times 7?"):
        messages = [
            Message("system", "You are a friendly voice assistant."),
            Message("user", question),
        ]
        plain, routed = [], []
        for _ in range(runs):
            plain.append(
                asyncio.run(
                    _first_words_ms(lambda m=messages: stream_async(llm, m, threading.Event()))
                )
            )
            routed.append(asyncio.run(_first_words_ms(lambda m=messages: use.reply(m))))
        rows.append((question, statistics.median(plain), statistics.median(routed)))
    return rows


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_threads", str(threads), "--n_ctx", "2048",
        "--chat_format", "chatml-function-calling",
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
            time.sleep(0.2)
    process.kill()
    raise SystemExit("llama_cpp.server did not start within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help="also llama.cpp's server, natively")
    parser.add_argument("--no-model", action="store_true", help="the router only")
    parser.add_argument("--runs", type=int, default=5, help="latency runs per question")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()

    with_tool = sum(1 for _, t, _ in CASES if t)
    print(
        f"{len(CASES)} utterances, {with_tool} need a tool, {len(CASES) - with_tool} none"
        f" (+ {len(HELD_OUT)} held-out wordings for the router)"
    )
    header = (
        f"{'picker':<40} {'need a tool?':>12} {'right tool':>10} {'right args':>10} {'ms/pick':>8}"
    )
    print(header)
    print("-" * len(header), flush=True)
    results: dict[str, dict[str, Any]] = {}

    def report(name: str, r: dict[str, Any]) -> None:
        results[name] = r
        print(
            f"{name:<40} {r['need']:>12.0%} {r['tool']:>10.0%} {r['args']:>10.0%} {r['ms']:>8.1f}",
            flush=True,
        )

    report("router (embedded model's tool picker)", score(router_picker()))
    report("router on the held-out wordings", score(router_picker(), HELD_OUT))
    llm = None
    if not args.no_model:
        from perslm_voice.llm.llama_cpp import LlamaCppLLM, embedded_model_path

        settings = {"temperature": 0.0, "max_tokens": 48, "n_threads": args.threads}
        llm = LlamaCppLLM(LLMConfig(backend="llama_cpp", **settings))
        llm.load()
        report("embedded SmolLM2-135M alone (JSON)", score(embedded_picker(llm)))
        if args.server:
            process, url = start_server(embedded_model_path(), args.threads)
            try:
                server = OpenAILLMFor(url, settings)
                report("llama.cpp server, native tools", score(native_picker(server)))
                server.close()
            finally:
                process.terminate()
                process.wait(timeout=10)
    if args.show_misses:
        for name, r in results.items():
            print(f"\n{name}: {len(r['misses'])} misses")
            for miss in r["misses"]:
                print("  " + miss)
    if llm is not None:
        print(
            "\nend of speech -> first words, p50 ms (embedded model; the router + tool + the model"
            " wording the result)"
        )
        print(f"{'question':<24} {'no tool':>8} {'with tool':>10} {'added':>7}", flush=True)
        for question, plain, routed in latency(llm, args.runs):
            print(
                f"{question:<24} {plain:>8.0f} {routed:>10.0f} {routed - plain:>+7.0f}", flush=True
            )
        llm.close()


def OpenAILLMFor(url: str, settings: dict[str, Any]) -> LLM:  # noqa: N802
    from perslm_voice.llm.openai import OpenAILLM

    llm = OpenAILLM(LLMConfig(backend="openai", base_url=url, model="bench", **settings))
    return llm


if __name__ == "__main__":
    main()
