"""What the speakers played, on the microphone's timeline: the words (`SpokenLog`) and the sound
(`EchoReference`, and `remove_echo`, which takes our voice out of what the microphone heard)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..audio.resample import resample
from ..events import SAMPLE_RATE_HZ, AudioChunk
from .rules import (
    ECHO_FIT_BLOCK,
    ECHO_FIT_TAPS,
    ECHO_MAX_DELAY_S,
    ECHO_MIN_SAMPLES,
    ECHO_TAIL_S,
    ECHO_WINDOW_S,
    REFERENCE_KEEP_S,
    is_our_echo,
)

log = logging.getLogger(__name__)


@dataclass
class _Played:
    text: str
    t_start: float
    t_end: float


class SpokenLog:
    """What the player played lately, with when: the text an echo can be made of (thread-safe)."""

    def __init__(self, window_s: float = ECHO_WINDOW_S):
        self.window_s = window_s
        self._items: deque[_Played] = deque()
        self._lock = threading.Lock()

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        """Player hook: ``chunk`` started playing at ``t_start``."""
        t_end = t_start + len(chunk.samples) / chunk.sample_rate_hz
        with self._lock:
            if (
                self._items
                and self._items[-1].text == chunk.text
                and t_start < self._items[-1].t_end
            ):
                self._items[-1].t_end = t_end  # the rest of a chunk after resume()
            else:
                self._items.append(_Played(chunk.text, t_start, t_end))

    def silenced(self, t: float) -> None:
        """Player hook: the output went quiet at ``t``."""
        with self._lock:
            for item in self._items:
                item.t_end = min(item.t_end, t)

    def recent_text(self, now: float | None = None) -> str:
        """The text played in the last ``window_s`` seconds (or still playing)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._items and self._items[0].t_end < now - self.window_s:
                self._items.popleft()
            return " ".join(i.text for i in self._items if i.t_start <= now)

    def echo_source(self, t_speech_start: float, tail_s: float = ECHO_TAIL_S) -> str:
        """What speech that began at ``t_speech_start`` may be an echo of: the recent text, or ""
        when nothing was audible from ``tail_s`` before it until now (a user who repeats our
        words after we finished is not our echo)."""
        if not self.audible_since(t_speech_start - tail_s):
            return ""
        return self.recent_text()

    def audible_since(self, t: float) -> bool:
        """Something was audible at some point from ``t`` until now (its echo may be in the mic)."""
        now = time.monotonic()
        with self._lock:
            return any(i.t_end >= t and i.t_start <= now for i in self._items)


