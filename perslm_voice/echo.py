"""The assistant must not hear itself: echo cancellation, the echo check, and the echo test room.

With speakers instead of headphones the microphone hears the assistant's own voice. Three measures,
each following the sound through the player's ``on_play``/``on_silence`` hooks:

- `EchoCanceller`: WebRTC's acoustic echo canceller (AEC3, from the ``livekit`` package) removes
  the played voice from the microphone's frames before the VAD sees them.
- `SpokenLog` + `echo_score`: what was played in the last seconds, and how much of a candidate
  transcript is made of those words; a voice turn that is mostly the assistant's own words is
  dropped, and a barge-in candidate that is is not taken as one.
- `EchoRoom` (`--echo-room DELAY_MS:GAIN[:NOISE_DB]`, for tests): the file source hears the
  assistant's output as it is played, delayed and attenuated, with optional white noise.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio.capture import FileSource
from .audio.playback import Player
from .errors import BackendUnavailable, UsageError
from .events import SAMPLE_RATE_HZ, AudioChunk, AudioFrame
from .tts.base import resample

log = logging.getLogger(__name__)

ECHO_SCORE_MIN = 0.5  # a candidate with this share of the assistant's recent words is echo
WORD_MATCH_MIN = (
    0.7  # difflib ratio at which a misheard word still counts ("brimstone": "brentstone")
)
ECHO_WINDOW_S = 10.0  # how far back played speech may come back as echo (room delay included)
ECHO_TAIL_S = 1.0  # after this long without playing, no echo of ours can still be arriving
REFERENCE_KEEP_S = 60.0  # what was played is kept this long, for the echo measure and removal
ECHO_MAX_DELAY_S = 0.5  # the longest speakers-to-microphone delay the echo measure looks for
ECHO_FIT_TAPS = 32  # the filter that stands for speakers and room (2 ms at 16 kHz)
ECHO_FIT_BLOCK = SAMPLE_RATE_HZ // 4  # each quarter second is fitted with its own delay
ECHO_RESIDUAL_MAX = 0.3  # sound that our voice explains but for this share is our echo
ECHO_MIN_SAMPLES = SAMPLE_RATE_HZ // 10  # the sound check says "echo" on 0.1 s of sound or more
SOMEONE_ELSE_MIN = 0.5  # sound more than half of which is not our voice is someone talking
WORD_MATCH_MIN_LEN = 5  # shorter words count as ours only when spelled the same ("one": "once")
AEC_BLOCK = SAMPLE_RATE_HZ // 100  # WebRTC's audio processing works on 10 ms blocks
AEC_INSTALL = "pip install 'perslm-voice[aec]'  (or: pip install livekit)"

PlayHook = Callable[[AudioChunk, float], None]
SilenceHook = Callable[[float], None]


# --- the echo check -------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _matched(candidate: str, spoken: str) -> tuple[int, int]:
    """(words of ``candidate`` found in ``spoken``, misheard ones included; all its words)."""
    words = _words(candidate)
    vocabulary = set(_words(spoken))
    matched = sum(
        1
        for word in words
        if word in vocabulary
        or (
            len(word) >= WORD_MATCH_MIN_LEN
            and difflib.get_close_matches(word, vocabulary, 1, WORD_MATCH_MIN)
        )
    )
    return matched, len(words)


def echo_score(candidate: str, spoken: str) -> float:
    """The share (0-1) of ``candidate``'s words that are words of ``spoken``, misheard ones included.

    Speech-to-text of the assistant's own voice coming back through the room is rarely exact
    ("Paris" heard as "Perris"), so a word counts when difflib finds it close enough.
    """
    matched, total = _matched(candidate, spoken)
    return matched / total if total else 0.0


def new_words(candidate: str, spoken: str) -> int:
    """How many of ``candidate``'s words are not (even misheard) words of ``spoken``."""
    matched, total = _matched(candidate, spoken)
    return total - matched


