"""The session's voice, played by a network client: PCM frames sent at the pace of playback.

A browser plays what it receives as it arrives, so the player sends each utterance at real time,
``SEND_AHEAD_S`` ahead of the client's speakers (its jitter buffer), the way a sound card is fed:
``pause()`` then means sending nothing more (the client goes quiet within that lead), and
``stop()`` sends an ``interrupted`` message after which the client drops what it holds (within one
audio quantum in the browser client). What was heard comes from the client's ``playback`` reports
when it sends them, else from the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.player import DEFAULT_SAMPLE_RATE_HZ, STOP_REPLY_TIMEOUT_S, Player, _Item, heard_part
from ..audio.resample import resample
from ..events import AudioChunk

log = logging.getLogger(__name__)

SEND_AHEAD_S = 0.12  # the client's buffer: enough for network jitter on a LAN, short for pause()
FRAME_MS = 40  # one binary frame of the reply's voice

# What the player hands to the connection, from its own thread: bytes (PCM), a message, or a
# message made on the event loop when it is sent (it names the turn, known there).
Outgoing = bytes | dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass
class _Piece:
    """A chunk being sent: its samples at the output rate and how far it has gone."""

    chunk: AudioChunk
    samples: np.ndarray
    start: int = 0  # the utterance's sample index of this chunk's first sample
    sent: int = 0


class WebSocketPlayer(Player):
    """Sends the session's voice to one client (``deliver`` is thread-safe and never blocks)."""

    def __init__(
        self,
        deliver: Callable[[Outgoing], None],
        sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ,
        send_ahead_s: float = SEND_AHEAD_S,
    ):
        super().__init__()
        self.sample_rate_hz = sample_rate_hz
        self.send_ahead_s = send_ahead_s
        self._deliver = deliver
        self._cond = threading.Condition(threading.RLock())
        self._pending: deque[_Piece] = deque()
        self._sent: list[_Piece] = []  # this utterance's pieces that have begun to go out
        self._utterance_samples = 0  # samples of this utterance sent
        self._clock_start: float | None = None  # when sample ``_clock_base`` is due to sound
        self._clock_base = 0
        self._report: tuple[int, float] | None = None  # (samples played, when) from the client
        self._paused = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.turn_of: dict[int, int] = {}  # id(chunk) -> turn, told by the connection
        self.turn: int | None = None  # the turn whose voice was announced last
        self.frames_sent = 0

    @property
    def description(self) -> str:
        return "the client's speakers (WebSocket)"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ws-player", daemon=True)
            self._thread.start()

    def tag(self, chunk: AudioChunk, turn: int) -> None:
        """``chunk`` is the voice of ``turn`` (on the event loop, when the session says so)."""
        self.turn_of[id(chunk)] = turn

    def report_played(self, played_ms: float) -> None:
        """The client has played ``played_ms`` of the current utterance (its ``playback``)."""
        with self._cond:
            if self._clock_start is not None:
                played = min(self._utterance_samples, round(played_ms * self.sample_rate_hz / 1000))
                self._report = (played, time.monotonic())

    # -- the Player interface ----------------------------------------------------------------------

    def enqueue(self, chunk: AudioChunk) -> None:
        if len(chunk.samples) == 0:
            return
        samples = resample(chunk.samples, chunk.sample_rate_hz, self.sample_rate_hz)
        with self._cond:
            if self._closed:
                return
            self._pending.append(_Piece(chunk, np.asarray(samples, dtype="<i2")))
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            if self._paused:
                return
            self._paused = True
            if self._clock_start is not None:
                self._announce_silence(self._due(self._utterance_samples))
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if not self._paused:
                return
            self._paused = False
            if self._clock_start is not None:
                # The pause is not owed: the clock goes on from what was sent, once it has played.
                now = time.monotonic()
                self._clock_start = max(now, self._due(self._utterance_samples))
                self._clock_base = self._utterance_samples
                self._report = None
                if self._sent and self._sent[-1].sent < len(self._sent[-1].samples):
                    piece = self._sent[-1]
                    item = _Item(piece.chunk.text, piece.samples, self.sample_rate_hz)
                    self._announce_play(item, self._clock_start, piece.sent)
            self._cond.notify_all()

    def stop(self) -> str:
        with self._cond:
            heard = self._heard_now()
            if self._clock_start is not None or self._pending:
                self._announce_silence(time.monotonic())
            # Always said, even between two sentences (nothing sounding): the reply's voice is
            # over, and nothing more of it will come.
            self._deliver(self._interrupted)
            self._reset_utterance()
            self._pending.clear()
            self._paused = False
            self._cond.notify_all()
            return heard

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            return bool(self._cond.wait_for(self._is_idle, timeout))

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._is_idle()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._pending.clear()
            self._reset_utterance()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(STOP_REPLY_TIMEOUT_S)

    # -- the sending thread ----------------------------------------------------------------------

    def _is_idle(self) -> bool:
        return self._closed or (not self._pending and self._clock_start is None)

    def _due(self, sample: int) -> float:
        """When the utterance's sample ``sample`` sounds at the client."""
        assert self._clock_start is not None
        return self._clock_start + (sample - self._clock_base) / self.sample_rate_hz

    def _reset_utterance(self) -> None:
        self._sent = []
        self._utterance_samples = 0
        self._clock_start = None
        self._clock_base = 0
        self._report = None

    def _run(self) -> None:
        frame = self.sample_rate_hz * FRAME_MS // 1000
        with self._cond:
            while not self._closed:
                if self._paused:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                if not self._pending:
                    if self._clock_start is not None:
                        end = self._due(self._utterance_samples)
                        if now < end:  # the client is still playing what it has
                            self._cond.wait(end - now)
                            continue
                        self._reset_utterance()  # played out: the next chunk starts afresh
                        self._cond.notify_all()  # wake wait_idle()
                    self._cond.wait()
                    continue
                if self._clock_start is None:
                    self._clock_start, self._clock_base = now, 0
                    self._announce_first_audio(now)
                wait_s = self._due(self._utterance_samples) - self.send_ahead_s - now
                if wait_s > 0:
                    self._cond.wait(wait_s)  # woken early by stop(), pause() or close()
                    continue
                piece = self._pending[0]
                if piece.sent == 0:
                    piece.start = self._utterance_samples
                    self._sent.append(piece)
                    self._deliver(self._header(piece))
                    item = _Item(piece.chunk.text, piece.samples, self.sample_rate_hz)
                    self._announce_play(item, self._due(piece.start))
                block = piece.samples[piece.sent : piece.sent + frame]
                self._deliver(block.tobytes())
                self.frames_sent += 1
                piece.sent += len(block)
                self._utterance_samples += len(block)
                if piece.sent >= len(piece.samples):
                    self._pending.popleft()

    def _header(self, piece: _Piece) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:  # on the event loop, after the session tagged the chunk
            self.turn = self.turn_of.pop(id(piece.chunk), self.turn)
            return {
                "type": "reply_audio",
                "turn": self.turn,
                "text": piece.chunk.text,
                "samples": len(piece.samples),
                "sample_rate": self.sample_rate_hz,
            }

        return make

    def _interrupted(self) -> dict[str, Any]:
        return {"type": "interrupted", "turn": self.turn}

    def _heard_now(self) -> str:
        """The text of this utterance heard so far: whole chunks, and the words of the one cut."""
        if self._clock_start is None or not self._sent:
            return ""
        now = time.monotonic()
        played = self._clock_base + (now - self._clock_start) * self.sample_rate_hz
        if self._report is not None:
            reported, when = self._report
            played = min(played, reported + (now - when) * self.sample_rate_hz)
        played = min(max(played, 0), self._utterance_samples)
        heard = []
        for piece in self._sent:
            if played >= piece.start + len(piece.samples):
                heard.append(piece.chunk.text)
            elif played > piece.start:
                heard.append(
                    heard_part(piece.chunk.text, (played - piece.start) / len(piece.samples))
                )
        return " ".join(part for part in heard if part)
