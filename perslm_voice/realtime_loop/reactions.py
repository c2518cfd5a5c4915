"""How the session reacts to what its stages report: speech heard (a barge-in when the assistant
is talking), transcripts, rejections, the end of the audio input, the voice starting or failing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..events import (
    Level,
    Rejection,
    SpeechEnded,
    SpeechStarted,
    State,
    UserText,
    UtteranceRejected,
)
from .listener import EarlyDropped, EarlyText, InputEnded
from .speaker import FirstAudio, SpeechFailed

if TYPE_CHECKING:
    from .session import Session


def on_stage(session: Session, event: Any) -> None:
    """React to one of the listener's or the speaker's results, on the event loop."""
    if isinstance(event, SpeechStarted):
        session.active()
        session.emit(event)
        if session.replying() and session.realtime_input:
            # A recording fed "fast" is a batch of questions, not a person talking over us.
            if session.judge is not None:
                session.judge.speech_started(event.t_start)
            else:
                session.barge_in("voice", event.t_start)
        session.set_state(State.HEARING)
    elif isinstance(event, SpeechEnded):
        session.emit(event)
    elif isinstance(event, EarlyText):
        session.turns.draft(event.text)
    elif isinstance(event, EarlyDropped):
        session.drafts.drop()
    elif isinstance(event, UserText):
        session.active()
        session.emit(event)
        if not session.replying():
            session.set_state(State.LISTENING)
        elif session.realtime_input:
            # Words that are not our echo (the listener dropped those), heard while we talk,
            # and not taken as a barge-in when they began: the user talks over us after all
            # (the reply may already be quiet, paused while their words were awaited).
            held = session.judge.paused_at if session.judge is not None else None
            session.barge_in("voice", None, held)
        session.queue_input(event)
    elif isinstance(event, UtteranceRejected):
        session.emit(event)
        if event.message:
            unclear = event.kind is Rejection.UNCLEAR
            session.notify(event.message, Level.INFO if unclear else Level.WARNING)
        if not session.replying():
            session.set_state(State.LISTENING)
    elif isinstance(event, InputEnded):
        if event.reason is None:
            if session.input_ends_session:  # finish the turns heard, then end
                session.queue_input(None)
        elif session.input_ends_session:  # a recording that breaks off: answer what was heard
            session.notify(f"{event.reason}; the rest of the recording is not heard.", Level.ERROR)
            session.exit_code = 1
            session.queue_input(None)
        else:
            session.notify(f"{event.reason}; carrying on typed.")
    elif isinstance(event, FirstAudio):
        session.set_state(State.SPEAKING)
    elif isinstance(event, SpeechFailed):
        if not session.tts_failed:
            session.tts_failed = True
            session.notify(f"Speech output failed: {event.message}; replies are text only.")
    else:
        session.emit(event)  # the speaker's ReplyAudio