def is_echo(candidate: str, spoken: str) -> bool:
    """True when ``candidate`` is mostly made of the assistant's ``spoken`` words."""
    return echo_score(candidate, spoken) >= ECHO_SCORE_MIN


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


def follow_player(player: Player, on_play: PlayHook, on_silence: SilenceHook) -> None:
    """Add ``on_play``/``on_silence`` to the player's hooks, keeping those already set."""
    previous_play, previous_silence = player.on_play, player.on_silence

    def play(chunk: AudioChunk, t_start: float) -> None:
        if previous_play is not None:
            previous_play(chunk, t_start)
        on_play(chunk, t_start)

    def silence(t: float) -> None:
        if previous_silence is not None:
            previous_silence(t)
        on_silence(t)

    player.on_play, player.on_silence = play, silence


# --- acoustic echo cancellation ----------------------------------------------------------------


def aec_available() -> bool:
    return importlib.util.find_spec("livekit") is not None


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


def remove_echo(
    mic: np.ndarray, played: np.ndarray, taps: int = ECHO_FIT_TAPS, block: int = ECHO_FIT_BLOCK
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
            _fit_block(x[lo:hi], ref[lo : hi + lag_max], taps)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
    )


def _fit_block(x: np.ndarray, ref: np.ndarray, taps: int) -> np.ndarray:
    """What is left of ``x`` when ``ref`` (``len(x) + lags`` samples), delayed and filtered at its
    best lag, is taken away."""
    if not len(x) or float(x @ x) <= 0.0 or float(ref @ ref) <= 0.0:
        return x
    lags = len(ref) - len(x) + 1
    size = 1 << int(np.ceil(np.log2(len(ref) + len(x))))
    corr = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(x, size)), size)[:lags]
    best = int(np.argmax(np.abs(corr)))
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
    return x - weights @ shifted


def is_our_echo(samples: int, not_ours: float | None) -> bool:
    """Sound of ``samples`` samples, ``not_ours`` of whose energy our voice does not explain (None:
    nothing we played could be in it), is our own echo."""
    return samples >= ECHO_MIN_SAMPLES and not_ours is not None and not_ours < ECHO_RESIDUAL_MAX


class EchoReference:
    """What the speakers played lately, on the microphone's timeline: for ``remove_echo``."""

    def __init__(self) -> None:
        self._reference = _Reference()

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

    def separate(self, mic: np.ndarray, t0: float) -> tuple[np.ndarray, float | None]:
        """``mic`` (int16, captured from ``t0`` on) with our voice taken out, and the share of its
        energy that is not our voice; (``mic``, None) when nothing we played can be in it."""
        played = self._played_under(mic, t0)
        x = mic.astype(np.float64)
        energy = float(x @ x)
        if energy <= 0.0 or not np.any(played):
            return mic, None
        rest = remove_echo(x, played)
        share = min(1.0, float(rest @ rest) / energy)
        log.debug(
            "echo: %.0f %% of the sound is not our voice (%.1f s)",
            share * 100,
            len(mic) / SAMPLE_RATE_HZ,
        )
        return np.clip(np.round(rest), -32768, 32767).astype(np.int16), share