class _Reference:
    """The played sound on a monotonic timeline at 16 kHz: what the canceller subtracts."""

    def __init__(self) -> None:
        self._segments: list[tuple[float, np.ndarray]] = []  # (t_start, int16 16 kHz)
        self._lock = threading.Lock()

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        samples = resample(chunk.samples, chunk.sample_rate_hz, SAMPLE_RATE_HZ)
        with self._lock:
            self._segments.append((t_start, samples))

    def silenced(self, t: float) -> None:
        with self._lock:
            cut = []
            for start, samples in self._segments:
                keep = max(0, round((t - start) * SAMPLE_RATE_HZ))
                if keep:
                    cut.append((start, samples[:keep]))
            self._segments = cut

    def render(self, t0: float, n: int, keep: bool = False) -> np.ndarray:
        """The ``n`` samples that were playing from ``t0`` on (zeros where nothing played)."""
        out = np.zeros(n, np.float32)
        with self._lock:
            # Segments that ended well before t0 are done with: frames arrive in time order.
            horizon = t0 - (REFERENCE_KEEP_S if keep else 1.0)
            self._segments = [
                (s, x) for s, x in self._segments if s + len(x) / SAMPLE_RATE_HZ > horizon
            ]
            for start, samples in self._segments:
                offset = round((t0 - start) * SAMPLE_RATE_HZ)
                lo, hi = max(0, offset), min(len(samples), offset + n)
                if lo < hi:
                    out[lo - offset : hi - offset] += samples[lo:hi]
        return np.clip(out, -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class EchoFit:
    """One block's fit: the delay of the filter's first tap (seconds from played to heard) and
    the filter (taps, first tap first)."""

    delay_s: float
    weights: np.ndarray


def remove_echo(
    mic: np.ndarray,
    played: np.ndarray,
    taps: int = ECHO_FIT_TAPS,
    block: int = ECHO_FIT_BLOCK,
    fits: list[EchoFit] | None = None,
) -> np.ndarray:
    """``mic`` less the part of it that ``played`` explains: a person talking over our voice, with
    our voice taken out (float64). ``played`` is what the speakers played from
    ``ECHO_MAX_DELAY_S`` before ``mic``'s first sample to its last (``len(mic) + lag`` samples).

    Each ``block`` of ``mic`` is fitted on its own: the echo's delay is the lag of the strongest
    cross-correlation, and a short filter around it (least squares) stands for the speakers and
    the room's first reflections. Fitting blocks apart follows a delay that moves between the
    pieces we played (each is timed by its own hook). A person's voice does not correlate with
    ours, so the fit leaves it in. A reverberant room leaves more of our voice, so the share of
    sound left can only say "echo" when it is sure; the transcript check decides the rest.
    ``fits``, when given, gets each block's fit.
    """
    x = mic.astype(np.float64)
    ref = played.astype(np.float64)
    lag_max = len(ref) - len(x)
    if lag_max < 0:
        raise ValueError("played must cover mic and the longest delay")
    pieces = max(1, round(len(x) / block))
    edges = np.linspace(0, len(x), pieces + 1).astype(int)
    return np.concatenate(
        [
            _fit_block(x[lo:hi], ref[lo : hi + lag_max], taps, fits)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
    )


def _fit_block(
    x: np.ndarray, ref: np.ndarray, taps: int, fits: list[EchoFit] | None = None
) -> np.ndarray:
    """What is left of ``x`` when ``ref`` (``len(x) + lags`` samples), delayed and filtered at its
    best lag, is taken away."""
    if not len(x) or float(x @ x) <= 0.0 or float(ref @ ref) <= 0.0:
        return x
    lags = len(ref) - len(x) + 1
    size = 1 << int(np.ceil(np.log2(len(ref) + len(x))))
    corr = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(x, size)), size)[:lags]
    # Normalized by the reference's energy at each lag: raw, a loud vowel of ours elsewhere in
    # the window outscores the true delay of a quieter stretch ("far, far away": 2 checks in 10
    # on our pure echo fitted the wrong lag and called it 90 % someone else).
    energy = np.concatenate([[0.0], np.cumsum(ref * ref)])
    at_lag = energy[len(x) : len(x) + lags] - energy[:lags]
    best = int(np.argmax(np.abs(corr) / np.sqrt(np.maximum(at_lag, 1e-9 * energy[-1] + 1e-12))))
    lo, hi = max(0, best - taps // 2), min(lags, best + taps // 2)
    shifted = np.lib.stride_tricks.sliding_window_view(ref[lo : hi - 1 + len(x)], len(x))
    # Least squares through the normal equations (taps x taps), with a whisper of ridge for
    # a reference too plain to pin every tap down.
    gram = shifted @ shifted.T
    trace = float(gram.trace())
    if trace <= 0.0:  # nothing was playing at any of these delays
        return x
    gram[np.diag_indices_from(gram)] += trace * 1e-9
    try:
        weights = np.linalg.solve(gram, shifted @ x)
    except np.linalg.LinAlgError:
        return x
    if fits is not None:
        fits.append(EchoFit(ECHO_MAX_DELAY_S - lo / SAMPLE_RATE_HZ, weights))
    return x - weights @ shifted


class EchoReference:
    """What the speakers played lately, on the microphone's timeline: for ``remove_echo``."""

    def __init__(self) -> None:
        self._reference = _Reference()
        self._fit: EchoFit | None = None  # the last fit ``separate`` made: the room, lately

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        self._reference.played(chunk, t_start)

    def silenced(self, t: float) -> None:
        self._reference.silenced(t)

    def _played_under(self, mic: np.ndarray, t0: float) -> np.ndarray:
        lag = round(ECHO_MAX_DELAY_S * SAMPLE_RATE_HZ)
        return self._reference.render(t0 - ECHO_MAX_DELAY_S, len(mic) + lag, keep=True)

    def explains(self, mic: np.ndarray, t0: float) -> bool:
        """True when ``mic`` (captured from monotonic time ``t0`` on) is our own echo."""
        if len(mic) < ECHO_MIN_SAMPLES:
            return False
        return is_our_echo(len(mic), self.separate(mic, t0)[1])

    def share_not_ours(self, mic: np.ndarray, t0: float) -> float | None:
        """The share of ``mic``'s energy that is not our voice, through the room as the last
        ``separate`` found it (its delay and filter): a fraction of a millisecond, where a new
        fit costs tens, for listening every 0.1 s while we talk. A new fit when there is none."""
        fit = self._fit
        if fit is None:
            return self.separate(mic, t0)[1]
        taps = len(fit.weights)
        played = self._reference.render(t0 - fit.delay_s, len(mic) + taps - 1, keep=True)
        x = mic.astype(np.float64)
        energy = float(x @ x)
        if energy <= 0.0 or not np.any(played):
            return None
        shifted = np.lib.stride_tricks.sliding_window_view(played.astype(np.float64), len(x))
        rest = x - fit.weights @ shifted[:taps]
        return min(1.0, float(rest @ rest) / energy)

    def separate(self, mic: np.ndarray, t0: float) -> tuple[np.ndarray, float | None]:
        """``mic`` (int16, captured from ``t0`` on) with our voice taken out, and the share of its
        energy that is not our voice; (``mic``, None) when nothing we played can be in it."""
        played = self._played_under(mic, t0)
        x = mic.astype(np.float64)
        energy = float(x @ x)
        if energy <= 0.0 or not np.any(played):
            return mic, None
        fits: list[EchoFit] = []
        rest = remove_echo(x, played, fits=fits)
        if fits:
            self._fit = fits[-1]
        share = min(1.0, float(rest @ rest) / energy)
        log.debug(
            "echo: %.0f %% of the sound is not our voice (%.1f s)",
            share * 100,
            len(mic) / SAMPLE_RATE_HZ,
        )
        return np.clip(np.round(rest), -32768, 32767).astype(np.int16), share
