"""RealtimeLoop: one conversation session, wiring keyboard and voice input to the LLM and the voice.

Run it with `perslm-voice --user NAME` or `python -m perslm_voice.realtime_loop --user NAME`, or from
Python::

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import logs
from .config import Config, load_config
from .errors import LLMError, PerslmVoiceError, StoreError
from .events import Source, State, UserText
from .llm import LLM, Message, stream_async
from .llm.fallback import build_llm
from .memory import Store, default_store_path
from .ui.console import UI, InteractiveUI, PlainUI, clean_line

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
HELP = """Commands:
  /help      this list
  /retry     ask again what you said last (after an error)
  /timings   how long each stage of the last turn took
  /quit      end the session (Ctrl+D too)
Ctrl+C stops the reply in progress; twice in a row ends the session."""
DOUBLE_CTRL_C_S = 2.0


@dataclass
class TurnRecord:
    """What the loop knows about the turn in progress."""

    user_text: str
    source: Source
    started_at: float = field(default_factory=time.time)
    marks: dict[str, float] = field(default_factory=dict)  # stage -> time.monotonic()
    reply: str = ""
    interrupted: bool = False


class RealtimeLoop:
    """A conversation session for one user: keyboard and voice in, text and voice out."""

    def __init__(
        self,
        config_path: str | Path | None = None,
        user_id: str = "default",
        *,
        config: Config | None = None,
        incognito: bool = False,
        ui: UI | None = None,
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = threading.Event()
        self._stop: asyncio.Event | None = None
        self._inputs: asyncio.Queue[UserText | None] | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._llm: LLM | None = None
        self._llm_ready: asyncio.Future[None] | None = None
        self._store: Store | None = None
        self._session_id: int | None = None
        self._last_user_text: str | None = None
        self._last_failed = False
        self._last_turn: TurnRecord | None = None
        self._history: list[Message] = []  # this session's turns, as the model will see them
        self._last_activity = time.monotonic()
        self._last_ctrl_c = 0.0
        self._exit_code = 0

    # public API

    def start(self) -> int:
        """Run the session until it ends; return the exit code (0, or 1 for a real failure)."""
        logs.setup(self.config.logging.level, self.config.logging.file)
        asyncio.run(self._run())
        return self._exit_code

    def stop(self) -> None:
        """End the session (thread-safe, idempotent)."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    # session

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested.is_set():
            return
        self._inputs = asyncio.Queue()
        ui = self.ui or (InteractiveUI(busy=self._replying) if sys.stdin.isatty() else PlainUI())
        self.ui = ui
        self._install_signals()
        self._open_store()
        self._start_llm()
        self._show_banner()
        ui.start_input(self._loop, self._on_line, self._on_ctrl_c)
        ui.set_state(State.LISTENING)
        tasks = [
            asyncio.create_task(self._conversation(), name="conversation"),
            asyncio.create_task(self._watch_timeout(), name="timeout"),
        ]
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(tasks)

    def _open_store(self) -> None:
        assert self.ui is not None
        if not self.config.memory.enabled:
            return
        path = Path(self.config.memory.path).expanduser() if self.config.memory.path else None
        try:
            self._store = Store(path or default_store_path(), readonly=self.incognito)
            if not self.incognito:  # incognito reads the profile and memory, writes nothing
                self._session_id = self._store.start_session(self.user_id)
        except StoreError as exc:
            self._store = None
            self.ui.notice(f"No memory this session: {exc}")

    def _start_llm(self) -> None:
        assert self._loop is not None and self.ui is not None
        loop, ui = self._loop, self.ui

        def notify(message: str) -> None:  # called from the LLM's thread
            loop.call_soon_threadsafe(ui.notice, message)

        try:
            self._llm = build_llm(self.config.llm, notify)
        except PerslmVoiceError as exc:
            self.ui.notice(f"No language model: {exc}", "red")
            return
        llm = self._llm
        started = time.monotonic()

        def load() -> None:
            llm.load()
            log.info("llm: ready after %.2f s", time.monotonic() - started)

        # Loading runs while the banner shows and the user types: the prompt is usable at once.
        self._llm_ready = self._loop.run_in_executor(None, load)

    def _show_banner(self) -> None:
        assert self.ui is not None
        rows = [
            ("user", self.user_id + (" (incognito: nothing is saved)" if self.incognito else ""))
        ]
        if self._llm is not None:
            try:
                rows.append(("language model", self._llm.description))
            except PerslmVoiceError as exc:
                rows.append(("language model", f"unavailable: {exc}"))
        rows.append(("input", "keyboard"))
        rows.append(("output", "text"))
        if self._store is not None:
            rows.append(("memory", str(self._store.path)))
        self.ui.banner("perslm-voice", rows)
        if self.config.interaction.input_mode != "text":
            self.ui.notice("No microphone: voice input is not available yet; type instead.")

    def _install_signals(self) -> None:
        assert self._loop is not None
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.add_signal_handler(signal.SIGTERM, self.stop)
            if not isinstance(self.ui, InteractiveUI):
                # In a terminal prompt_toolkit reads Ctrl+C as a key; otherwise it is a signal.
                self._loop.add_signal_handler(signal.SIGINT, self._on_ctrl_c)

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        assert self.ui is not None
        self.ui.stop_input()
        if self._reply_task is not None and not self._reply_task.done():
            self._reply_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reply_task, 1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.ui.set_state(State.STOPPED)
        if self._store is not None:
            with contextlib.suppress(StoreError):
                if self._session_id is not None:
                    self._store.end_session(self._session_id)
            self._store.close()
        if self._loop is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.remove_signal_handler(signal.SIGTERM)
                self._loop.remove_signal_handler(signal.SIGINT)

    # input

    def _on_line(self, raw: bytes | str | None) -> None:
        assert self._inputs is not None and self.ui is not None
        if raw is None:
            self._inputs.put_nowait(None)
            return
        text, replaced = clean_line(raw)
        if replaced:
            self.ui.notice("Part of that line was not valid UTF-8; it was replaced with '\ufffd'.")
        if not text:
            return
        self._last_activity = time.monotonic()
        self._inputs.put_nowait(UserText(text, Source.KEYBOARD, t_transcript=time.monotonic()))

    def _replying(self) -> bool:
        return self._reply_task is not None and not self._reply_task.done()

    def _on_ctrl_c(self) -> None:
        assert self.ui is not None
        now = time.monotonic()
        if self._replying():
            self._reply_task.cancel()
            self._last_ctrl_c = now
            return
        if now - self._last_ctrl_c < DOUBLE_CTRL_C_S:
            self.stop()
            return
        self._last_ctrl_c = now
        self.ui.notice("Press Ctrl+C again to quit (or type /quit).", "dim")

    async def _watch_timeout(self) -> None:
        timeout = self.config.interaction.timeout
        if not timeout:
            return
        while True:
            busy = self._reply_task is not None and not self._reply_task.done()
            if busy:
                self._last_activity = time.monotonic()
            idle = time.monotonic() - self._last_activity
            if idle >= timeout:
                assert self.ui is not None
                self.ui.notice(f"No turn for {timeout:g} s: ending the session.", "dim")
                self.stop()
                return
            await asyncio.sleep(min(1.0, timeout - idle))

    # conversation

    async def _conversation(self) -> None:
        assert self._inputs is not None and self.ui is not None
        while True:
            item = await self._inputs.get()
            if item is None:  # end of input (Ctrl+D, end of a pipe)
                self.stop()
                return
            if item.text.startswith("/"):
                if not await self._command(item.text):
                    self.stop()
                    return
                continue
            await self._run_turn(item)

    async def _command(self, line: str) -> bool:
        """Run a /command; False ends the session."""
        assert self.ui is not None
        name = line.split()[0].lower()
        if name in ("/quit", "/exit", "/bye"):
            return False
        if name in ("/help", "/?"):
            self.ui.console.print(HELP, markup=False)
        elif name == "/retry":
            if self._last_user_text and self._last_failed:
                await self._run_turn(UserText(self._last_user_text, Source.KEYBOARD), store=False)
            else:
                self.ui.notice("Nothing to retry.", "dim")
        elif name == "/timings":
            self._show_timings(self._last_turn)
        else:
            self.ui.notice(f"Unknown command {name}: type /help for the list.")
        return True

    async def _run_turn(self, text: UserText, store: bool = True) -> None:
        self._reply_task = asyncio.create_task(self._respond(text, store_user=store), name="reply")
        try:
            await self._reply_task
        except asyncio.CancelledError:
            if self._stop is not None and self._stop.is_set():
                raise
        finally:
            self._last_activity = time.monotonic()

    async def _respond(self, text: UserText, store_user: bool = True) -> None:
        assert self.ui is not None
        turn = TurnRecord(text.text, text.source)
        turn.marks["user_text"] = text.t_transcript or time.monotonic()
        if text.t_speech_end is not None:
            turn.marks["speech_end"] = text.t_speech_end
        self._last_turn = turn
        self._last_user_text = text.text
        user_turn_id = self._save_turn("user", text.text, text.source.value) if store_user else None
        self.ui.set_state(State.THINKING)
        try:
            reply = self._memory_intent(text.text, user_turn_id)
            if reply is not None:
                self.ui.reply_started()
                self.ui.reply_piece(reply)
                turn.reply = reply
                self.ui.reply_finished()
            else:
                await self._generate(turn)
            self._last_failed = False
        except asyncio.CancelledError:
            turn.interrupted = True
            self.ui.reply_finished("interrupted")
            raise
        except LLMError as exc:
            partial = getattr(exc, "partial", "")
            self._last_failed = not partial
            if partial:
                turn.reply = partial.strip()
                turn.interrupted = True
            self.ui.reply_finished("cut off" if partial else None)
            hint = " Type /retry to ask again." if self._last_failed else ""
            self.ui.notice(f"{exc}.{hint}" if not str(exc).endswith(".") else f"{exc}{hint}", "red")
        finally:
            self._remember(turn)
            if turn.reply:
                self._save_turn(
                    "assistant",
                    turn.reply,
                    None,
                    interrupted=turn.interrupted,
                    heard=turn.reply if turn.interrupted else None,
                    timings=turn.marks,
                )
            self.ui.set_state(State.LISTENING)
            if self.config.interaction.show_timings and not turn.interrupted:
                self._show_timings(turn)

    def _remember(self, turn: TurnRecord) -> None:
        """Add the finished turn to this session's history, as the model will see it next time."""
        from .persona import INTERRUPTED_MARK

        self._history.append(Message("user", turn.user_text))
        if turn.reply:
            heard = turn.reply + (f" {INTERRUPTED_MARK}" if turn.interrupted else "")
            self._history.append(Message("assistant", heard))

    async def _generate(self, turn: TurnRecord) -> None:
        assert self.ui is not None
        if self._llm is None or self._llm_ready is None:
            raise LLMError("no language model is available (see the message above)")
        if not self._llm_ready.done():
            self.ui.set_state(State.LOADING)
        try:
            await asyncio.shield(self._llm_ready)
        except PerslmVoiceError as exc:
            raise LLMError(str(exc)) from None
        self.ui.set_state(State.THINKING)
        messages = await asyncio.to_thread(self._build_messages, turn.user_text)
        cancel = threading.Event()
        self.ui.reply_started()
        async for piece in stream_async(self._llm, messages, cancel):
            if "first_token" not in turn.marks:
                turn.marks["first_token"] = time.monotonic()
            turn.reply += piece
            self.ui.reply_piece(piece)
        turn.marks["reply_done"] = time.monotonic()
        turn.reply = turn.reply.strip()
        self.ui.reply_finished()

    def _build_messages(self, user_text: str) -> list[Any]:
        from .persona import build_messages

        assert self._llm is not None
        return build_messages(
            store=self._store,
            user_id=self.user_id,
            session_id=self._session_id,
            user_text=user_text,
            config=self.config,
            llm=self._llm,
            history=self._history,
        )

    def _memory_intent(self, text: str, turn_id: int | None) -> str | None:
        from .memory.intents import handle_memory_intent

        try:
            return handle_memory_intent(self._store, self.user_id, text, turn_id)
        except StoreError as exc:
            assert self.ui is not None
            self.ui.notice(f"Memory unavailable: {exc}")
            return None

    def _save_turn(self, role: str, text: str, source: str | None, **fields: Any) -> int | None:
        if self._store is None or self._session_id is None or self.incognito:
            return None
        try:
            return self._store.add_turn(
                self._session_id, self.user_id, role, text, source=source, **fields
            )
        except StoreError as exc:
            assert self.ui is not None
            self.ui.notice(f"Could not save this turn: {exc}")
            return None

    def _show_timings(self, turn: TurnRecord | None) -> None:
        assert self.ui is not None
        if turn is None or not turn.marks:
            self.ui.notice("No turn yet.", "dim")
            return
        start = turn.marks.get("speech_end", turn.marks.get("user_text", 0.0))
        rows = [
            (stage.replace("_", " "), f"{(t - start) * 1000:.0f}")
            for stage, t in sorted(turn.marks.items(), key=lambda kv: kv[1])
        ]
        self.ui.show_timings(rows)


def main() -> None:
    """`python -m perslm_voice.realtime_loop`: the same options as `perslm-voice chat`."""
    from .cli import run_guarded
    from .cli.chat import chat

    run_guarded(lambda: chat.main(prog_name="python -m perslm_voice.realtime_loop"))


if __name__ == "__main__":
    main()
