"""The audio output a session speaks through: play, pause, resume, stop, and what was heard.

A pygame player (playback.py), a WAV file (wav_sink.py) and a network client are interchangeable
behind `Player`. Each takes ``AudioChunk``s from any thread, plays them back to back and can be
silenced at once; ``stop()`` reports the text actually heard (whole chunks played, plus the words
of the chunk cut mid-way in proportion to the samples played).
"""

from __future__ import annotations

import concurrent.futures
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import AudioChunk

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE_HZ = 22050  # Piper's and espeak-ng's rate: their chunks need no resampling
STOP_REPLY_TIMEOUT_S = 2.0

PlayHook = Callable[[AudioChunk, float], None]
SilenceHook = Callable[[float], None]
FirstAudioHook = Callable[[float], None]


def heard_part(text: str, fraction: float) -> str:
    """The words of ``text`` heard when ``fraction`` of its audio played (whole words only)."""
    words = text.split()
    return " ".join(words[: int(len(words) * min(1.0, max(0.0, fraction)))])


class Player(ABC):
    """Plays audio chunks back to back; one utterance after another.

    Whoever needs to follow the sound registers with ``follow()`` (the session, the echo
    measures, the echo test room), and is called on the player's thread, so it must return
    quickly and not call the player (hand over with ``loop.call_soon_threadsafe``):

    - ``on_first_audio(t)``: an utterance's first audio was handed to the output at monotonic
      time ``t`` (the mixer starts it within one buffer);
    - ``on_play(chunk, t_start)``: a chunk starts to sound, with its samples at the output rate and
      the time of its first sample; after ``resume()`` again with what is left of the chunk cut by
      ``pause()``;
    - ``on_silence(t)``: ``stop()`` or ``pause()`` cut the output at ``t``: what ``on_play``
      announced after ``t`` was not played.
    """

    def __init__(self) -> None:
        self._on_play: list[PlayHook] = []
        self._on_silence: list[SilenceHook] = []
        self._on_first_audio: list[FirstAudioHook] = []

    def follow(
        self,
        on_play: PlayHook | None = None,
        on_silence: SilenceHook | None = None,
        on_first_audio: FirstAudioHook | None = None,
    ) -> None:
        """Be told what the output plays (see the class docstring); hooks add up."""
        if on_play is not None:
            self._on_play.append(on_play)
        if on_silence is not None:
            self._on_silence.append(on_silence)
        if on_first_audio is not None:
            self._on_first_audio.append(on_first_audio)

    @abstractmethod
    def start(self) -> None:
        """Open the output; AudioError when it cannot be used."""

    @abstractmethod
    def enqueue(self, chunk: AudioChunk) -> None:
        """Queue a chunk to play after those already queued (returns at once)."""

    @abstractmethod
    def stop(self) -> str:
        """Silence the output, drop what is queued, and return the text heard of this utterance."""

    def stop_soon(self) -> concurrent.futures.Future[str]:
        """``stop()`` without waiting for the output's thread: the text heard comes in the future
        (the session's event loop never waits on another thread)."""
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(self.stop())
        return future

    @abstractmethod
    def pause(self) -> None:
        """Silence the output at once, keeping what is queued; nothing plays until resume()."""

    @abstractmethod
    def resume(self) -> None:
        """Go on playing from where pause() cut (no-op when not paused)."""

    @abstractmethod
    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until everything queued has played; False when ``timeout`` (s) ran out first."""

    @property
    @abstractmethod
    def idle(self) -> bool:
        """Nothing is playing or queued."""

    @abstractmethod
    def close(self) -> None:
        """Stop and release the output (idempotent)."""

    @property
    def description(self) -> str:
        return type(self).__name__

    def _announce_first_audio(self, t: float) -> None:
        for hook in self._on_first_audio:
            try:
                hook(t)
            except Exception:  # the player thread must survive a broken listener
                log.exception("player: on_first_audio failed")

    def _announce_play(self, item: _Item, t_start: float, offset: int = 0) -> None:
        """Call on_play for ``item`` from sample ``offset`` on (a failing hook is logged, not fatal)."""
        if not self._on_play or offset >= len(item.samples):
            return
        chunk = AudioChunk(item.samples[offset:], item.sample_rate_hz, item.text)
        for hook in self._on_play:
            try:
                hook(chunk, t_start)
            except Exception:
                log.exception("player: on_play failed")

    def _announce_silence(self, t: float) -> None:
        for hook in self._on_silence:
            try:
                hook(t)
            except Exception:
                log.exception("player: on_silence failed")


@dataclass
class _Item:
    """A chunk as it is played: its samples at the output rate, and when it began."""

    text: str
    samples: np.ndarray
    sample_rate_hz: int
    sound: Any = None  # pygame.mixer.Sound
    t_start: float | None = None
    position: int = 0  # samples written so far (WavSink)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz
