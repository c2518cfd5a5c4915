"""The echo test room, measured: self-interruptions, phantom user turns and barge-in timings.

Runs recorded conversations through the real CLI with ``--audio-input`` and ``--echo-room`` (the
assistant's voice mixed back into the recording as speakers would) and counts, per configuration:
assistant turns interrupted by nobody (self-interruptions), user turns that are the assistant's own
words (phantom turns), and, for recordings where a person speaks over the reply, whether the reply
was interrupted and how fast (barge-in stop: from the VAD's decision to silence).

    python scripts/bench_echo.py                       # every configuration, 150:0.5
    python scripts/bench_echo.py --room 150:0.8:-45 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "tests" / "audio"
RATE_HZ = 16000

# name -> environment that selects the measure (config keys through PERSLM_VOICE_ variables)
CONFIGS = {
    "strict VAD only": {
        "PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "none",
        "PERSLM_VOICE_AUDIO__ECHO_CHECK": "false",
    },
    "strict VAD + transcript check": {"PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "none"},
    "strict VAD + check + WebRTC AEC": {"PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "webrtc"},
    # With our voice taken out first, a shorter sound can pause the reply (it resumes when the
    # check finds our echo after all): the person's first syllable, not 0.4 s of them.
    "quick pause (0.15 s) + check + WebRTC AEC": {
        "PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "webrtc",
        "PERSLM_VOICE_VAD__SPEAKING_MIN_SPEECH_DURATION": "0.15",
    },
    # AEC3's suppressor lets a person's first syllables through in double talk, then bites: the
    # VAD on its output must decide on those, at the plain threshold.
    "quick pause (0.1 s at P 0.5) + check + WebRTC AEC": {
        "PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "webrtc",
        "PERSLM_VOICE_VAD__SPEAKING_MIN_SPEECH_DURATION": "0.1",
        "PERSLM_VOICE_VAD__SPEAKING_THRESHOLD": "0.5",
    },
    "quick pause (0.15 s at P 0.5) + check + WebRTC AEC": {
        "PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "webrtc",
        "PERSLM_VOICE_VAD__SPEAKING_MIN_SPEECH_DURATION": "0.15",
        "PERSLM_VOICE_VAD__SPEAKING_THRESHOLD": "0.5",
    },
    "quick pause (0.15 s) + check, no AEC": {
        "PERSLM_VOICE_AUDIO__ECHO_CANCELLATION": "none",
        "PERSLM_VOICE_VAD__SPEAKING_MIN_SPEECH_DURATION": "0.15",
    },
}
# name -> (module, install line) of an optional extra the configuration needs: without it the
# configuration is skipped and the line says why, rather than measured without its protection.
AEC = ("pywebrtc_audio", "pip install 'perslm-voice[aec]'")
NEEDS = {name: AEC for name, env in CONFIGS.items() if "webrtc" in env.values()}


def missing_extra(name: str) -> str | None:
    """Why configuration ``name`` cannot run here (its extra is not installed), or None."""
    import importlib.util

    module, install = NEEDS.get(name, (None, ""))
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return f"needs {module}, which is not installed ({install})"


def speech(text: str, out: Path) -> np.ndarray:
    """Piper's voice saying ``text``, as 16 kHz int16."""
    subprocess.run(
        [sys.executable, "-m", "perslm_voice", "say", text, "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return load(out)


def load(path: Path) -> np.ndarray:
    from perslm_voice.audio.resample import resample

    # float, then int16: libsndfile reads a float WAV (the AMI meetings) as int16 without scaling
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = np.clip(data.mean(axis=1) * 32767, -32768, 32767).astype(np.int16)
    return resample(mono, rate, RATE_HZ)


def level_like(samples: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``samples`` scaled so that their active level (frames with sound) is ``reference``'s."""

    def active_rms(x: np.ndarray) -> float:
        frames = x[: len(x) // 512 * 512].astype(np.float64).reshape(-1, 512)
        rms = np.sqrt((frames**2).mean(axis=1))
        return float(np.median(rms[rms > rms.max() * 0.1]))

    gain = active_rms(reference) / active_rms(samples)
    return np.clip(samples * gain, -32768, 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), np.int16)


def voiced_span(samples: np.ndarray) -> tuple[float, float]:
    """(first voiced frame's start, last voiced frame's end) in seconds, as the Silero VAD hears
    ``samples`` alone: where a person's speech truly begins and a question truly ends."""
    from perslm_voice.audio.vad import create_vad
    from perslm_voice.config import VADConfig

    vad = create_vad(VADConfig())
    n = vad.frame_samples
    voiced = [
        i
        for i in range(len(samples) // n)
        if vad.speech_probability(samples[i * n : (i + 1) * n]) >= 0.5
    ]
    return voiced[0] * n / RATE_HZ, (voiced[-1] + 1) * n / RATE_HZ


class Recording(NamedTuple):
    path: Path
    # where the question's speech ends and the person's begins, in seconds of the recording:
    # the person's true onset, for onset -> silence (None: nobody talks over a reply)
    question_end_s: float | None = None
    person_onset_s: float | None = None


def build_recordings(folder: Path) -> dict[str, Recording]:
    question = speech("Tell me a short story about a brave little dragon.", folder / "q.wav")
    second = speech("What is the capital of France?", folder / "q2.wav")
    # vosk_test.wav is recorded 18 dB below Piper's voice: bring the person to the assistant's
    # level (at the microphone a person is about as loud as the speakers; the room then halves it).
    digits = level_like(load(AUDIO / "vosk_test.wav"), question)
    first_group = digits[: int(3.4 * RATE_HZ)]  # "one zero zero zero one", one utterance
    # A reply is at most ~13 s of speech (48 tokens) and starts ~1 s after its question: 16 s of
    # silence after each question leaves the room to the assistant's voice alone.
    listen = silence(16)
    plain = {
        "question, then listen": [silence(0.5), question, listen],
        "three questions": [silence(0.5), question, listen, first_group, listen, second, listen],
    }
    out = {}
    for name, parts in plain.items():
        path = folder / (name.replace(" ", "_").replace(",", "") + ".wav")
        sf.write(str(path), np.concatenate(parts), RATE_HZ)
        out[name] = Recording(path)
    # Real people talking over the reply, at different moments of it (the reply starts about
    # 1-1.5 s after the question ends): the digits, "One, two, three." and a far-field meeting
    # voice (AMI trn09, one woman talking alone from 6.1 s).
    people = {
        "digits": digits,
        "one two three": level_like(load(AUDIO / "english.wav"), question),
        "meeting voice": level_like(load(AUDIO / "ami_trn09.wav")[int(6.1 * RATE_HZ) :], question)[
            : int(6 * RATE_HZ)
        ],
    }
    _, q_end = voiced_span(question)
    for who, after_s in (("digits", 2.5), ("one two three", 3.5), ("meeting voice", 5.0)):
        person = people[who]
        onset, _ = voiced_span(person)
        parts = [silence(0.5), question, silence(after_s), person, silence(6)]
        name = f"{who} over the reply"
        path = folder / (name.replace(" ", "_") + ".wav")
        sf.write(str(path), np.concatenate(parts), RATE_HZ)
        start = 0.5 + len(question) / RATE_HZ + after_s
        out[name] = Recording(path, 0.5 + q_end, start + onset)
    return out


def run(recording: Path, room: str, env: dict[str, str], home: Path) -> list[dict]:
    """One session; the turns it stored."""
    full_env = {**os.environ, "PERSLM_VOICE_HOME": str(home), "SDL_AUDIODRIVER": "dummy", **env}
    # Replies of at most ~12 s: each fits in the silence that follows its question.
    full_env.setdefault("PERSLM_VOICE_LLM__MAX_TOKENS", "48")
    args = ["--user", "bench", "--input-mode", "voice", "--audio-input", str(recording)]
    args += ["--audio-output", str(home / "reply.wav"), "--echo-room", room]
    args += ["--log-level", "info", "--log-file", str(home / "log.txt")]
    result = subprocess.run(
        [sys.executable, "-m", "perslm_voice", *args],
        env=full_env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"session failed: {result.stderr.decode()[-2000:]}")
    with sqlite3.connect(home / "data" / "perslm-voice.db") as db:
        rows = db.execute(
            "SELECT role, text, source, interrupted, heard, timings FROM turns ORDER BY id"
        ).fetchall()
    keys = ("role", "text", "source", "interrupted", "heard", "timings")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def false_pauses(home: Path) -> int:
    """Times the reply paused for a sound and resumed (the check found our echo or no words)."""
    log = home / "log.txt"
    return log.read_text().count("the reply resumes") if log.exists() else 0


# What the people in the recordings say (the person also says digits, heard as figures).
SAID = (
    "Tell me a short story about a brave little dragon. What is the capital of France? "
    "one zero zero zero one nine oh two one oh zero one eight zero three"
)


def is_phantom(user_text: str, replies: list[str]) -> bool:
    """A user turn made mostly of the assistant's earlier words that nobody in the recording
    said (so "What is the capital of friends?" is the person misheard, not our echo)."""
    from perslm_voice.echo import echo_score

    words = [w for w in re.findall(r"[a-z0-9']+", user_text.lower())]
    ours = [
        w
        for w in words
        if not w.isdigit() and echo_score(w, SAID) < 1 and echo_score(w, " ".join(replies)) == 1
    ]
    return bool(words) and len(ours) / len(words) >= 0.5


def true_onset(recording: Recording, marks_of: list[dict[str, float]]) -> float | None:
    """When the person truly began talking over the reply, on the session's clock: the question's
    end of speech as the session marked it places the recording on that clock."""
    ends = [m["speech_end"] for m in marks_of if "speech_end" in m]
    if not ends or recording.question_end_s is None or recording.person_onset_s is None:
        return None
    return min(ends) + (recording.person_onset_s - recording.question_end_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--room", default="150:0.5", help="DELAY_MS:GAIN[:NOISE_DB]")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--config", action="append", choices=list(CONFIGS), help="only these configurations"
    )
    opts = parser.parse_args(argv)
    chosen = {n: env for n, env in CONFIGS.items() if not opts.config or n in opts.config}
    for name in list(chosen):
        why = missing_extra(name)
        if why:
            print(f"{name}: skipped: {why}", flush=True)
            del chosen[name]
    if not chosen:
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-echo-"))
    recordings = build_recordings(folder)
    print(f"echo room {opts.room}; recordings in {folder}")
    for name, env in chosen.items():
        self_interrupted = phantom = barge_ok = barge_total = paused_for_nothing = 0
        stops_ms: list[float] = []
        onsets_ms: list[float] = []  # the person's first voiced frame -> the reply silent
        heard_ms: list[float] = []  # ... from where our VAD heard them begin
        checks_ms: list[float] = []
        for recording_name, recording in recordings.items():
            barge = recording.person_onset_s is not None
            for i in range(opts.runs):
                home = folder / f"home-{abs(hash((name, recording_name, i)))}"
                turns = run(recording.path, opts.room, env, home)
                paused_for_nothing += false_pauses(home)
                # A user turn made of an earlier reply's words (the model may parrot the user).
                phantom += sum(
                    is_phantom(
                        t["text"], [r["text"] for r in turns[:k] if r["role"] == "assistant"]
                    )
                    for k, t in enumerate(turns)
                    if t["role"] == "user"
                )
                marks_of = [json.loads(t["timings"] or "{}") for t in turns]
                for marks in marks_of:
                    if "barge_in_detected" in marks and "silenced" in marks:
                        stops_ms.append((marks["silenced"] - marks["barge_in_detected"]) * 1000)
                    if "barge_in_speech_start" in marks and "silenced" in marks:
                        heard_ms.append((marks["silenced"] - marks["barge_in_speech_start"]) * 1000)
                    if "barge_in_verified" in marks:
                        checks_ms.append(
                            (marks["barge_in_verified"] - marks["barge_in_detected"]) * 1000
                        )
                interrupted = [t for t in turns if t["role"] == "assistant" and t["interrupted"]]
                note = ""
                if barge:  # the person goes on talking: later interruptions may be theirs
                    barge_total += 1
                    barge_ok += bool(interrupted)
                    onset = true_onset(recording, marks_of)
                    silenced = [m["silenced"] for m in marks_of if "silenced" in m]
                    if onset is not None and silenced:
                        onsets_ms.append((min(silenced) - onset) * 1000)
                        note = f" [onset -> silence {onsets_ms[-1]:.0f} ms]"
                else:
                    self_interrupted += len(interrupted)
                print(
                    f"  {name} | {recording_name} #{i}: "
                    + "; ".join(
                        f"{t['role']}{'*' if t['interrupted'] else ''}: {t['text'][:60]!r}"
                        for t in turns
                    )
                    + note,
                    flush=True,
                )

        def pct(values: list[float], q: int) -> str:
            return f"{np.percentile(values, q):.0f}" if values else "-"

        print(
            f"{name}: self-interruptions {self_interrupted}, phantom turns {phantom}, "
            f"paused and resumed {paused_for_nothing}, "
            f"barge-in {barge_ok}/{barge_total}, onset -> silence ms p50 {pct(onsets_ms, 50)} "
            f"p95 {pct(onsets_ms, 95)} (from the VAD's onset p50 {pct(heard_ms, 50)} "
            f"p95 {pct(heard_ms, 95)}), stop ms p50 {pct(stops_ms, 50)} "
            f"p95 {pct(stops_ms, 95)}, check ms p50 {pct(checks_ms, 50)} p95 {pct(checks_ms, 95)}"
        )


if __name__ == "__main__":
    main()
