"""The terminal's audio adapters: a microphone or a recording (``--audio-input``) in, pygame or a
WAV file (``--audio-output``) out, and the echo test room (``--echo-room``) between them. They
feed the session frames and give it a `Player`; they know nothing of turns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..audio.capture import AudioSource, FileSource
from ..audio.player import Player
from ..config import Config
from ..echo import EchoRoom, EchoRoomSpec
from ..errors import UsageError
from ..realtime_loop import Session


@dataclass
class AudioInput:
    """Where the session's audio comes from, and how it behaves."""

    source: AudioSource
    recording: bool  # a file: the session ends when it has been heard and answered
    realtime: bool  # frames carry real capture times (a microphone, or a file paced in real time)
    max_queued_frames: int | None  # a file keeps every frame; a microphone drops the oldest

    @property
    def description(self) -> str:
        return self.source.description


def open_audio_input(config: Config, audio_input: str | None) -> AudioInput:
    """The recording when given, else the microphone; AudioError (one line) when it cannot be
    used."""
    if audio_input:
        source = FileSource(audio_input, speed=config.audio.input_speed)
        return AudioInput(source, True, source.speed == "realtime", None)
    from ..audio.microphone import open_microphone

    return AudioInput(open_microphone(config.audio), False, True, config.audio.queue_frames)


def open_audio_output(config: Config, audio_output: str | None) -> Player:
    """The started player: a real-time WAV sink for ``audio_output``, else pygame; AudioError
    when there is no output."""
    from ..audio.playback import open_player

    return open_player(config.audio, audio_output)


def attach_echo_room(spec: str, audio_in: AudioInput | None, player: Player | None) -> str:
    """Mix the assistant's voice, as it plays, back into the recording; returns its description."""
    if audio_in is None or not isinstance(audio_in.source, FileSource) or player is None:
        raise UsageError("--echo-room needs --audio-input and a voice to hear")
    room = EchoRoom(EchoRoomSpec.parse(spec), audio_in.source)
    room.attach(player)
    return room.description


async def feed(session: Session, audio_in: AudioInput) -> None:
    """Hand the input's frames to the session until the input ends (or the task is cancelled).

    A recording starts once the models have loaded, as a person would start talking once the
    assistant is there."""
    loop = asyncio.get_running_loop()
    if audio_in.recording:
        await session.models.all_loaded()
    ended: asyncio.Future[str | None] = loop.create_future()

    def on_end(reason: str | None) -> None:  # the source's thread
        loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(reason))

    audio_in.source.start(
        lambda frame: loop.call_soon_threadsafe(session.push_audio, frame), on_end
    )
    try:
        reason = await ended
    finally:
        await asyncio.to_thread(audio_in.source.stop)
    session.end_audio(reason)