class EchoCanceller:
    """WebRTC AEC3 (through ``livekit.rtc.AudioProcessingModule``) on the listener's frames.

    ``played``/``silenced`` follow the player; ``process`` takes a 32 ms microphone frame and
    returns it with the echo of what was played removed. The canceller estimates the room's delay
    itself; the output lags the input by 10 ms (WebRTC works on 10 ms blocks).
    """

    description = "WebRTC echo cancellation"

    def __init__(self) -> None:
        if not aec_available():
            raise BackendUnavailable(f"echo cancellation needs livekit: {AEC_INSTALL}")
        from livekit import rtc

        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self.reference = _Reference()
        self._in = np.zeros(0, np.int16)
        self._out = np.zeros(AEC_BLOCK, np.int16)  # primed: every frame finds 512 samples ready
        self._t_in = 0.0  # monotonic time of self._in[0]

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        self.reference.played(chunk, t_start)

    def silenced(self, t: float) -> None:
        self.reference.silenced(t)

    def _block(self, data: np.ndarray) -> Any:
        return self._rtc.AudioFrame(data.tobytes(), SAMPLE_RATE_HZ, 1, AEC_BLOCK)

    def process(self, frame: AudioFrame) -> AudioFrame:
        n = len(frame.samples)
        t_frame = frame.t_capture - n / SAMPLE_RATE_HZ
        if not len(self._in):
            self._t_in = t_frame
        self._in = np.concatenate([self._in, frame.samples.astype(np.int16)])
        blocks = []
        while len(self._in) >= AEC_BLOCK:
            near, self._in = self._in[:AEC_BLOCK], self._in[AEC_BLOCK:]
            far = self._block(self.reference.render(self._t_in, AEC_BLOCK))
            self._apm.process_reverse_stream(far)
            mic = self._block(np.ascontiguousarray(near))
            self._apm.set_stream_delay_ms(0)  # AEC3 finds the room's delay itself
            self._apm.process_stream(mic)
            blocks.append(np.frombuffer(bytes(mic.data), np.int16))
            self._t_in += AEC_BLOCK / SAMPLE_RATE_HZ
        self._out = np.concatenate([self._out, *blocks])
        out, self._out = self._out[:n], self._out[n:]
        return AudioFrame(out.copy(), frame.t_capture)


def open_canceller(mode: str) -> EchoCanceller | None:
    """The canceller for ``audio.echo_cancellation`` ("none" or "webrtc").

    Not the default: in the echo room AEC3 removes the echo entirely but also suppresses a person
    who talks over the reply (double talk), so barge-in by voice fails (see scripts/bench_echo.py).
    """
    return EchoCanceller() if mode == "webrtc" else None


# --- the echo test room ------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoRoomSpec:
    """``--echo-room DELAY_MS:GAIN[:NOISE_DB]``: how the room returns the voice to the microphone."""

    delay_ms: float
    gain: float
    noise_dbfs: float | None = None

    @classmethod
    def parse(cls, text: str) -> EchoRoomSpec:
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            delay_ms, gain = float(parts[0]), float(parts[1])
            noise = float(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise UsageError(
                f"--echo-room {text!r}: expected DELAY_MS:GAIN[:NOISE_DB], e.g. 150:0.5:-50"
            ) from None
        if not 0 <= delay_ms <= 2000 or not 0 <= gain <= 4 or (noise is not None and noise > 0):
            raise UsageError(
                f"--echo-room {text!r}: the delay is 0-2000 ms, the gain 0-4, the noise <= 0 dBFS"
            )
        return cls(delay_ms, gain, noise)


class EchoRoom:
    """Plays the assistant's output back into a `FileSource`, as a room would into a microphone."""

    def __init__(self, spec: EchoRoomSpec, source: FileSource):
        self.spec = spec
        self.source = source
        if spec.noise_dbfs is not None:
            source.noise_rms = 32768.0 * 10 ** (spec.noise_dbfs / 20)

    @property
    def description(self) -> str:
        noise = f", noise {self.spec.noise_dbfs:g} dBFS" if self.spec.noise_dbfs is not None else ""
        return f"echo room: {self.spec.delay_ms:g} ms, gain {self.spec.gain:g}{noise}"

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        samples = resample(chunk.samples, chunk.sample_rate_hz, SAMPLE_RATE_HZ)
        # The hook may come a little after the chunk started: the echo is due from t_start on.
        delay_s = self.spec.delay_ms / 1000 + (t_start - time.monotonic())
        skip = max(0, round(-delay_s * SAMPLE_RATE_HZ))
        self.source.add_echo(samples[skip:], max(0.0, delay_s), self.spec.gain)

    def silenced(self, t: float) -> None:
        self.source.cut_echoes(self.spec.delay_ms / 1000 + (t - time.monotonic()))

    def attach(self, player: Player) -> None:
        follow_player(player, self.played, self.silenced)
