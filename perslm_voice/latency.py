"""Per-turn latency by stage, from the monotonic timestamps each stored turn carries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

# stage name -> (from mark, to mark); a turn contributes where it has both marks
STAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "stt_ms": (("speech_end",), "transcript_ready"),
    "llm_first_token_ms": (("transcript_ready", "typed"), "first_token"),
    "tts_first_audio_ms": (("first_token",), "first_audio_synthesized"),
    "playback_start_ms": (("first_audio_synthesized",), "first_audio_played"),
    "speech_end_to_first_audio_ms": (("speech_end",), "first_audio_played"),
    "typed_to_first_audio_ms": (("typed",), "first_audio_played"),
    # barge-in: from the VAD's decision that the user speaks to silence, and the decision's delay
    "barge_in_stop_ms": (("barge_in_detected",), "silenced"),
    "barge_in_detection_ms": (("barge_in_speech_start",), "barge_in_detected"),
}
E2E = "speech_end_to_first_audio_ms"


def stage_durations(marks: dict[str, float]) -> dict[str, float]:
    """Milliseconds of each stage this turn went through."""
    out = {}
    for stage, (starts, end) in STAGES.items():
        start = next((marks[s] for s in starts if s in marks), None)
        if start is not None and end in marks:
            # A speculative reply can be ahead of its stage's start (its first token came before
            # the end of speech was confirmed): that stage kept the user waiting 0 ms.
            out[stage] = max(0.0, (marks[end] - start) * 1000.0)
    return out


def _summary(values: list[float]) -> dict[str, float | int]:
    arr = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "n": len(values),
    }


def summarize(turns: Iterable[tuple[str | None, dict[str, float]]]) -> dict[str, Any]:
    """p50/p95 of every stage, over all turns and by backend, from (backend, marks) pairs."""
    overall: dict[str, list[float]] = defaultdict(list)
    by_backend: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    count = 0
    for backend, marks in turns:
        durations = stage_durations(marks)
        if not durations:
            continue
        count += 1
        for stage, ms in durations.items():
            overall[stage].append(ms)
            by_backend[backend or "unknown"][stage].append(ms)
    return {
        "turns": count,
        "stages": {stage: _summary(v) for stage, v in overall.items()},
        E2E: _summary(overall[E2E]) if overall.get(E2E) else None,
        "by_backend": {
            name: {stage: _summary(v) for stage, v in stages.items()}
            for name, stages in by_backend.items()
        },
    }
