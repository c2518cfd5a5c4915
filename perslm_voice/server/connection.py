"""One WebSocket connection: a session of its own for one user, fed from the client's messages,
its events sent back as protocol messages, its voice played by the client.

The connection waits for ``hello`` (which user, which protocol), opens a `Session` on the
server's shared models, answers ``ready``, and then runs three things side by side: the session,
the reader (audio frames, typed lines, interrupts, playback reports, memory commands, each
checked against the limits) and the writer (one queue, so messages and audio keep their order).
A client that vanishes ends the session as the end of a terminal does: the turn in flight is
kept, marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import USER_ID
from ..events import FRAME_SAMPLES, AudioFrame, ReplyAudio, SessionEnded
from ..realtime_loop import Session
from . import protocol
from .memory import run_memory_command
from .player import Outgoing, WebSocketPlayer
from .protocol import PROTOCOL_VERSION, ProtocolError

if TYPE_CHECKING:
    from .app import ServerState

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # the client is not allowed what it asked (another user's memory)
ERRORS_PER_S = 2  # at most this many errors a second are sent about dropped messages


class RateLimit:
    """A token bucket: ``rate`` messages a second, bursts of one second's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Connection:
    """A client on ``/ws``; ``bound_user`` is the user its token belongs to (None: any)."""

    def __init__(self, websocket: WebSocket, state: ServerState, bound_user: str | None):
        self.ws = websocket
        self.state = state
        self.config = state.config
        self.bound_user = bound_user
        self.session: Session | None = None
        self.player: WebSocketPlayer | None = None
        self._loop = asyncio.get_running_loop()
        self._out: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._pcm = np.zeros(0, np.int16)
        self._rate = RateLimit(self.config.serve.max_messages_per_s)
        self._errors = RateLimit(ERRORS_PER_S)
        self._gone = False

    # -- sending ---------------------------------------------------------------------------------

    def send(self, message: Outgoing) -> None:
        """Queue a message (on the event loop)."""
        if not self._gone:
            self._out.put_nowait(message)

    def deliver(self, message: Outgoing) -> None:
        """Queue a message from another thread (the player's)."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self.send, message)

    async def _write(self) -> None:
        while (item := await self._out.get()) is not None:
            if callable(item):
                item = item()
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_text(json.dumps(item, ensure_ascii=False))
            except Exception:  # the client is gone: the reader sees it too
                self._gone = True
                return

    def error(self, message: str, code: str = "bad_message") -> None:
        self.state.counters[code] = self.state.counters.get(code, 0) + 1
        self.send(protocol.error(message, code))

    # -- the connection's life -------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._write(), name="ws writer")
        session_task: asyncio.Task[int] | None = None
        try:
            if not await self._hello():
                return
            assert self.session is not None
            session_task = asyncio.create_task(self.session.run(), name="session")
            reader = asyncio.create_task(self._read(), name="ws reader")
            done, _ = await asyncio.wait(
                {session_task, reader}, return_when=asyncio.FIRST_COMPLETED
            )
            if reader in done:  # the client left or went idle: end the session, keep its turns
                self.session.stop()
            else:
                reader.cancel()
            await asyncio.gather(session_task, reader, return_exceptions=True)
        finally:
            if self.session is not None and session_task is None:
                self.session.stop()
            if self.player is not None:
                await asyncio.to_thread(self.player.close)
            self._out.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(writer, 5)
            writer.cancel()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _receive(self) -> dict[str, Any] | None:
        """The next message, or None when the client left or was idle too long."""
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.config.serve.idle_timeout_s)
        except asyncio.TimeoutError:
            self.error("no message for too long: closing (serve.idle_timeout_s)", "idle")
            return None
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message

    def _admit(self, message: dict[str, Any]) -> bool:
        """The limits: size and rate. A message past them is dropped, counted and answered."""
        data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
        size = len(data or b"")
        limit = self.config.serve.max_message_bytes
        if size > limit:
            self.error(
                f"message of {size} bytes refused: at most {limit} (serve.max_message_bytes);"
                " send audio in frames of 20-100 ms",
                "too_large",
            )
            return False
        if not self._rate.allow():
            self.state.counters["flood"] = self.state.counters.get("flood", 0) + 1
            if self._errors.allow():
                self.send(
                    protocol.error(
                        "too many messages: dropped (serve.max_messages_per_s); send audio in"
                        " frames of 20 ms or more",
                        "flood",
                    )
                )
            return False
        return True

    async def _hello(self) -> bool:
        """Wait for ``hello``, open the session, answer ``ready``; False when the client left."""
        while True:
            message = await self._receive()
            if message is None:
                return False
            if not self._admit(message):
                continue
            if message.get("text") is None:
                self.error('send {"type": "hello", "user": ..., "protocol": 1} first')
                continue
            try:
                hello = protocol.parse(message["text"])
            except ProtocolError as exc:
                self.error(str(exc))
                continue
            if not isinstance(hello, protocol.Hello):
                self.error('send {"type": "hello", "user": ..., "protocol": 1} first')
                continue
            user = hello.user or self.bound_user or "default"
            if self.bound_user is not None and user != self.bound_user:
                self.error(f"this token is not for user {user!r}", "forbidden_user")
                await self._close(CLOSE_POLICY, "token not for this user")
                return False
            if not re.match(USER_ID, user):
                self.error("hello: 'user' must be 1-64 letters, digits, '.', '_' or '-'")
                continue
            await self._open_session(user)
            return True

    async def _open_session(self, user: str) -> None:
        self.player = WebSocketPlayer(self.deliver)
        self.player.start()
        # The browser cancels its own echo (getUserMedia's echoCancellation): ours would follow
        # what was sent, not what its speakers played.
        audio = self.config.audio.model_copy(update={"echo_cancellation": "none"})
        session = Session(
            self.config.model_copy(update={"audio": audio}),
            user,
            models=self.state.models,
            hearing=True,
            player=self.player,
            realtime_input=True,
            max_queued_frames=self.config.audio.queue_frames,
            partial_interval_s=self.state.partial_interval_s,
        )
        self.session = session
        session.subscribe(self._render)
        for notice in self.state.models.problems:
            self.send(protocol.render(notice) or {})
        self.send({"type": "state", "state": "loading", "label": "Loading"})
        await session.open()
        # Ready once the models are: audio streamed before would wait, unheard, in a queue (the
        # first client after a start waits for them; the others find them loaded).
        await self.state.models.all_loaded()
        self.send(
            {
                "type": "ready",
                "protocol": PROTOCOL_VERSION,
                "user": user,
                "input_sample_rate": protocol.INPUT_SAMPLE_RATE_HZ,
                "output_sample_rate": self.player.sample_rate_hz,
                "hearing": session.hearing,
                "speaking": session.speaking,
                "session": session.describe(),
            }
        )

    def _render(self, event: Any) -> None:
        if isinstance(event, ReplyAudio):
            if self.player is not None:
                self.player.tag(event.chunk, event.turn)
            return
        if isinstance(event, SessionEnded):
            self.send({"type": "session_ended", "exit_code": event.exit_code})
            return
        message = protocol.render(event)
        if message is not None:
            self.send(message)

    async def _close(self, code: int, reason: str) -> None:
        self._out.put_nowait(None)
        await asyncio.sleep(0)  # let the writer send the error first
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)

    # -- reading ---------------------------------------------------------------------------------

    async def _read(self) -> None:
        session = self.session
        assert session is not None
        while (message := await self._receive()) is not None:
            if not self._admit(message):
                continue
            if message.get("bytes") is not None:
                self._audio(message["bytes"])
                continue
            try:
                parsed = protocol.parse(message.get("text") or "")
            except ProtocolError as exc:
                self.error(str(exc))
                continue
            if isinstance(parsed, protocol.Text):
                session.type_line(parsed.text, live=True)
            elif isinstance(parsed, protocol.Interrupt):
                session.interrupt()
            elif isinstance(parsed, protocol.Playback):
                player = self.player
                if player is not None and (parsed.turn is None or parsed.turn == player.turn):
                    player.report_played(parsed.played_ms)
            elif isinstance(parsed, protocol.Memory):
                self.send(await run_memory_command(session, parsed))
            else:  # a second hello
                self.error("hello: already said; the session is open", "already_open")

    def _audio(self, data: bytes) -> None:
        """PCM16 LE at 16 kHz, cut into the VAD's frames; each frame's capture time is when its
        last sample arrived (the client streams in real time)."""
        session = self.session
        assert session is not None
        if len(data) % 2:
            self.error("audio: an odd number of bytes is not 16-bit PCM")
            return
        now = time.monotonic()
        pcm = np.concatenate([self._pcm, np.frombuffer(data, "<i2").astype(np.int16)])
        whole = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        rate = protocol.INPUT_SAMPLE_RATE_HZ
        for start in range(0, whole, FRAME_SAMPLES):
            left_after = len(pcm) - (start + FRAME_SAMPLES)
            frame = pcm[start : start + FRAME_SAMPLES]
            session.push_audio(AudioFrame(frame, now - left_after / rate))
        self._pcm = pcm[whole:]
