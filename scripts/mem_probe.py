"""Which native library keeps growing? One voice component at a time, called in a loop.

Each run loads one component as the app does (the project's own classes) and calls it many times
on real speech of varying length (``tests/audio``), printing the resident memory (VmRSS), the
anonymous part of it, glibc's heap in use and free (``mallinfo2``) and the time per call every
``--every`` calls. The first report is taken after ``--warm`` calls (every buffer sized once).

    python scripts/mem_probe.py stt --iters 300          # Whisper tiny.en, 0.5-10 s utterances
    python scripts/mem_probe.py lang --iters 300         # the base model's language check
    python scripts/mem_probe.py turn --iters 300         # both, as a voice turn reads them
    python scripts/mem_probe.py vad --iters 300          # Silero, frame by frame
    python scripts/mem_probe.py tts --iters 200          # Piper, sentences of 1-30 words
    python scripts/mem_probe.py echo --iters 300         # the echo check (and AEC3 when installed)

Remedies are tried from outside (environment variables such as ONEDNN_PRIMITIVE_CACHE_CAPACITY or
MKL_DISABLE_FAST_MM, which must be set before the library loads) or with ``--trim`` (malloc_trim
before each report: what glibc holds free is not counted).
"""

from __future__ import annotations

import argparse
import ctypes
import random
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "tests" / "audio"
RATE_HZ = 16000

_libc = ctypes.CDLL("libc.so.6")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc.mallinfo2.restype = _Mallinfo2


def memory() -> dict[str, float]:
    """MB: resident, anonymous resident, glibc's heap in use and free (all arenas), glibc's
    mmapped blocks (and their count: allocations over the mmap threshold)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    info = _libc.mallinfo2()
    mb = 1024 * 1024
    return {
        "rss": int(fields["VmRSS"].split()[0]) / 1024,
        "anon": int(fields["RssAnon"].split()[0]) / 1024,
        "used": info.uordblks / mb,
        "free": info.fordblks / mb,
        "mmap": info.hblkhd / mb,
        "nmmap": float(info.hblks),
    }


def speech() -> np.ndarray:
    """Real English speech at 16 kHz int16, end to end: the AMI meeting, the digits, 'one two
    three'."""
    from perslm_voice.audio.resample import resample

    parts = []
    for name in ("ami_trn08.wav", "vosk_test.wav", "english.wav", "ami_trn09.wav"):
        data, rate = sf.read(str(AUDIO / name), dtype="float32", always_2d=True)
        mono = (data.mean(axis=1) * 32767).astype(np.int16)
        parts.append(resample(mono, rate, RATE_HZ) if rate != RATE_HZ else mono)
    return np.concatenate(parts)


def clips(rng: random.Random, low_s: float, high_s: float):  # type: ignore[no-untyped-def]
    audio = speech()
    while True:
        n = int(rng.uniform(low_s, high_s) * RATE_HZ)
        start = rng.randrange(0, len(audio) - n)
        yield audio[start : start + n]


def speech_config(**over):  # type: ignore[no-untyped-def]
    from perslm_voice.config import Config

    return Config().speech.model_copy(update=over)


