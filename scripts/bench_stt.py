#!/usr/bin/env python
"""Speech-to-text benchmark: speed, accuracy and end-of-speech latency, side by side per backend/model.

    .venv/bin/python scripts/bench_stt.py                          # tiny.en and base, faster-whisper
    .venv/bin/python scripts/bench_stt.py --stt faster_whisper:tiny.en --stt openai_whisper:tiny.en
    .venv/bin/python scripts/bench_stt.py --live                   # also play the files in real time
    .venv/bin/python scripts/bench_stt.py --stt faster_whisper:tiny.en:context_s=30 \
        --stt faster_whisper:tiny.en                               # Whisper's full 30 s window vs 10 s
    .venv/bin/python scripts/bench_stt.py --context --language-check   # issues 17 and 18: see
                                                                   # scripts/bench_stt_context.py

Utterances come from the real recordings in tests/audio and from speech generated with espeak-ng,
cut by the same VAD + endpointer as the live loop. Columns:
  RTF          STT seconds / utterance audio seconds (lower is faster)
  s/utt        mean STT seconds per utterance
  WER          word error rate against what is said (numbers normalised to digits)
  5s-utt       STT seconds for the ~5 s generated utterance
  eos->text    live mode: from the endpointer's end-of-speech decision to the transcript (median, max),
               without and with speculative STT started inside the silence window
and the VAD + endpointer CPU use, as a fraction of one core, in real time.
"""

from __future__ import annotations

import argparse
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perslm_voice.audio import Endpointer, FileSource, SpeechPaused, create_vad  # noqa: E402
from perslm_voice.config import Config, SpeechConfig  # noqa: E402
from perslm_voice.errors import PerslmVoiceError  # noqa: E402
from perslm_voice.events import AudioFrame, SpeechEnded  # noqa: E402
from perslm_voice.stt import create_stt  # noqa: E402

AUDIO = ROOT / "tests" / "audio"
REAL = [
    ("english.wav", "one two three"),
    ("vosk_test.wav", "one zero zero zero one nine oh two one oh zero one eight zero three"),
]
GENERATED = [
    "Please remember that I take my coffee black, and that my sister lives in Berlin with her two cats.",
    "What is the weather like tomorrow?",
    "Set a timer for ten minutes.",
    "Hello there, how are you doing today?",
]
NUMBERS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}


def words(text: str) -> list[str]:
    tokens = re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()
    out: list[str] = []
    for token in tokens:
        token = NUMBERS.get(token, token)
        out.extend(list(token) if token.isdigit() and token != "10" else [token])
    return out


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    r, h = words(reference), words(hypothesis)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)], len(r)


@dataclass
class Clip:
    path: Path
    reference: str
    label: str


def clips(workdir: Path) -> list[Clip]:
    found = [Clip(AUDIO / name, ref, name) for name, ref in REAL]
    for i, text in enumerate(GENERATED):
        path = workdir / f"espeak{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        found.append(Clip(path, text, f"espeak{i}"))
    return found


def segment(clip: Clip, config: Config) -> list[SpeechEnded]:
    endpointer = Endpointer(create_vad(config.vad), config.speech.audio, config.vad)
    events = []
    for i, samples in enumerate(FileSource(clip.path, speed="fast").frames(), start=1):
        events += endpointer.process(AudioFrame(samples, i * 0.032))
    return [e for e in events + endpointer.flush() if isinstance(e, SpeechEnded)]


def vad_cpu(all_clips: list[Clip], config: Config) -> float:
    """VAD + endpointer CPU seconds per audio second (= fraction of one core in real time)."""
    frames = [f for c in all_clips for f in FileSource(c.path, speed="fast").frames()]
    endpointer = Endpointer(create_vad(config.vad), config.speech.audio, config.vad)
    start = time.thread_time()
    for i, samples in enumerate(frames, start=1):
        endpointer.process(AudioFrame(samples, i * 0.032))
    return (time.thread_time() - start) / (len(frames) * 0.032)


def live_latency(stt, clip: Clip, config: Config, speculative: bool) -> list[float]:
    """Play ``clip`` in real time through VAD + endpointer; STT on a worker thread, as the loop does.

    Returns, per utterance, the seconds from SpeechEnded (the endpointer's decision) to the transcript.
    """
    endpointer = Endpointer(create_vad(config.vad), config.speech.audio, config.vad)
    frames: queue.Queue = queue.Queue()
    source = FileSource(clip.path, speed="realtime")
    source.start(frames.put, lambda reason: frames.put(None))
    jobs: queue.Queue = queue.Queue()
    results: dict[float, float] = {}  # speech end -> monotonic time its transcript was ready

    def worker() -> None:
        while (job := jobs.get()) is not None:
            stt.transcribe(job.audio)
            results.setdefault(job.t_end, time.monotonic())

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    decided: dict[float, float] = {}
    submitted: set[float] = set()  # speech ends already being transcribed speculatively
    while (frame := frames.get()) is not None:
        for event in endpointer.process(frame):
            if isinstance(event, SpeechPaused) and speculative:
                submitted.add(event.t_end)
                jobs.put(event)
            elif isinstance(event, SpeechEnded):
                decided[event.t_end] = time.monotonic()
                if event.t_end not in submitted:  # no pause-time guess, or the user went on
                    jobs.put(event)
    for event in endpointer.flush():
        if isinstance(event, SpeechEnded):
            decided[event.t_end] = time.monotonic()
            jobs.put(event)
    jobs.put(None)
    thread.join()
    source.stop()
    return [max(0.0, results[t] - decided[t]) for t in decided if t in results]


def bench(spec: str, all_clips: list[Clip], config: Config, live: bool) -> dict[str, str]:
    backend, _, rest = spec.partition(":")
    model, *settings = rest.split(":")
    extra = dict(setting.split("=", 1) for setting in settings)  # e.g. context_s=30
    speech = SpeechConfig(
        **{**config.speech.model_dump(), "backend": backend, "model_name": model, **extra}
    )
    stt = create_stt(speech)
    started = time.perf_counter()
    stt.load()
    load_s = time.perf_counter() - started
    stt.transcribe(np.zeros(16000, np.int16))  # warm-up
    errors = total = 0
    stt_s = audio_s = 0.0
    per_utt: list[float] = []
    five_s = float("nan")
    for clip in all_clips:
        texts = []
        for utterance in segment(clip, config):
            t = time.perf_counter()
            result = stt.transcribe(utterance.audio)
            spent = time.perf_counter() - t
            per_utt.append(spent)
            stt_s += spent
            audio_s += len(utterance.audio) / 16000
            if not result.rejected:
                texts.append(result.text)
            if clip.label == "espeak0":
                five_s = spent
        e, n = wer(clip.reference, " ".join(texts))
        errors, total = errors + e, total + n
    row = {
        "stt": f"{spec}",
        "load s": f"{load_s:.2f}",
        "RTF": f"{stt_s / audio_s:.3f}",
        "s/utt": f"{statistics.mean(per_utt):.3f}",
        "WER": f"{errors / max(1, total):.3f}",
        "5s-utt": f"{five_s:.3f}",
    }
    if live:
        for speculative in (False, True):
            lat = [x for c in all_clips for x in live_latency(stt, c, config, speculative)]
            key = "eos->text spec" if speculative else "eos->text"
            row[key] = f"{statistics.median(lat):.3f}/{max(lat):.3f}" if lat else "-"
    stt.close()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description="speech-to-text benchmark")
    parser.add_argument(
        "--stt", action="append", help="backend:model[:key=value...] (speech.* keys), repeatable"
    )
    parser.add_argument("--live", action="store_true", help="also measure latency in real time")
    parser.add_argument(
        "--context",
        action="store_true",
        help="instead: the whole file vs transcribe before/after reading with context (WER, s/min)",
    )
    parser.add_argument(
        "--language-check",
        action="store_true",
        help="instead: the old vs the new language check (false/true rejections, phantom words)",
    )
    args = parser.parse_args()
    if args.context or args.language_check:
        import bench_stt_context  # scripts/ is on the path: this script's own folder

        only = "context" if not args.language_check else "language" if not args.context else None
        return bench_stt_context.main([] if only is None else ["--only", only])
    specs = args.stt or ["faster_whisper:tiny.en", "faster_whisper:base", "openai_whisper:tiny.en"]
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        all_clips = clips(Path(tmp))
        cpu = vad_cpu(all_clips, config)
        rows = []
        for spec in specs:
            try:
                rows.append(bench(spec, all_clips, config, args.live))
            except PerslmVoiceError as exc:
                print(f"{spec}: skipped ({exc})", file=sys.stderr)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(row.get(c, "").ljust(widths[c]) for c in columns))
    print(f"VAD ({config.vad.backend}) + endpointer: {cpu * 100:.2f} % of one core in real time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
