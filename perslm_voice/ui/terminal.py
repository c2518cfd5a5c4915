"""The terminal front-end: the session engine with a Rich screen, the keyboard, a microphone (or a
recording) and pygame (or a WAV file). It feeds the session and renders its events; the
conversation itself is perslm_voice/realtime_loop/.

``RealtimeLoop`` is its Python API (the PersLM real-time guide's)::

    loop = RealtimeLoop(config_path="my.yaml", user_id="john")
    loop.start()   # blocks until the session ends; stop() from another thread ends it
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import logs
from ..config import Config, load_config
from ..errors import AudioError, UsageError
from ..events import (
    Level,
    Notice,
    PartialTranscript,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    ReplyTextDone,
    Report,
    Source,
    StateChanged,
    UserText,
    UtteranceRejected,
)
from ..realtime_loop import Session
from ..safetext import visible
from .audio_io import AudioInput, attach_echo_room, feed, open_audio_input, open_audio_output
from .console import UI, InteractiveUI, PlainUI

log = logging.getLogger(__name__)

# RealtimeLoop(**overrides) keyword -> configuration key
OVERRIDE_KEYS = {
    "timeout": "interaction.timeout",
    "input_mode": "interaction.input_mode",
    "output_mode": "interaction.output_mode",
    "show_timings": "interaction.show_timings",
    "device_index": "audio.input_device",
    "output_device": "audio.output_device",
    "audio_input_speed": "audio.input_speed",
    "log_level": "logging.level",
    "log_file": "logging.file",
    "model": "llm.model",
}
DOUBLE_CTRL_C_S = 2.0
STYLE = {Level.INFO: "dim", Level.WARNING: "yellow", Level.ERROR: "red"}


class Renderer:
    """Shows a session's events on the terminal. Notices wait for the banner; what the user said
    while a reply's text is being written waits for its end (a recording fed fast is heard ahead
    of the replies: its lines would land in the middle of one)."""

    def __init__(self, ui: UI):
        self.ui = ui
        self._held: list[Notice] | None = []
        self._writing = False
        self._heard: list[str] = []

    def banner_shown(self) -> None:
        held, self._held = self._held or [], None
        for notice in held:
            self(notice)

    def __call__(self, event: Any) -> None:
        ui = self.ui
        if isinstance(event, Notice):
            if self._held is not None:
                self._held.append(event)
            else:
                ui.notice(visible(event.text), STYLE[event.level])
        elif isinstance(event, StateChanged):
            ui.set_state(event.state)
        elif isinstance(event, UserText) and event.source is Source.VOICE:
            if self._writing:
                self._heard.append(visible(event.text, one_line=True))
            else:
                ui.heard(visible(event.text, one_line=True))
        elif isinstance(event, PartialTranscript):
            ui.hearing(visible(event.text, one_line=True))
        elif isinstance(event, UtteranceRejected):
            ui.hearing("")
        elif isinstance(event, ReplyStarted):
            if event.source is Source.KEYBOARD:
                ui.typed(visible(event.user_text, one_line=True))
            self._writing = True
            ui.reply_started()
        elif isinstance(event, ReplyDelta):
            ui.reply_piece(visible(event.text))  # a model's text may hold terminal controls
        elif isinstance(event, ReplyTextDone):
            ui.reply_finished(event.note)
            self._writing = False
            for text in self._heard:
                ui.heard(text)
            self._heard = []
        elif isinstance(event, ReplyDone):
            if event.interrupted and event.text_complete:  # the text was all out; the voice was cut
                ui.notice("[interrupted]", "dim")
        elif isinstance(event, Report):
            if event.rows:
                ui.show_timings(list(event.rows))
            else:
                ui.console.print(event.text, markup=False)


class RealtimeLoop:
    """A conversation session for one user in the terminal: keyboard and voice in, text and
    voice out."""

    def __init__(
        self,
        config_path: str | Path | None = None,
        user_id: str = "default",
        *,
        config: Config | None = None,
        incognito: bool = False,
        ui: UI | None = None,
        audio_input: str | Path | None = None,
        audio_output: str | Path | None = None,
        echo_room: str | None = None,
        record: str | Path | None = None,
        **overrides: Any,
    ):
        unknown = sorted(k for k in overrides if k not in OVERRIDE_KEYS and "." not in k)
        if unknown:
            raise TypeError(f"unknown RealtimeLoop options: {', '.join(unknown)}")
        dotted = {OVERRIDE_KEYS.get(k, k): v for k, v in overrides.items() if v is not None}
        self.config = config or load_config(config_path, dotted).config
        self.user_id = user_id
        self.incognito = incognito
        self.ui = ui
        self.audio_input = str(audio_input) if audio_input else None
        self.audio_output = str(audio_output) if audio_output else None
        self.echo_room = echo_room  # "DELAY_MS:GAIN[:NOISE_DB]": the echo test room (--echo-room)
        self.record = str(record) if record else None
        self.session: Session | None = None
        self._stop_requested = threading.Event()
        self._last_ctrl_c = 0.0

    # public API

    def start(self) -> int:
        """Run the session until it ends; return the exit code (0, or 1 for a real failure)."""
        logs.setup(self.config.logging.level, self.config.logging.file)
        return asyncio.run(self._run())

    def stop(self) -> None:
        """End the session (thread-safe, idempotent)."""
        self._stop_requested.set()
        if self.session is not None:
            self.session.stop()

    # the front-end

    async def _run(self) -> int:
        if self._stop_requested.is_set():
            return 0
        ui = self.ui or (InteractiveUI() if sys.stdin.isatty() else PlainUI())
        self.ui = ui
        mode = self.config.interaction
        notices: list[str] = []
        audio_in: AudioInput | None = None
        if mode.input_mode != "text" or self.audio_input:
            try:
                audio_in = open_audio_input(self.config, self.audio_input)
            except AudioError as exc:
                if self.audio_input:  # the recording was the point of the session
                    raise UsageError(str(exc)) from None
                notices.append(f"{exc}; type instead.")
        player = None
        if mode.output_mode != "text" or self.audio_output:
            try:  # pygame's mixer opens on its own thread: the loop does not wait for it
                player = await asyncio.to_thread(open_audio_output, self.config, self.audio_output)
            except AudioError as exc:
                notices.append(f"{exc}; replies are text only.")
        room = attach_echo_room(self.echo_room, audio_in, player) if self.echo_room else None
        session = Session(
            self.config,
            self.user_id,
            hearing=audio_in is not None,
            player=player,
            incognito=self.incognito,
            realtime_input=audio_in.realtime if audio_in is not None else True,
            input_ends_session=audio_in is not None and audio_in.recording,
            max_queued_frames=audio_in.max_queued_frames if audio_in is not None else None,
        )
        self.session = session
        if self._stop_requested.is_set():
            session.stop()
        renderer = Renderer(ui)
        session.subscribe(renderer)
        if self.record:
            from ..realtime_loop.recorder import attach_recorder

            attach_recorder(session, self.record)
        loop = asyncio.get_running_loop()
        feeding: asyncio.Task[None] | None = None
        try:
            await session.open()
            self._banner(session, audio_in, room)
            renderer.banner_shown()
            for notice in notices:
                ui.notice(notice)
            if audio_in is not None and session.hearing:
                feeding = asyncio.create_task(feed(session, audio_in), name="audio in")
            elif self.audio_input:
                session.notify("The recording cannot be heard (see above).", Level.ERROR)
                session.stop(exit_code=1)
            ui.start_input(loop, self._on_line, self._on_ctrl_c, session.replying)
            self._install_signals(loop, ui)
            return await session.run()
        finally:
            ui.stop_input()
            if feeding is not None:
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
            if player is not None:
                # Writes the --audio-output file's header; releases the audio device.
                await asyncio.to_thread(player.close)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)
                loop.remove_signal_handler(signal.SIGINT)

    def _banner(self, session: Session, audio_in: AudioInput | None, room: str | None) -> None:
        assert self.ui is not None
        mode = self.config.interaction
        parts = session.describe()
        hears = "keyboard"
        if audio_in is not None and session.hearing:
            heard = f"{audio_in.description}; {parts['speech in']}"
            hears = heard if mode.input_mode == "voice" else f"keyboard and {heard}"
            if room:
                hears += f"; {room}"
        says = "text"
        if "speech out" in parts:
            says = (
                parts["speech out"]
                if mode.output_mode == "voice"
                else f"text and {parts['speech out']}"
            )
        user = self.user_id + (" (incognito: nothing is saved)" if self.incognito else "")
        rows = [("user", user)]
        if "language model" in parts:
            rows.append(("language model", parts["language model"]))
        rows += [("input", hears), ("output", says)]
        if "memory" in parts:
            rows.append(("memory", parts["memory"]))
        self.ui.banner("perslm-voice", rows)

    def _on_line(self, raw: bytes | str | None) -> None:
        assert self.session is not None
        self.session.type_line(raw, live=isinstance(self.ui, InteractiveUI))

    def _on_ctrl_c(self) -> None:
        assert self.session is not None and self.ui is not None
        now = time.monotonic()
        if self.session.interrupt():
            self._last_ctrl_c = now
            return
        if now - self._last_ctrl_c < DOUBLE_CTRL_C_S:
            self.session.stop()
            return
        self._last_ctrl_c = now
        self.ui.notice("Press Ctrl+C again to quit (or type /quit).", "dim")

    def _install_signals(self, loop: asyncio.AbstractEventLoop, ui: UI) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            if not isinstance(ui, InteractiveUI):
                # In a terminal prompt_toolkit reads Ctrl+C as a key; otherwise it is a signal.
                loop.add_signal_handler(signal.SIGINT, self._on_ctrl_c)
