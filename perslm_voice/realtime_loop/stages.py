"""Wiring a session's stages: the speaker on the audio output, the echo guard following it, the
listener on the pushed audio, and the barge-in judge between them. Each is built once, with what
it needs; nothing is patched on afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..audio.endpointer import Endpointer
from ..audio.player import Player
from ..echo import EchoGuard, open_echo_guard
from ..errors import PerslmVoiceError
from ..events import AudioPlayed, AudioSilenced
from .bargein import BargeInJudge
from .listener import Listener
from .models import Models
from .speaker import Speaker

if TYPE_CHECKING:
    from .session import Session


@dataclass
class Stages:
    speaker: Speaker | None = None
    listener: Listener | None = None
    guard: EchoGuard | None = None
    judge: BargeInJudge | None = None


def wire_stages(
    session: Session,
    models: Models,
    player: Player | None,
    hearing: bool,
    max_queued_frames: int | None,
    user_language: str | None = None,
) -> Stages:
    """The stages for what the session has: a voice when there is a player and a TTS, ears
    when audio will be pushed and speech-to-text can start. Problems are said as notices."""

    stages = Stages()
    loop = asyncio.get_running_loop()
    if player is not None and models.tts is not None and models.tts_ready is not None:
        stages.speaker = Speaker(models.tts, models.tts_ready, player, session.on_stage)
        player.follow(
            lambda chunk, t: loop.call_soon_threadsafe(session.emit, AudioPlayed(chunk, t)),
            lambda t: loop.call_soon_threadsafe(session.emit, AudioSilenced(t)),
        )
    if not hearing or models.stt is None or models.stt_ready is None or models.new_vad is None:
        return stages
    config = session.config
    try:
        vad = models.new_vad()
        if stages.speaker is not None:
            stages.guard = open_echo_guard(
                config.audio.echo_check, config.audio.echo_cancellation, session.realtime_input
            )
            stages.guard.follow(stages.speaker.player)
    except PerslmVoiceError as exc:
        session.notify(f"{exc}; type instead.")
        return stages
    stages.listener = Listener(
        Endpointer(vad, config.speech.audio, config.vad),
        models.stt,
        models.stt_ready,
        session.on_stage,
        language=config.speech.language,
        user_language=user_language,
        guard=stages.guard,
        max_queued_frames=max_queued_frames,
        partial_interval_s=session.partial_interval_s,
        turn_model=load_turn_model(session),
    )
    if stages.speaker is not None and stages.guard is not None:
        stages.judge = BargeInJudge(
            stages.listener,
            stages.speaker,
            stages.guard,
            replying=session.replying,
            barge_in=session.barge_in,
        )
    return stages


def load_turn_model(
    session: Session,
) -> asyncio.Future[Callable[[np.ndarray], float] | None] | None:
    """The Smart Turn model's probability when vad.turn_detection asks for it, loading in a thread
    (about 0.5 s); a model that cannot load is said, and the words alone decide."""
    if session.config.vad.turn_detection != "smart_turn":
        return None

    async def load() -> Callable[[np.ndarray], float] | None:
        from ..audio.smart_turn import SmartTurnModel

        try:
            model = await asyncio.to_thread(SmartTurnModel)
        except PerslmVoiceError as exc:
            session.notify(f"{exc}; until then the words so far decide when a turn ends.")
            return None
        return model.probability

    return asyncio.ensure_future(load())


def describe(session: Session) -> dict[str, str]:
    """The language model, speech in and out (with the echo measures), and the memory."""
    rows: dict[str, str] = {}
    models = session.models
    if models.llm is not None:
        try:
            rows["language model"] = models.llm.description
        except PerslmVoiceError as exc:
            rows["language model"] = f"unavailable: {exc}"
    if session.listener is not None:
        rows["speech in"] = session.listener.transcriber.stt.description
        if session.guard is not None and session.guard.description:
            rows["speech in"] += f"; {', '.join(session.guard.description)}"
    if session.speaker is not None:
        speaker = session.speaker
        rows["speech out"] = f"{speaker.tts.description} -> {speaker.player.description}"
    if session.store.store is not None:
        rows["memory"] = str(session.store.store.path)
    return rows
