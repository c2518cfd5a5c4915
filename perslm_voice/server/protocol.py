"""The WebSocket protocol, version 1: what a client may send, and a session's events as messages.

Client -> server: binary frames of 16-bit little-endian mono PCM at ``INPUT_SAMPLE_RATE_HZ``, and
JSON text frames with a ``type`` (`parse` reads them into the frozen messages below). Server ->
client: JSON text frames (`render` makes them from the session's events), and the reply's voice
as binary PCM frames at the announced output rate, each chunk announced by a ``reply_audio``
message: the binary frames after it, up to the next ``reply_audio``, are that chunk of that turn.
The README's "Server protocol" section is the reference a client author reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..events import (
    SAMPLE_RATE_HZ,
    BargeIn,
    MemoryChanged,
    Notice,
    PartialTranscript,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    ReplyTextDone,
    Report,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    TurnTimings,
    UserText,
    UtteranceRejected,
)
from ..realtime_loop.timings import START_MARKS

PROTOCOL_VERSION = 1
INPUT_SAMPLE_RATE_HZ = SAMPLE_RATE_HZ
MEMORY_COMMANDS = ("history", "export", "forget")
MAX_TEXT_CHARS = 4000  # a typed line longer than this is refused (the prompt has a budget anyway)


class ProtocolError(ValueError):
    """A client message the server cannot take; the text says what to send instead."""


@dataclass(frozen=True)
class Hello:
    user: str | None
    protocol: int


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Playback:
    played_ms: float
    turn: int | None = None


@dataclass(frozen=True)
class Memory:
    command: str
    limit: int = 50
    everything: bool = False
    fact_id: int | None = None


ClientMessage = Hello | Text | Interrupt | Playback | Memory


def parse(raw: str) -> ClientMessage:
    """A client's JSON text frame as a message; ProtocolError says what is wrong with it."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError("not JSON: send a JSON object with a 'type'") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("a message is a JSON object with a string 'type'")
    kind = data["type"]
    if kind == "hello":
        user = data.get("user")
        protocol = data.get("protocol", PROTOCOL_VERSION)
        if user is not None and not isinstance(user, str):
            raise ProtocolError("hello: 'user' must be a string")
        if protocol != PROTOCOL_VERSION:
            raise ProtocolError(f"hello: this server speaks protocol {PROTOCOL_VERSION}")
        return Hello(user, protocol)
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("text: 'text' must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError(f"text: longer than {MAX_TEXT_CHARS} characters")
        return Text(text)
    if kind == "interrupt":
        return Interrupt()
    if kind == "playback":
        played = data.get("played_ms")
        turn = data.get("turn")
        if not isinstance(played, (int, float)) or isinstance(played, bool) or played < 0:
            raise ProtocolError("playback: 'played_ms' must be a number >= 0")
        if turn is not None and (not isinstance(turn, int) or isinstance(turn, bool)):
            raise ProtocolError("playback: 'turn' must be an integer")
        return Playback(float(played), turn)
    if kind == "memory":
        command = data.get("command")
        if command not in MEMORY_COMMANDS:
            raise ProtocolError(f"memory: 'command' must be one of {', '.join(MEMORY_COMMANDS)}")
        limit = data.get("limit", 50)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ProtocolError("memory: 'limit' must be an integer from 1 to 1000")
        fact_id = data.get("fact_id")
        if fact_id is not None and (not isinstance(fact_id, int) or isinstance(fact_id, bool)):
            raise ProtocolError("memory: 'fact_id' must be an integer")
        return Memory(command, limit, data.get("everything") is True, fact_id)
    raise ProtocolError(
        f"unknown message type {kind!r}: use hello, text, interrupt, playback or memory"
    )


def error(message: str, code: str = "bad_message") -> dict[str, Any]:
    """One line for the client: what went wrong and what to do."""
    return {"type": "error", "code": code, "message": message}


def render(event: Any) -> dict[str, Any] | None:
    """A session event as a protocol message (None: nothing a client needs)."""
    if isinstance(event, StateChanged):
        return {"type": "state", "state": event.state.name.lower(), "label": event.state.value}
    if isinstance(event, SpeechStarted):
        return {"type": "speech_started"}
    if isinstance(event, SpeechEnded):
        return {"type": "speech_ended", "duration_ms": round((event.t_end - event.t_start) * 1000)}
    if isinstance(event, PartialTranscript):
        return {"type": "partial_transcript", "text": event.text}
    if isinstance(event, UserText):
        return {"type": "transcript", "text": event.text, "source": event.source.value}
    if isinstance(event, UtteranceRejected):
        return {
            "type": "not_heard",
            "kind": event.kind.value,
            "reason": event.reason,
            "message": event.message,
        }
    if isinstance(event, ReplyStarted):
        return {
            "type": "reply_started",
            "turn": event.turn,
            "user_text": event.user_text,
            "source": event.source.value,
        }
    if isinstance(event, ReplyDelta):
        return {"type": "reply_delta", "turn": event.turn, "text": event.text}
    if isinstance(event, ReplyTextDone):
        return {"type": "reply_text_done", "turn": event.turn, "note": event.note}
    if isinstance(event, ReplyDone):
        return {
            "type": "reply_done",
            "turn": event.turn,
            "text": event.text,
            "interrupted": event.interrupted,
            "heard": event.heard,
            "text_complete": event.text_complete,
        }
    if isinstance(event, BargeIn):
        return {"type": "barge_in", "turn": event.turn, "how": event.how}
    if isinstance(event, TurnTimings):
        return {
            "type": "timings",
            "turn": event.turn,
            "interrupted": event.interrupted,
            "backend": event.backend,
            "ms": stage_ms(event.marks),
        }
    if isinstance(event, MemoryChanged):
        return {"type": "memory_changed", "kind": event.kind, "reply": event.reply}
    if isinstance(event, Notice):
        return {"type": "notice", "level": event.level.value, "text": event.text}
    if isinstance(event, Report):
        return {"type": "report", "title": event.title, "text": event.text, "rows": event.rows}
    return None


def stage_ms(marks: dict[str, float]) -> dict[str, int]:
    """Each mark as ms since the user finished (end of speech, or the typed line)."""
    start = next((marks[m] for m in START_MARKS if m in marks), min(marks.values(), default=0.0))
    return {
        stage: round((t - start) * 1000) for stage, t in sorted(marks.items(), key=lambda kv: kv[1])
    }
