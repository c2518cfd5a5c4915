"""Playback of synthesized speech: pygame's mixer on its own thread (or a WAV file, wav_sink.py).

Both players take ``AudioChunk``s from any thread, play them back to back, and can be silenced at
once; ``stop()`` reports the text actually heard (whole chunks played, plus the words of the chunk
cut mid-way in proportion to the samples played), which the loop keeps as "what was heard".
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import AudioConfig
from ..errors import AudioError
from ..events import AudioChunk
from ..tts.base import resample

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE_HZ = 22050  # Piper's and espeak-ng's rate: their chunks need no resampling
QUEUE_CHECK_S = 0.005  # when pygame has not yet moved to the queued sound, look again this soon
STOP_REPLY_TIMEOUT_S = 2.0


def heard_part(text: str, fraction: float) -> str:
    """The words of ``text`` heard when ``fraction`` of its audio played (whole words only)."""
    words = text.split()
    return " ".join(words[: int(len(words) * min(1.0, max(0.0, fraction)))])


class Player(ABC):
    """Plays audio chunks back to back; one utterance after another.

    ``on_first_audio(t)`` is called (on the player's thread) with the monotonic time at which an
    utterance's first audio was handed to the output (the mixer starts it within one buffer). It
    must return quickly and not call the player; hand it to the event loop with
    ``loop.call_soon_threadsafe``.

    ``on_play(chunk, t_start)`` is called (on the player's thread) each time a chunk starts to be
    played, with its samples at the output rate and the monotonic time of its first sample; after
    ``resume()`` it is called again with what is left of the chunk cut by ``pause()``.
    ``on_silence(t)`` is called when ``stop()`` or ``pause()`` cut the output at time ``t``: what
    ``on_play`` announced after ``t`` was not played. Echo cancellation and the echo test room
    (perslm_voice/echo.py) follow the sound through these two; the same rules apply to them.
    """

    on_first_audio: Callable[[float], None] | None = None
    on_play: Callable[[AudioChunk, float], None] | None = None
    on_silence: Callable[[float], None] | None = None

    @abstractmethod
    def start(self) -> None:
        """Open the output; AudioError when it cannot be used."""

    @abstractmethod
    def enqueue(self, chunk: AudioChunk) -> None:
        """Queue a chunk to play after those already queued (returns at once)."""

    @abstractmethod
    def stop(self) -> str:
        """Silence the output, drop what is queued, and return the text heard of this utterance."""

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

    def _announce_play(self, item: _Item, t_start: float, offset: int = 0) -> None:
        """Call on_play for ``item`` from sample ``offset`` on (a failing hook is logged, not fatal)."""
        if self.on_play is None or offset >= len(item.samples):
            return
        try:
            self.on_play(AudioChunk(item.samples[offset:], item.sample_rate_hz, item.text), t_start)
        except Exception:  # the player thread must survive a broken listener
            log.exception("player: on_play failed")

    def _announce_silence(self, t: float) -> None:
        if self.on_silence is None:
            return
        try:
            self.on_silence(t)
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


class PygamePlayer(Player):
    """pygame.mixer on one thread that owns it; chunks are played gaplessly with Channel.queue().

    The mixer opens mono int16 at ``sample_rate_hz`` (SDL converts for the device); chunks at
    another rate are resampled. A small ``buffer_samples`` keeps the tail after stop() short.
    """

    def __init__(
        self,
        device: str | None = None,
        buffer_samples: int = 512,
        sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ,
    ):
        self.device = device
        self.buffer_samples = buffer_samples
        self.sample_rate_hz = sample_rate_hz
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._outstanding = 0  # chunks enqueued and not yet played or dropped
        self._idle = threading.Event()
        self._idle.set()
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        # Owned by the mixer thread:
        self._pending: deque[_Item] = deque()
        self._playing: deque[_Item] = deque()  # on the channel: the current sound, the queued one
        self._heard: list[str] = []
        self._utterance_started = False
        self._paused_at: float | None = None  # monotonic time of pause(); None when playing

    @property
    def description(self) -> str:
        return f"pygame ({self.device or 'default output'})"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="playback", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise AudioError(f"no audio output device: {self._error}, continuing text-only")

    def enqueue(self, chunk: AudioChunk) -> None:
        if len(chunk.samples) == 0:
            return
        with self._lock:
            self._outstanding += 1
            self._idle.clear()
        self._commands.put(("chunk", chunk))

    def stop(self) -> str:
        return self._call("stop") or ""

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def _call(self, command: str) -> Any:
        """Run ``command`` on the mixer thread and wait for its answer."""
        if self._thread is None or not self._thread.is_alive():
            return None
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._commands.put((command, reply))
        try:
            return reply.get(timeout=STOP_REPLY_TIMEOUT_S)
        except queue.Empty:
            return None

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._commands.put(("close", None))
            self._thread.join(STOP_REPLY_TIMEOUT_S)

    # --- the mixer thread ---

    def _run(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame

            # allowedchanges=0: SDL converts to the device's format, so raw buffers stay valid.
            pygame.mixer.pre_init(
                frequency=self.sample_rate_hz,
                size=-16,
                channels=1,
                buffer=self.buffer_samples,
                devicename=self.device,
                allowedchanges=0,
            )
            pygame.mixer.init()
            channel = pygame.mixer.Channel(0)
        except Exception as exc:  # pygame.error, or an ImportError for a broken SDL
            self._error = str(exc) or type(exc).__name__
            self._ready.set()
            return
        self._ready.set()
        log.debug("mixer open: %s, buffer %d samples", pygame.mixer.get_init(), self.buffer_samples)
        try:
            while True:
                try:
                    command, arg = self._commands.get(timeout=self._wake_in_s(channel))
                except queue.Empty:
                    command, arg = "", None
                if command == "close":
                    break
                if command == "chunk":
                    self._pending.append(self._prepare(pygame, arg))
                elif command == "stop":
                    arg.put(self._stop(channel))
                elif command == "pause":
                    arg.put(self._pause(channel))
                elif command == "resume":
                    arg.put(self._resume(channel))
                self._pump(channel)
        finally:
            channel.stop()
            pygame.mixer.quit()
            with self._lock:
                self._outstanding = 0
                self._idle.set()

    def _prepare(self, pygame: Any, chunk: AudioChunk) -> _Item:
        samples = resample(chunk.samples, chunk.sample_rate_hz, self.sample_rate_hz)
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        sound = pygame.mixer.Sound(buffer=samples.tobytes())
        return _Item(chunk.text, samples, self.sample_rate_hz, sound)

    def _wake_in_s(self, channel: Any) -> float | None:
        """How long the thread may wait for a command before the channel needs attention."""
        if not self._playing or self._paused_at is not None:
            return None
        current = self._playing[0]
        assert current.t_start is not None
        left_s = current.t_start + current.duration_s - time.monotonic()
        return max(QUEUE_CHECK_S, left_s)

    def _finished(self, count: int) -> None:
        for _ in range(count):
            self._heard.append(self._playing.popleft().text)
        with self._lock:
            self._outstanding -= count

    def _pump(self, channel: Any) -> None:
        """Retire what has played, keep the channel fed (current + one queued), note idleness."""
        if self._paused_at is not None:
            return
        now = time.monotonic()
        if self._playing and not channel.get_busy():
            self._finished(len(self._playing))
        elif len(self._playing) == 2 and channel.get_queue() is None:
            self._finished(1)  # pygame moved on to the queued sound
            current = self._playing[0]
            assert current.t_start is not None
            current.t_start = min(current.t_start, now)
            self._announce_play(current, current.t_start)
        if not self._playing and self._pending:
            item = self._pending.popleft()
            channel.play(item.sound)
            item.t_start = now
            self._playing.append(item)
            self._announce_play(item, now)
            if not self._utterance_started:
                self._utterance_started = True
                self._heard = []
                if self.on_first_audio is not None:
                    self.on_first_audio(now)
        if len(self._playing) == 1 and self._pending and channel.get_queue() is None:
            item = self._pending.popleft()
            channel.queue(item.sound)
            previous = self._playing[0]
            assert previous.t_start is not None
            item.t_start = previous.t_start + previous.duration_s
            self._playing.append(item)
        if not self._playing and not self._pending:
            self._utterance_started = False
            with self._lock:
                if self._outstanding <= 0:
                    self._outstanding = 0
                    self._idle.set()

    def _pause(self, channel: Any) -> None:
        if self._paused_at is not None:
            return
        channel.pause()  # the mixer goes quiet at its next buffer
        self._paused_at = time.monotonic()
        if self._playing:
            self._announce_silence(self._paused_at)

    def _resume(self, channel: Any) -> None:
        if self._paused_at is None:
            return
        now = time.monotonic()
        paused_s = now - self._paused_at
        self._paused_at = None
        channel.unpause()
        for item in self._playing:  # the sound goes on where it was cut: shift its clock
            assert item.t_start is not None
            item.t_start += paused_s
        if self._playing:
            current = self._playing[0]
            assert current.t_start is not None
            played = round((now - current.t_start) * current.sample_rate_hz)
            self._announce_play(current, now, max(0, played))

    def _stop(self, channel: Any) -> str:
        now = time.monotonic() if self._paused_at is None else self._paused_at
        if self._playing:
            self._announce_silence(now)
        channel.stop()  # the mixer stops at its next buffer
        if self._paused_at is not None:
            self._paused_at = None
            channel.unpause()  # the next utterance must not start paused
        heard = list(self._heard)
        if self._playing:
            current = self._playing[0]
            assert current.t_start is not None
            if now >= current.t_start + current.duration_s and len(self._playing) > 1:
                heard.append(current.text)
                current = self._playing[1]
                assert current.t_start is not None
            played_s = max(0.0, now - current.t_start)
            heard.append(heard_part(current.text, played_s / current.duration_s))
        dropped = len(self._playing) + len(self._pending)
        self._playing.clear()
        self._pending.clear()
        self._heard = []
        self._utterance_started = False
        with self._lock:
            self._outstanding -= dropped
        return " ".join(part for part in heard if part)


def _no_sound_card() -> bool:
    """Linux with no ALSA devices, no sound server and no SDL driver chosen: nothing can play.

    Checked first so that libasound does not print its errors to the terminal.
    """
    if not sys.platform.startswith("linux") or os.environ.get("SDL_AUDIODRIVER"):
        return False
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    servers = [Path(runtime, "pulse", "native"), Path(runtime, "pipewire-0")] if runtime else []
    if os.environ.get("PULSE_SERVER") or any(p.exists() for p in servers):
        return False
    return not Path("/dev/snd").exists()


def open_player(config: AudioConfig, audio_output: str | None = None) -> Player:
    """The started player for a session: a real-time WAV sink for ``audio_output``, else pygame.

    Raises AudioError ("no audio output device: ...") when the mixer cannot start; the loop then
    goes on text-only.
    """
    player: Player
    if not audio_output and _no_sound_card():
        raise AudioError(
            "no audio output device: this machine has no sound card (/dev/snd is absent)"
        )
    if audio_output:
        from .wav_sink import WavSink

        player = WavSink(audio_output, realtime=True)
    else:
        player = PygamePlayer(config.output_device, config.playback_buffer)
    player.start()
    return player
