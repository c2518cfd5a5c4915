#!/usr/bin/env python
"""Benchmark text-to-speech and playback: time to first audio, real-time factor, cache hits, and
how long sound goes on after stop().

    .venv/bin/python scripts/bench_tts.py                          # every offline backend
    .venv/bin/python scripts/bench_tts.py --backend piper --rate 1.0 --rate 1.5 --buffer 256 --buffer 1024

Each (backend, rate) pair is one row, so configurations are compared in one run. Times are the
median of --repeat runs after one warm-up; "cold" is synthesis, "warm" a cache hit.
Stop-to-silence is measured on SDL's disk audio driver's output: the length of the sound in the
file minus the wall time between the first audio and stop().
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perslm_voice.config import TTSConfig, VoiceSettings  # noqa: E402
from perslm_voice.events import AudioChunk  # noqa: E402
from perslm_voice.tts import CachedTTS, TTSCache, create_tts  # noqa: E402
from perslm_voice.tts.registry import registry  # noqa: E402

SHORT = "Sure, I can do that."  # 5 words
LONG = (
    "The weather today looks mild, with a light breeze from the west and a few clouds. "
    "It should stay dry until the evening, when a little rain may arrive. "
    "If you are going out, a light jacket will be enough. "
    "Tomorrow will be warmer and sunnier, so it is a good day for a walk in the park "
    "or a bike ride along the river."
)  # 60 words
OFFLINE = ("piper", "pyttsx3", "system")


def measure(tts, text: str, voice: VoiceSettings) -> tuple[float, float, float]:
    """(seconds to the first chunk, seconds for all, seconds of audio)."""
    t0 = time.perf_counter()
    first_s = None
    audio_s = 0.0
    for chunk in tts.synthesize(text, voice):
        if first_s is None:
            first_s = time.perf_counter() - t0
        audio_s += len(chunk.samples) / chunk.sample_rate_hz
    return first_s or 0.0, time.perf_counter() - t0, audio_s


def bench_backend(name: str, rate: float, repeat: int) -> list[dict[str, object]]:
    tts = create_tts(TTSConfig(backend=name))
    t0 = time.perf_counter()
    tts.load()
    load_s = time.perf_counter() - t0
    voice = VoiceSettings(rate=rate)
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = CachedTTS(tts, TTSCache(cache_dir, 500 * 1024 * 1024))
        for label, text in (("5 words", SHORT), ("60 words", LONG)):
            measure(tts, text, voice)  # warm-up
            cold = [measure(tts, text, voice) for _ in range(repeat)]
            list(cached.synthesize(text, voice))  # fill the cache
            warm = [measure(cached, text, voice) for _ in range(repeat)]
            first = statistics.median(c[0] for c in cold)
            total = statistics.median(c[1] for c in cold)
            audio = cold[0][2]
            rows.append(
                {
                    "backend": tts.description,
                    "rate": rate,
                    "text": label,
                    "load_ms": load_s * 1000,
                    "first_ms": first * 1000,
                    "rtf": total / audio if audio else float("nan"),
                    "audio_s": audio,
                    "hit_first_ms": statistics.median(w[0] for w in warm) * 1000,
                    "hit_all_ms": statistics.median(w[1] for w in warm) * 1000,
                }
            )
    tts.close()
    return rows


def bench_stop(buffer_samples: int, repeat: int) -> dict[str, float]:
    """Sound after stop(), read from SDL's disk driver output, for one mixer buffer size.

    The disk driver writes the mixer's output from the moment it opens, paced like a device, so
    sample i of the file was output at about t_open + i / rate (scaled by the file's length over
    the wall time it was open, which corrects the driver's pacing drift).
    """
    from perslm_voice.audio.playback import PygamePlayer

    rate_hz = 22050
    tone = (np.cos(2 * np.pi * 440 * np.arange(3 * rate_hz) / rate_hz) * 8000).astype(np.int16) | 1
    tails_ms, starts_ms, calls_ms = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            raw = Path(tmp) / f"out{i}.raw"
            os.environ["SDL_AUDIODRIVER"] = "disk"
            os.environ["SDL_DISKAUDIOFILE"] = str(raw)
            player = PygamePlayer(buffer_samples=buffer_samples, sample_rate_hz=rate_hz)
            started: list[float] = []
            player.follow(on_first_audio=started.append)
            t_open = time.monotonic()
            player.start()
            time.sleep(0.2)
            player.enqueue(AudioChunk(tone, rate_hz, "tone"))
            time.sleep(0.6)
            t_stop = time.monotonic()
            player.stop()
            calls_ms.append((time.monotonic() - t_stop) * 1000)
            time.sleep(0.3)
            player.close()
            t_close = time.monotonic()
            audio = np.fromfile(raw, dtype="<i2")
            scale = (len(audio) / rate_hz) / (t_close - t_open)
            loud = np.flatnonzero(audio)

            # The wall time at which sample i was output.
            sound_start = t_open + loud[0] / rate_hz / scale
            sound_end = t_open + (loud[-1] + 1) / rate_hz / scale
            starts_ms.append((sound_start - started[0]) * 1000)
            tails_ms.append((sound_end - t_stop) * 1000)
    return {
        "buffer": buffer_samples,
        "buffer_ms": buffer_samples / rate_hz * 1000,
        "stop_call_ms": statistics.median(calls_ms),
        "start_ms": statistics.median(starts_ms),
        "tail_ms": statistics.median(tails_ms),
        "tail_max_ms": max(tails_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", help="repeatable; default: the offline ones")
    parser.add_argument("--rate", action="append", type=float, help="repeatable; default 1.0")
    parser.add_argument("--buffer", action="append", type=int, help="mixer buffer in samples")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-stop", action="store_true", help="skip the playback measurement")
    args = parser.parse_args()
    backends = args.backend or [b for b in OFFLINE if registry.available(b)]
    rates = args.rate or [1.0]

    print(f"{'backend':30} {'rate':>4} {'text':>8} {'load ms':>8} {'first ms':>9} {'RTF':>6}"
          f" {'audio s':>8} {'hit first ms':>13} {'hit all ms':>11}")  # fmt: skip
    for name in backends:
        for rate in rates:
            for row in bench_backend(name, rate, args.repeat):
                print(
                    f"{row['backend']:30} {row['rate']:>4} {row['text']:>8} {row['load_ms']:>8.0f}"
                    f" {row['first_ms']:>9.1f} {row['rtf']:>6.3f} {row['audio_s']:>8.2f}"
                    f" {row['hit_first_ms']:>13.2f} {row['hit_all_ms']:>11.2f}"
                )
    if args.no_stop:
        return
    print()
    print(
        f"{'mixer buffer':>12} {'buffer ms':>9} {'stop() call ms':>15} {'play->sound ms':>15}"
        f" {'stop->silence ms':>17} {'max ms':>7}"
    )
    for buffer_samples in args.buffer or [512]:
        r = bench_stop(buffer_samples, args.repeat)
        print(
            f"{r['buffer']:>12} {r['buffer_ms']:>9.1f} {r['stop_call_ms']:>15.2f}"
            f" {r['start_ms']:>15.1f} {r['tail_ms']:>17.1f} {r['tail_max_ms']:>7.1f}"
        )


if __name__ == "__main__":
    main()