def probe_stt(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Whisper tiny.en through FasterWhisperSTT.transcribe (10 s context window, the full window
    when that one is doubtful), language check off: 0.5-10 s of speech."""
    from perslm_voice.stt import create_stt

    stt = create_stt(speech_config(language_check_model=None))
    stt.load()
    source = clips(rng, opts.low, opts.high)
    return lambda: stt.transcribe(next(source), None, user_language="en")


def probe_turn(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A voice turn as the session reads it: FasterWhisperSTT.transcribe with the default
    configuration (tiny.en, and the base model's language check on doubtful transcripts)."""
    from perslm_voice.stt import create_stt

    stt = create_stt(speech_config())
    stt.load()
    source = clips(rng, opts.low, opts.high)
    return lambda: stt.transcribe(next(source), None, user_language="en")


def probe_lang(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The base model's language check (FasterWhisperSTT._other_language): the reading as heard
    and the one with 8 s of silence after, on 0.5-10 s of speech."""
    from perslm_voice.stt import create_stt

    stt = create_stt(speech_config())
    stt.load()
    assert stt.language_check, "the base model is not installed"
    source = clips(rng, opts.low, opts.high)

    def call() -> None:
        audio = next(source).astype(np.float32) / 32768.0
        stt._quick_language(audio)
        stt._quick_language(audio, 8.0)

    return call


def probe_vad(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Silero as the endpointer drives it: 32 ms frames, one utterance (0.5-10 s) per call."""
    from perslm_voice.audio.vad import SileroVAD

    vad = SileroVAD()
    source = clips(rng, opts.low, opts.high)

    def call() -> None:
        audio = next(source)
        for i in range(0, len(audio) - vad.frame_samples, vad.frame_samples):
            vad.speech_probability(audio[i : i + vad.frame_samples])
        vad.reset()

    return call


WORDS = (
    "the sky is blue because air scatters short waves of sunlight more than long ones so we "
    "see blue from every direction while the sun itself looks yellow and at sunset the light "
    "crosses more air and the reds are left"
).split()


def probe_tts(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Piper through PiperTTS.synthesize: one sentence of 1-30 words per call."""
    from perslm_voice.config import Config
    from perslm_voice.tts.piper import PiperTTS

    config = Config().tts
    tts = PiperTTS(config)
    tts.load()

    def call() -> None:
        n = rng.randint(1, 30)
        start = rng.randrange(0, len(WORDS) - n)
        text = " ".join(WORDS[start : start + n]).capitalize() + "."
        for _ in tts.synthesize(text, config.voice):
            pass

    return call


def probe_echo(rng: random.Random, opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The echo check (EchoReference.separate: what was played fitted to the microphone and
    taken out) on 0.5-10 s, and WebRTC AEC3 on the same frames when pywebrtc-audio is there."""
    from perslm_voice.echo import EchoReference, aec_available
    from perslm_voice.events import AudioChunk, AudioFrame

    source = clips(rng, opts.low, opts.high)
    canceller = None
    if aec_available():
        from perslm_voice.echo import EchoCanceller

        canceller = EchoCanceller()
    clock = [1000.0]

    def call() -> None:
        played = next(source)
        t0 = clock[0]
        reference = EchoReference()
        reference.played(AudioChunk(samples=played, sample_rate_hz=RATE_HZ, text="x"), t0)
        delay = rng.randint(0, 4000)
        mic = np.zeros(len(played) + delay, np.int16)
        mic[delay:] = (played * 0.5).astype(np.int16)
        person = next(source)[: len(mic)]
        mic[: len(person)] += (person * 0.3).astype(np.int16)
        reference.separate(mic, t0)
        if canceller is not None:
            canceller.played(AudioChunk(samples=played, sample_rate_hz=RATE_HZ, text="x"), t0)
            for i in range(0, len(mic) - 512, 512):
                canceller.process(AudioFrame(mic[i : i + 512], t0 + (i + 512) / RATE_HZ))
        clock[0] += len(mic) / RATE_HZ + 1.0

    return call


def ort_options(changes: list[str]) -> None:
    """Every onnxruntime session created from now on gets these options (a remedy to try)."""
    import onnxruntime

    class Options(onnxruntime.SessionOptions):
        def __init__(self) -> None:
            super().__init__()
            if "no-arena" in changes:
                self.enable_cpu_mem_arena = False
            if "no-pattern" in changes:
                self.enable_mem_pattern = False

    onnxruntime.SessionOptions = Options


PROBES = {
    "stt": probe_stt,
    "turn": probe_turn,
    "lang": probe_lang,
    "vad": probe_vad,
    "tts": probe_tts,
    "echo": probe_echo,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("component", choices=sorted(PROBES))
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--warm", type=int, default=20, help="calls before the first report")
    parser.add_argument("--low", type=float, default=0.5, help="shortest input, s")
    parser.add_argument("--high", type=float, default=10.0, help="longest input, s")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) before each report")
    parser.add_argument("--ort", default="", help="onnxruntime options: no-arena, no-pattern")
    opts = parser.parse_args()
    if opts.ort:
        ort_options(opts.ort.split(","))

    rng = random.Random(opts.seed)
    call = PROBES[opts.component](rng, opts)
    for _ in range(opts.warm):
        call()
    if opts.trim:
        _libc.malloc_trim(0)
    first = memory()
    print(f"{opts.component}: after {opts.warm} warm-up calls: " + fmt(first), flush=True)
    spent = cpu = 0.0
    for i in range(1, opts.iters + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        spent += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        if i % opts.every == 0 or i == opts.iters:
            if opts.trim:
                _libc.malloc_trim(0)
            now = memory()
            print(
                f"  {i:5d} calls: {fmt(now)}  {1000 * spent / i:7.1f} ms/call"
                f" ({1000 * cpu / i:.1f} ms CPU)",
                flush=True,
            )
    last = memory()
    grew = {k: last[k] - first[k] for k in first}
    print(
        f"{opts.component}: grew {grew['rss']:+.1f} MB resident ({grew['anon']:+.1f} anon,"
        f" glibc used {grew['used']:+.1f}, free {grew['free']:+.1f}, mmapped {grew['mmap']:+.1f}"
        f" in {grew['nmmap']:+.0f}) over {opts.iters} calls,"
        f" {1000 * spent / opts.iters:.1f} ms/call ({1000 * cpu / opts.iters:.1f} ms CPU)"
    )
    return 0


def fmt(m: dict[str, float]) -> str:
    return (
        f"rss {m['rss']:7.1f}  anon {m['anon']:7.1f}  glibc used {m['used']:7.1f}"
        f"  free {m['free']:6.1f}  mmapped {m['mmap']:7.1f} MB in {m['nmmap']:4.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
