"""Playback of synthesized speech: pygame's mixer on its own thread (player.py has the interface;
wav_sink.py writes a WAV file instead)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from ..config import AudioConfig
from ..errors import AudioError
from ..events import AudioChunk
from .player import (
    DEFAULT_SAMPLE_RATE_HZ,
    STOP_REPLY_TIMEOUT_S,
    Player,
    _Item,
    heard_part,
)
from .resample import resample

__all__ = ["PygamePlayer", "heard_part", "open_player"]

log = logging.getLogger(__name__)

QUEUE_CHECK_S = 0.005  # when pygame has not yet moved to the queued sound, look again this soon


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
        super().__init__()
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
            raise AudioError(f"no audio output device: {self._error}")

    def enqueue(self, chunk: AudioChunk) -> None:
        if len(chunk.samples) == 0:
            return
        with self._lock:
            self._outstanding += 1
            self._idle.clear()
        self._commands.put(("chunk", chunk))

    def stop(self) -> str:
        try:
            return self.stop_soon().result(timeout=STOP_REPLY_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            return ""

    def stop_soon(self) -> concurrent.futures.Future[str]:
        return self._post("stop")

    def pause(self) -> None:
        # Not waited for: the mixer thread goes quiet at its next command, in a few ms.
        self._post("pause")

    def resume(self) -> None:
        self._post("resume")

    def _post(self, command: str) -> concurrent.futures.Future[Any]:
        """Hand ``command`` to the mixer thread; its answer comes in the returned future."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._thread is None or not self._thread.is_alive():
            reply.set_result("" if command == "stop" else None)
            return reply
        self._commands.put((command, reply))
        return reply

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
                    arg.set_result(self._stop(channel))
                elif command == "pause":
                    arg.set_result(self._pause(channel))
                elif command == "resume":
                    arg.set_result(self._resume(channel))
                self._pump(channel)
        finally:
            channel.stop()
            pygame.mixer.quit()
            while not self._commands.empty():  # nobody waits for ever on a closed mixer
                _, arg = self._commands.get_nowait()
                if isinstance(arg, concurrent.futures.Future) and not arg.done():
                    arg.set_result(None)
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
                self._announce_first_audio(now)
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
