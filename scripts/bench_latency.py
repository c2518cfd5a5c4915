#!/usr/bin/env python
"""End-to-end latency benchmark: recorded conversations through the whole loop, per configuration.

    .venv/bin/python scripts/bench_latency.py                      # streaming vs sequential
    .venv/bin/python scripts/bench_latency.py --runs 3             # more turns, steadier p95
    .venv/bin/python scripts/bench_latency.py --quick              # a smaller conversation, ~2 min
    .venv/bin/python scripts/bench_latency.py --compare fast=a.yaml --compare slow=b.yaml
    .venv/bin/python scripts/bench_latency.py --config-a a.yaml --config-b b.yaml

Each session is the real CLI in a subprocess (``python -m perslm_voice --audio-input IN.wav
--audio-output OUT.wav --input-mode voice --output-mode voice``) with a fresh PERSLM_VOICE_HOME and
stdin from /dev/null, the recording paced in real time. Conversations:
  real      the real recordings in tests/audio (english.wav, vosk_test.wav)
  questions spoken questions (Piper via `perslm-voice say`, and espeak-ng), each followed by enough
            silence for the reply to finish, so no turn is interrupted
  barge-in  a question that asks for a long reply, and the user talking over that reply
Afterwards the turns' timings (monotonic marks) are read from each session's SQLite store and pooled
per configuration: p50/p95 of end of speech -> first audio and of each stage (perslm_voice.latency).
Configurations run interleaved (run 1 of A, run 1 of B, ...) so that machine load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perslm_voice.audio.resample import Resampler, to_mono_float32  # noqa: E402
from perslm_voice.latency import E2E, STAGES, stage_durations  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable
AUDIO = ROOT / "tests" / "audio"
SAMPLE_RATE_HZ = 16000
USER = "bench"
SEQUENTIAL_YAML = """\
# The classic design: the whole reply is generated before any of it is shown or spoken, all of it is
# synthesized before any is played, and speech-to-text starts only once the silence window is over.
interaction:
  streaming: false
speech:
  audio:
    speculative_stt: 0
"""
# (text, voice): the questions of the "questions" conversation
QUESTIONS = [
    ("What is the capital of France?", "piper"),
    ("What time is it in Tokyo right now?", "espeak"),
    ("Can you give me a tip for sleeping better?", "piper"),
    ("Why is the sky blue?", "espeak"),
    ("How do I boil an egg?", "piper"),
    ("Tell me a fun fact about the ocean.", "espeak"),
]
# (question asking for a long reply, what the user says over the reply)
BARGE_INS = [
    (
        ("Tell me a long story about a brave little dragon.", "piper"),
        ("Wait, stop. Tell me about cats instead.", "espeak"),
    ),
    (
        ("Explain in detail how a steam engine works.", "piper"),
        ("Hold on, that is enough, thank you.", "espeak"),
    ),
]
# Diagnostic stages on top of perslm_voice.latency.STAGES: the whole reply's generation
EXTRA_STAGES = {"llm_whole_reply_ms": (("transcript_ready", "typed"), "reply_done")}
# stage -> (p50 target ms, p95 target ms): end to end from issue 14 (turn-taking; issue 6 asked
# 800 / 1200), the stop from issue 6
TARGETS = {E2E: (450.0, 700.0), "barge_in_stop_ms": (None, 250.0)}
SPEEDUP_TARGET = 3.0
SCENARIOS = ["real", "questions", "barge-in"]
QUEUED_MS = 250.0  # a user turn that waited longer than this for the previous reply is left out


@dataclass
class Scenario:
    """One recorded conversation: a WAV the session hears, and how many user turns it holds."""

    name: str
    wav: Path
    user_turns: int
    barge_ins: int = 0


@dataclass
class Session:
    """What one CLI session left in its store."""

    config: str
    scenario: str
    returncode: int
    wall_s: float
    turns: list[dict[str, object]] = field(default_factory=list)  # role, text, interrupted, marks
    log_file: Path | None = None


# -- audio ----------------------------------------------------------------------------------------


def load_16k(path: Path) -> np.ndarray:
    """A sound file as 16 kHz mono int16 (any rate and channel count)."""
    data, rate_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    resampler = Resampler(rate_hz, SAMPLE_RATE_HZ)
    return np.concatenate([resampler.process(to_mono_float32(data)), resampler.flush()])


def speak(text: str, voice: str, path: Path, home: Path) -> np.ndarray:
    """``text`` spoken by Piper (through `perslm-voice say`) or espeak-ng, as 16 kHz int16."""
    if not path.exists():
        if voice == "piper":
            cmd = [PYTHON, "-m", "perslm_voice", "say", text, "--out", str(path)]
        else:
            cmd = ["espeak-ng", "-s", "160", "-w", str(path), text]
        env = {**os.environ, "PERSLM_VOICE_HOME": str(home)}
        subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    return load_16k(path)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE_HZ), np.int16)


def write_wav(path: Path, parts: list[np.ndarray]) -> Path:
    soundfile.write(str(path), np.concatenate(parts), SAMPLE_RATE_HZ, subtype="PCM_16")
    return path


def build_scenarios(
    workdir: Path, wanted: list[str], quick: bool, gap_s: float, barge_after_s: float
) -> list[Scenario]:
    """Write the ``wanted`` conversations' WAVs into ``workdir``; each clip is generated once."""
    home = workdir / "say-home"
    clips = workdir / "clips"
    clips.mkdir(parents=True, exist_ok=True)

    def clip(i: int, text: str, voice: str) -> np.ndarray:
        return speak(text, voice, clips / f"{voice}{i}.wav", home)

    lead_in = silence(1.0)  # the session starts listening once its models are loaded
    scenarios = []
    if "real" in wanted:
        real_files = ["english.wav"] if quick else ["english.wav", "vosk_test.wav"]
        real = [lead_in]
        for name in real_files:
            real += [load_16k(AUDIO / name), silence(gap_s)]
        scenarios.append(Scenario("real", write_wav(workdir / "real.wav", real), len(real_files)))
    if "questions" in wanted:
        asked = QUESTIONS[:3] if quick else QUESTIONS
        questions = [lead_in]
        for i, (text, voice) in enumerate(asked):
            questions += [clip(i, text, voice), silence(gap_s)]
        wav = write_wav(workdir / "questions.wav", questions)
        scenarios.append(Scenario("questions", wav, len(asked)))
    if "barge-in" in wanted:
        pairs = BARGE_INS[:1] if quick else BARGE_INS
        barge = [lead_in]
        for i, ((ask, ask_voice), (over, over_voice)) in enumerate(pairs):
            barge += [clip(100 + i, ask, ask_voice), silence(barge_after_s)]
            barge += [clip(200 + i, over, over_voice), silence(gap_s)]
        wav = write_wav(workdir / "barge-in.wav", barge)
        scenarios.append(Scenario("barge-in", wav, 2 * len(pairs), len(pairs)))
    return scenarios


# -- sessions -------------------------------------------------------------------------------------


