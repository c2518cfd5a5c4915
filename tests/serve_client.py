"""A protocol-1 client for the server tests and the benchmark: a real `websockets` connection that
streams PCM in real time and collects what the server says, with the time it arrived."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import websockets

ROOT = Path(__file__).resolve().parents[1]
FRAME_S = 0.02  # the client sends 20 ms of audio at a time, as the browser client does


def speech_pcm(path: Path, lead_s: float = 0.3, tail_s: float = 1.5) -> np.ndarray:
    """A recording as 16 kHz mono int16, with silence before and after (the end of speech)."""
    from perslm_voice.audio.resample import resample

    audio, rate = soundfile.read(path, dtype="int16", always_2d=True)
    mono = audio.mean(axis=1).astype(np.int16)
    pcm = resample(mono, rate, 16000).astype(np.int16)
    zeros = np.zeros
    return np.concatenate(
        [zeros(round(lead_s * 16000), np.int16), pcm, zeros(round(tail_s * 16000), np.int16)]
    )


@dataclass
class Received:
    """Everything a connection got: messages (with arrival times) and the audio bytes per turn."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    audio_bytes: dict[int | None, int] = field(default_factory=dict)
    audio_after_interrupt: int = 0
    first_audio_at: dict[int | None, float] = field(default_factory=dict)
    new: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("type") == kind]

    def time_of(self, kind: str, **match: Any) -> float | None:
        for t, m in self.messages:
            if m.get("type") == kind and all(m.get(k) == v for k, v in match.items()):
                return t
        return None


class Client:
    """One connection: ``hello`` sent, ``ready`` awaited; a task reads everything after."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.got = Received()
        self.ready: dict[str, Any] = {}
        self._audio_turn: int | None = None
        self._silenced: set[int | None] = set()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, user: str | None, **kwargs: Any) -> Client:
        ws = await websockets.connect(url, max_size=None, **kwargs)
        client = cls(ws)
        await client.send({"type": "hello", "user": user, "protocol": 1})
        client._reader = asyncio.create_task(client._read())
        client.ready = await client.wait_for("ready", timeout=240)
        return client

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(message) if isinstance(message, dict) else message)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic()
                if isinstance(raw, bytes):
                    turn = self._audio_turn
                    self.got.audio_bytes[turn] = self.got.audio_bytes.get(turn, 0) + len(raw)
                    self.got.first_audio_at.setdefault(turn, now)
                    if turn in self._silenced:
                        self.got.audio_after_interrupt += len(raw)
                    continue
                message = json.loads(raw)
                if message.get("type") == "reply_audio":
                    self._audio_turn = message.get("turn")
                elif message.get("type") == "interrupted":
                    self._silenced.add(message.get("turn"))
                self.got.messages.append((now, message))
                self.got.new.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.got.new.set()

    async def wait_for(
        self, kind: str, timeout: float = 120, after: int = 0, **match: Any
    ) -> dict[str, Any]:
        """The first message of ``kind`` (matching ``match``) among those from index ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            for _, m in self.got.messages[after:]:
                if m.get("type") == kind and all(m.get(k) == v for k, v in match.items()):
                    return m
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"connection closed before {kind}: {self.kinds()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} {match or ''} within {timeout} s: {self.kinds()}")
            self.got.new.clear()
            try:
                await asyncio.wait_for(self.got.new.wait(), left)
            except asyncio.TimeoutError:
                pass

    def kinds(self) -> list[str]:
        return [m.get("type", "?") for _, m in self.got.messages]

    async def stream(self, pcm: np.ndarray) -> float:
        """Send ``pcm`` in 20 ms frames at real time; return when its last speech sample went."""
        step = round(FRAME_S * 16000)
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), step)):
            await self.ws.send(pcm[offset : offset + step].astype("<i2").tobytes())
            delay = start + (i + 1) * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return time.monotonic()

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class Server:
    """``perslm-voice serve`` in a subprocess on a free loopback port (the real CLI)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        import os

        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perslm_voice", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if "serving on" not in first:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {first!r} {self.proc.stderr.read()!r}")
        self.base = first.split("serving on", 1)[1].strip().rstrip("/")
        self.url_line = self.proc.stdout.readline().strip()
        self.port = int(self.base.rsplit(":", 1)[1])
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err
