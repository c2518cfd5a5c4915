"""Speech read with its context: the pieces of one turn, or of a file, joined into Whisper windows.

The VAD cuts speech at every pause, and Whisper reading each piece alone has lost what came before:
it is less sure, it guesses words that the sentence would have made plain, and a stretch heard alone
is more often taken for another language. faster-whisper's own ``vad_filter`` joins the speech
chunks into one window and maps the times back; so do we, up to ``WINDOW_S`` of audio a window,
and each word goes to the piece it was said in (``Window.piece_at``).
A longer stretch is read window by window, each with the text before it as Whisper's prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..events import SAMPLE_RATE_HZ, Transcript, TranscriptSegment
from .base import STT

# Whisper reads 30 s at a time; a window keeps 2 s of it free, so that the last word is not cut.
WINDOW_S = 28.0
# Silence put between two pieces that the caller hands over without the pause between them (the
# pieces of a turn): enough for Whisper to hear a boundary, short enough to waste no window.
TURN_GAP_S = 0.3
# The prompt: the end of the text before, as faster-whisper keeps it (it takes the last 223 tokens).
PROMPT_CHARS = 600


@dataclass(frozen=True)
class Placed:
    """Where one piece lies in a window (``offset_s``) and in its source (``source_s``), seconds."""

    index: int  # the piece's position in the caller's sequence
    offset_s: float
    source_s: float
    duration_s: float


@dataclass(frozen=True)
class Window:
    """Pieces of speech joined into one stretch of audio that Whisper reads at once."""

    audio: np.ndarray
    placed: tuple[Placed, ...]

    def piece_at(self, t_s: float) -> Placed:
        """The piece that window time ``t_s`` falls in (or, in a gap, the nearest)."""

        def distance(p: Placed) -> float:
            return max(p.offset_s - t_s, t_s - (p.offset_s + p.duration_s), 0.0)

        return min(self.placed, key=distance)


def plan_windows(
    pieces: Sequence[np.ndarray],
    starts_s: Sequence[float] | None = None,
    *,
    window_s: float = WINDOW_S,
    gap_s: float = TURN_GAP_S,
) -> list[Window]:
    """``pieces`` (16 kHz int16, in order) joined into as few windows of ``window_s`` at most as
    their order allows, ``gap_s`` of silence between two pieces; a piece longer than a window is a
    window alone. ``starts_s``: where each piece begins in its source (default: end to end)."""
    if starts_s is None:
        starts, t = [], 0.0
        for piece in pieces:
            starts.append(t)
            t += len(piece) / SAMPLE_RATE_HZ
        starts_s = starts
    gap = np.zeros(round(gap_s * SAMPLE_RATE_HZ), np.int16)
    windows: list[Window] = []
    chunks: list[np.ndarray] = []
    placed: list[Placed] = []
    offset = 0.0
    for index, (piece, start) in enumerate(zip(pieces, starts_s, strict=True)):
        duration = len(piece) / SAMPLE_RATE_HZ
        if placed and offset + gap_s + duration > window_s:
            windows.append(Window(np.concatenate(chunks), tuple(placed)))
            chunks, placed, offset = [], [], 0.0
        if placed:
            chunks.append(gap)
            offset += len(gap) / SAMPLE_RATE_HZ
        chunks.append(np.asarray(piece, np.int16))
        placed.append(Placed(index, offset, start, duration))
        offset += duration
    if placed:
        windows.append(Window(np.concatenate(chunks), tuple(placed)))
    return windows


def transcribe_turn(
    stt: STT,
    pieces: Sequence[np.ndarray],
    language: str | None = None,
    *,
    user_language: str | None = None,
) -> Transcript:
    """The transcript of one complete turn heard in several pieces (the endpointer's utterances
    that the turn detector joined into one turn, or a monologue cut at ``max_duration``).

    The pieces are read together, ``TURN_GAP_S`` of silence between them, so that each word is
    heard in its sentence: one Whisper window for up to ``WINDOW_S`` of speech, and for a longer
    turn one window after another, each with the text before it as the prompt. The verdict
    (language, confidence, noise) is the turn's as a whole: a turn is answered or not as one.
    Blocking, like ``STT.transcribe``.
    """
    windows = plan_windows([p for p in pieces if len(p)])
    if not windows:
        return stt.transcribe(np.zeros(0, np.int16), language, user_language=user_language)
    results: list[Transcript] = []
    said = ""
    for window in windows:
        result = stt.transcribe(
            window.audio, language, user_language=user_language, prompt=said[-PROMPT_CHARS:] or None
        )
        results.append(result)
        if not result.rejected:
            said = f"{said} {result.text}".strip()
    if len(results) == 1:
        return results[0]
    return _joined(results, windows)


def _joined(results: list[Transcript], windows: list[Window]) -> Transcript:
    """One transcript from the windows of one turn: the words of those taken, segments on the
    turn's clock; rejected only when every window is (then as the first was)."""
    kept = [r for r in results if not r.rejected]
    segments: list[TranscriptSegment] = []
    turn_offset = 0.0
    for result, window in zip(results, windows, strict=True):
        if not result.rejected:
            segments += [_shifted(s, turn_offset) for s in result.segments]
        turn_offset += len(window.audio) / SAMPLE_RATE_HZ
    if not kept:
        first = results[0]
        return Transcript("", first.language, tuple(segments), first.rejected, first.rejected_kind)
    languages = [r.language for r in kept if r.language]
    language = max(set(languages), key=languages.count) if languages else None
    return Transcript(" ".join(r.text for r in kept if r.text), language, tuple(segments))


def _shifted(segment: TranscriptSegment, by_s: float) -> TranscriptSegment:
    return TranscriptSegment(
        segment.text,
        segment.start_s + by_s,
        segment.end_s + by_s,
        segment.no_speech_prob,
        segment.avg_logprob,
        segment.compression_ratio,
        tuple(_shifted(w, by_s) for w in segment.words),
    )