def run_session(
    config: str, config_file: Path | None, scenario: Scenario, workdir: Path, debug: bool
) -> Session:
    """One CLI session hearing ``scenario``; its turns read back from its own store."""
    home = Path(tempfile.mkdtemp(prefix=f"{config}-{scenario.name}-", dir=workdir))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSLM_VOICE_")}
    env.update(PERSLM_VOICE_HOME=str(home), SDL_AUDIODRIVER="dummy")
    cmd = [PYTHON, "-m", "perslm_voice", "--user", USER]
    cmd += ["--audio-input", str(scenario.wav), "--audio-output", str(home / "out.wav")]
    cmd += ["--input-mode", "voice", "--output-mode", "voice"]
    if config_file is not None:
        cmd += ["--config", str(config_file)]
    log_file = home / "session.log" if debug else None
    if log_file is not None:
        cmd += ["--log-level", "debug", "--log-file", str(log_file)]
    audio_s = soundfile.info(str(scenario.wav)).duration
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=audio_s + 180,  # loading, and the last reply
        check=False,
    )
    session = Session(config, scenario.name, proc.returncode, time.monotonic() - t0)
    session.log_file = log_file
    (home / "stdout.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(
            f"  ! {config}/{scenario.name} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        )
    db = home / "data" / "perslm-voice.db"
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute(
                "SELECT role, text, interrupted, timings, started_at FROM turns"
                " WHERE user_id = ? ORDER BY id",
                (USER,),
            ).fetchall()
        session.turns = [
            {
                "role": r,
                "text": t,
                "interrupted": bool(i),
                "marks": json.loads(m) if m else {},
                "saved_at": s,
            }
            for r, t, i, m, s in rows
        ]
        mark_queue_waits(session.turns)
    return session


def mark_queue_waits(turns: list[dict[str, object]]) -> None:
    """Set each reply's ``queued_ms``: how long its user turn waited for the previous reply to end.

    The loop answers one turn at a time; speech heard while a reply plays, and not taken as a
    barge-in, waits in a queue, and its end of speech -> first audio then includes the rest of the
    previous reply. The wait is not marked, so it is estimated: a user turn is saved (wall clock) as
    its reply starts, and its transcript_ready mark is monotonic; their difference is the clock
    offset plus the wait, and the smallest difference in the session (a turn that did not wait, such
    as the first) is taken as the offset.
    """
    pairs = []
    user = None
    for turn in turns:
        if turn["role"] == "user":
            user = turn
        elif user is not None:
            ready = turn["marks"].get("transcript_ready")  # type: ignore[union-attr]
            if ready is not None:
                pairs.append((turn, float(user["saved_at"]) - ready))  # type: ignore[arg-type]
            user = None
    if pairs:
        offset = min(diff for _, diff in pairs)
        for turn, diff in pairs:
            turn["queued_ms"] = (diff - offset) * 1000.0


# -- statistics -----------------------------------------------------------------------------------


def durations(marks: dict[str, float]) -> dict[str, float]:
    """perslm_voice.latency's stages of one turn, plus this script's diagnostic ones."""
    out = stage_durations(marks)
    for stage, (starts, end) in EXTRA_STAGES.items():
        start = next((marks[s] for s in starts if s in marks), None)
        if start is not None and end in marks:
            out[stage] = (marks[end] - start) * 1000.0
    return out


def pool(sessions: list[Session]) -> dict[str, list[float]]:
    """Stage -> milliseconds of every assistant turn of these sessions."""
    stages: dict[str, list[float]] = {}
    for session in sessions:
        for turn in session.turns:
            if turn["role"] == "assistant" and not queued(turn):
                for stage, ms in durations(turn["marks"]).items():  # type: ignore[arg-type]
                    stages.setdefault(stage, []).append(ms)
    return stages


def queued(turn: dict[str, object]) -> bool:
    """The reply waited for the previous one: its latency is not the pipeline's (left out)."""
    return float(turn.get("queued_ms", 0.0)) > QUEUED_MS  # type: ignore[arg-type]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def counts(sessions: list[Session], scenarios: list[Scenario]) -> dict[str, int]:
    """Turn counts: replies, user turns heard against said, and interruptions outside barge-in."""
    said = {s.name: s.user_turns for s in scenarios}
    planned = {s.name: s.barge_ins for s in scenarios}
    out = {"replies": 0, "user_heard": 0, "user_said": 0, "interrupted": 0, "unplanned_int": 0}
    out["real_heard"] = 0  # the real recordings' pauses split them into a varying number of turns
    out["queued"] = out["barge_ins"] = out["barge_ins_planned"] = out["no_audio"] = 0
    out["failed_sessions"] = sum(s.returncode != 0 for s in sessions)
    for session in sessions:
        out["user_said"] += said[session.scenario] if session.scenario != "real" else 0
        out["barge_ins_planned"] += planned[session.scenario]
        for turn in session.turns:
            if turn["role"] == "user":
                out["real_heard" if session.scenario == "real" else "user_heard"] += 1
            elif turn["role"] == "assistant":
                out["replies"] += 1
                out["queued"] += queued(turn)
                out["no_audio"] += "first_audio_played" not in turn["marks"]  # type: ignore[operator]
                out["barge_ins"] += "barge_in_detected" in turn["marks"]  # type: ignore[operator]
                if turn["interrupted"]:
                    out["interrupted"] += 1
                    out["unplanned_int"] += session.scenario != "barge-in"
    return out


def report(
    names: list[str],
    by_config: dict[str, list[Session]],
    scenarios: list[Scenario],
    window_ms: float,
) -> None:
    """The side-by-side table, the speed-up and the targets."""
    pooled = {name: pool(by_config[name]) for name in names}
    stage_order = [*STAGES, *EXTRA_STAGES]
    header = f"{'stage (ms)':28}" + "".join(f"{name + ' p50/p95 (n)':>28}" for name in names)
    print(header + f"  {'target p50/p95':>15}")
    print("-" * len(header) + "-" * 17)
    for stage in stage_order:
        if not any(stage in pooled[n] for n in names):
            continue
        cells = []
        for name in names:
            values = pooled[name].get(stage)
            cells.append(
                f"{pct(values, 50):>9.0f} /{pct(values, 95):>6.0f} ({len(values):>3})"
                if values
                else "-"
            )
        p50_t, p95_t = TARGETS.get(stage, (None, None))
        target = (
            f"{'<=' + format(p50_t, '.0f') if p50_t else '-':>6} / {'<=' + format(p95_t, '.0f') if p95_t else '-':<6}"
            if stage in TARGETS
            else ""
        )
        print(
            f"{stage.removesuffix('_ms'):28}"
            + "".join(f"{c:>28}" for c in cells)
            + f"  {target:>15}"
        )
    print()
    for name in names:
        c = counts(by_config[name], scenarios)
        print(
            f"{name}: {c['replies']} replies; generated user turns heard {c['user_heard']} of"
            f" {c['user_said']} said, real-recording turns heard {c['real_heard']};"
            f" {c['no_audio']} stopped before any audio (not in end-to-end);"
            f" {c['interrupted']} interrupted"
            f" ({c['unplanned_int']} outside the barge-in scenario);"
            f" {c['queued']} waited for the previous reply (left out of the table);"
            f" barge-in stopped {c['barge_ins']} stored replies ({c['barge_ins_planned']} planned);"
            f" {c['failed_sessions']} failed sessions"
        )
    print()
    print(f"Targets (end-of-speech window {window_ms:.0f} ms, included in stt and end-to-end):")
    first = pooled[names[0]].get(E2E)
    for name in names:
        e2e, barge = pooled[name].get(E2E), pooled[name].get("barge_in_stop_ms")
        if e2e:
            p50, p95 = pct(e2e, 50), pct(e2e, 95)
            t50, t95 = TARGETS[E2E]
            print(
                f"  {name}: end of speech -> first audio p50 {p50:.0f} ms {_ok(p50 <= t50)}"
                f" (<= {t50:.0f}), p95 {p95:.0f} ms {_ok(p95 <= t95)} (<= {t95:.0f})"
            )
        if barge:
            p95 = pct(barge, 95)
            print(f"  {name}: barge-in stop p95 {p95:.1f} ms {_ok(p95 <= 250)} (<= 250)")
    for name in names[1:]:
        other = pooled[name].get(E2E)
        if first and other:
            ratio = pct(other, 50) / pct(first, 50)
            print(
                f"  speed-up, p50 end of speech -> first audio: {names[0]} is {ratio:.2f}x"
                f" faster than {name} {_ok(ratio >= SPEEDUP_TARGET)} (>= {SPEEDUP_TARGET:.0f}x)"
            )


def print_turns(sessions: list[Session]) -> None:
    """Every reply: its stages, and what it answered."""
    for session in sessions:
        user_text = ""
        for turn in session.turns:
            if turn["role"] == "user":
                user_text = str(turn["text"])
                continue
            stages = durations(turn["marks"])  # type: ignore[arg-type]
            shown = " ".join(
                f"{k.removesuffix('_ms')}={v:.0f}"
                for k, v in stages.items()
                if k != "typed_to_first_audio_ms"
            )
            flags = (" interrupted" if turn["interrupted"] else "") + (
                f" queued={turn['queued_ms']:.0f}" if queued(turn) else ""
            )
            print(
                f"  {session.config:11} {session.scenario:9} {user_text[:38]!r:40} {shown}{flags}"
            )


def _ok(passed: bool) -> str:
    return "PASS" if passed else "MISS"


# -- main -----------------------------------------------------------------------------------------


def parse_configs(args: argparse.Namespace, workdir: Path) -> list[tuple[str, Path | None]]:
    """(name, YAML layer or None for the defaults), in the order they are shown."""
    if args.compare:
        out = []
        for item in args.compare:
            name, sep, file = item.partition("=")
            if not sep or not name:
                sys.exit(f"--compare takes NAME=FILE (NAME= for the defaults), not {item!r}")
            out.append((name, Path(file).resolve() if file else None))
        return out
    if args.config_a or args.config_b:
        a = Path(args.config_a).resolve() if args.config_a else None
        b = Path(args.config_b).resolve() if args.config_b else None
        return [(a.stem if a else "defaults", a), (b.stem if b else "defaults", b)]
    sequential = workdir / "sequential.yaml"
    sequential.write_text(SEQUENTIAL_YAML)
    return [("streaming", None), ("sequential", sequential)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="sessions per scenario and config")
    parser.add_argument("--quick", action="store_true", help="fewer questions and recordings")
    parser.add_argument(
        "--compare",
        action="append",
        metavar="NAME=FILE",
        help="repeatable: a configuration layer to compare (NAME= for the defaults)",
    )
    parser.add_argument("--config-a", metavar="FILE", help="compare this layer ...")
    parser.add_argument("--config-b", metavar="FILE", help="... against this one")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="repeatable; default: all",
    )
    parser.add_argument("--gap", type=float, default=9.0, help="seconds of silence after a turn")
    parser.add_argument(
        "--barge-after",
        type=float,
        default=2.0,
        help="seconds from the end of a question to the user talking over the reply",
    )
    parser.add_argument("--window-ms", type=float, default=500.0, help="end-of-speech window shown")
    parser.add_argument("--keep", metavar="DIR", help="keep WAVs, stores and debug logs here")
    parser.add_argument("--debug-log", action="store_true", help="each session logs at debug level")
    parser.add_argument("--turns", action="store_true", help="also list every reply's stages")
    args = parser.parse_args()

    keep = Path(args.keep).resolve() if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        workdir = keep or Path(tmp)
        configs = parse_configs(args, workdir)
        names = [name for name, _ in configs]
        if len(set(names)) != len(names):
            sys.exit(f"configuration names must differ: {names}")
        wanted = args.scenario or SCENARIOS
        scenarios = build_scenarios(workdir, wanted, args.quick, args.gap, args.barge_after)
        total_s = sum(soundfile.info(str(s.wav)).duration for s in scenarios)
        print(
            f"{len(configs)} configurations x {len(scenarios)} conversations"
            f" ({total_s:.0f} s of audio, played in real time) x {args.runs} runs"
        )
        by_config: dict[str, list[Session]] = {name: [] for name in names}
        for run in range(args.runs):
            for scenario in scenarios:
                for name, file in configs:
                    session = run_session(name, file, scenario, workdir, args.debug_log)
                    replies = sum(t["role"] == "assistant" for t in session.turns)
                    print(
                        f"  run {run + 1} {scenario.name:10} {name:12} {replies} replies"
                        f" in {session.wall_s:.0f} s"
                    )
                    by_config[name].append(session)
        if args.turns:
            print()
            for name in names:
                print_turns(by_config[name])
        print()
        report(names, by_config, scenarios, args.window_ms)
        if keep:
            print(f"\nWAVs, stores and logs kept in {keep}")


if __name__ == "__main__":
    main()
