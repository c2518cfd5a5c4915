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
from .config import Config, VoiceSettings, load_config
from .echo import SOMEONE_ELSE_MIN, is_our_echo
from .errors import LLMError, PerslmVoiceError, StoreError
from .events import Source, State, UserText
from .llm import LLM, Message, stream_async
from .llm.fallback import build_llm
from .memory import Store, default_store_path
from .ui.console import UI, InteractiveUI, PlainUI, clean_line
from .voice import (
    STT_FAILED,
    Listener,
    Speaker,
    open_listener,
    open_speaker,
    protect_from_echo,
    voice_for,
)

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
INTERRUPTED_DASH = " —"  # ends a reply, in the history, where the user interrupted it
INTERRUPTED_NOTE = (
    "An answer of yours that ends with a dash (—) was interrupted there by the user; "
    "do not mention it."
)
ECHO_RECHECK_S = 0.5  # while speech that began as our echo goes on, check it again this often
ECHO_RECHECK_WINDOW_S = 1.2  # ... on its latest audio
HOLD_RECHECK_S = 0.3  # someone else's sound with no words yet: stay quiet, listen this much more
HOLD_RECHECKS = 2  # ... at most this many times, then the reply goes on


@dataclass
class TurnRecord:
    """What the loop knows about the turn in progress."""

    user_text: str
    source: Source
    marks: dict[str, float] = field(default_factory=dict)  # stage -> time.monotonic()
    reply: str = ""
    interrupted: bool = False
    heard: str | None = None  # what the user actually heard of an interrupted reply
    text_done: bool = False  # the whole reply is on screen (speech may still be playing)


@dataclass
class Draft:
    """A reply started on the early transcript, while the end-of-speech window is still open.

    Its tokens and its synthesized voice are kept, unseen and unheard, until the window closes on
    the same utterance (the user is done): then the turn takes them over, and its first audio
    plays at once. If the user goes on talking, or types, the draft is dropped without a trace.
    """

    text: UserText
    marks: dict[str, float]
    pieces: asyncio.Queue[str | BaseException | None] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None
    spoken: bool = False  # the speaker is holding this draft's voice

    def matches(self, text: UserText) -> bool:
        return (text.t_speech_end, text.text) == (self.text.t_speech_end, self.text.text)


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
        audio_input: str | Path | None = None,
        audio_output: str | Path | None = None,
        echo_room: str | None = None,
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
        self._listener: Listener | None = None
        self._speaker: Speaker | None = None
        self._voice: VoiceSettings = self.config.tts.voice
        self._voice_rows: list[tuple[str, str]] = []
        self._voice_notices: list[str] = []
        self._tts_failed = False
        self._backend_label = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = threading.Event()
        self._stop: asyncio.Event | None = None
        self._inputs: asyncio.Queue[UserText | None] | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._draft: Draft | None = None
        self._prefill_task: asyncio.Task[None] | None = None
        self._llm: LLM | None = None
        self._llm_ready: asyncio.Future[None] | None = None
        self._store: Store | None = None
        self._session_id: int | None = None
        self._last_user_text: str | None = None
        self._last_failed = False
        self._last_turn: TurnRecord | None = None
        self._history: list[Message] = []  # this session's turns, as the model will see them
        self._interrupted_note: str | None = None
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
        self._setup_voice()
        self._show_banner()
        ui.start_input(self._loop, self._on_line, self._on_ctrl_c)
        ui.set_state(State.LISTENING)
        tasks = [
            asyncio.create_task(self._conversation(), name="conversation"),
            asyncio.create_task(self._watch_timeout(), name="timeout"),
        ]
        if self._listener is not None:
            tasks.append(asyncio.create_task(self._listen(self._listener), name="listener"))
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
        self._llm_ready.add_done_callback(self._llm_loaded)

    def _llm_loaded(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        if future.exception() is None:
            self._prefill_next()
            return
        assert self.ui is not None
        self.ui.notice(f"The language model cannot start: {future.exception()}", "red")

    def _setup_voice(self) -> None:
        """Open the microphone (or --audio-input) and the voice, as the modes ask; say what fails."""
        mode = self.config.interaction
        hears, says = "keyboard", "text"
        if mode.input_mode != "text" or self.audio_input:
            try:
                self._listener, description = open_listener(
                    self.config,
                    self.audio_input,
                    on_speech_started=self._on_speech_started,
                    on_text=self._on_voice_text,
                    on_rejected=self._on_rejected,
                    on_end=self._on_source_end,
                )
                hears = description if mode.input_mode == "voice" else f"keyboard and {description}"
            except PerslmVoiceError as exc:
                self._voice_notices.append(f"{exc}; type instead.")
        if mode.output_mode != "text" or self.audio_output:
            try:
                self._speaker, description = open_speaker(
                    self.config, self.audio_output, self._on_first_audio, self._on_tts_failure
                )
                says = description if mode.output_mode == "voice" else f"text and {description}"
            except PerslmVoiceError as exc:
                suffix = "" if "text-only" in str(exc) else "; replies are text only"
                self._voice_notices.append(f"{exc}{suffix}.")
        if self._store is not None:
            with contextlib.suppress(StoreError):
                self._voice = voice_for(self.config, self._store.get_profile(self.user_id))
        if self._listener is not None and mode.streaming and mode.speculative_reply:
            self._listener.on_early_text = self._on_early_text
            self._listener.on_early_dropped = self._drop_draft
        echo = protect_from_echo(self.config, self._listener, self._speaker, self.echo_room)
        if echo:
            hears += f"; {', '.join(echo)}"
        self._voice_rows = [("input", hears), ("output", says)]
        llm = self.config.llm
        stt = self.config.speech.backend if self._listener is not None else "-"
        tts = getattr(self._speaker.tts, "name", "?") if self._speaker is not None else "-"
        self._backend_label = f"llm:{llm.preset or llm.backend} stt:{stt} tts:{tts}"

    async def _listen(self, listener: Listener) -> None:
        if self.audio_input is not None:
            # A recording starts when the session is ready, as a person would start talking.
            loading = [listener.stt_ready, self._llm_ready]
            if self._speaker is not None:
                loading.append(self._speaker.tts_ready)
            await asyncio.gather(*(f for f in loading if f is not None), return_exceptions=True)
        try:
            await listener.run()
        except Exception as exc:  # a bug: say so, and do not wait forever for a recording's end
            log.exception("listener failed")
            self._on_source_end(f"voice input failed ({type(exc).__name__}: {exc})")
            if self.audio_input is not None and self._inputs is not None:
                self._inputs.put_nowait(None)

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
        rows += self._voice_rows
        if self._store is not None:
            rows.append(("memory", str(self._store.path)))
        self.ui.banner("perslm-voice", rows)
        for notice in self._voice_notices:
            self.ui.notice(notice)

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
        self._drop_draft()
        if self._prefill_task is not None:
            self._prefill_task.cancel()
        if self._reply_task is not None and not self._reply_task.done():
            self._reply_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reply_task, 1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._speaker is not None:
            # Writes the --audio-output file's header; releases the audio device.
            await asyncio.to_thread(self._speaker.player.close)
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
            if self.audio_input is None:  # with --audio-input the recording ends the session
                self._inputs.put_nowait(None)
            return
        text, replaced = clean_line(raw)
        if replaced:
            self.ui.notice("Part of that line was not valid UTF-8; it was replaced with '\ufffd'.")
        if not text:
            return
        self._last_activity = time.monotonic()
        if not text.startswith("/"):
            self._drop_draft()  # the user typed instead: a reply to what they said is not wanted
        if isinstance(self.ui, InteractiveUI) and not text.startswith("/"):
            self._barge_in("typed")  # a line typed over the assistant interrupts it, as speech does
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
        draft = self._claim_draft(text)
        turn = TurnRecord(text.text, text.source, marks=draft.marks if draft else {})
        if text.source is Source.VOICE:
            turn.marks["speech_end"] = text.t_speech_end or time.monotonic()
            turn.marks["transcript_ready"] = text.t_transcript or time.monotonic()
        else:
            turn.marks["typed"] = text.t_transcript or time.monotonic()
        self._last_turn = turn
        self._last_user_text = text.text
        user_turn_id = self._save_turn("user", text.text, text.source.value) if store_user else None
        self.ui.set_state(State.THINKING)
        speaker = self._speaker if not self._tts_failed else None
        if speaker is not None:
            if draft is not None and draft.spoken:
                speaker.release()
            else:
                speaker.begin(self._voice, turn.marks, self.config.interaction.streaming)
            self._set_listening_strict(True)
        try:
            reply = None if draft is not None else self._memory_intent(text.text, user_turn_id)
            self.ui.reply_started()
            if draft is not None:
                await self._take_over(turn, draft)
            elif reply is not None:
                self._say_piece(turn, reply)
            else:
                await self._generate(turn)
            self.ui.reply_finished()
            turn.text_done = True
            if speaker is not None and not self._tts_failed:
                await speaker.finish()
            self._last_failed = False
        except asyncio.CancelledError:
            turn.interrupted = True
            turn.heard = speaker.interrupt() if speaker is not None else turn.reply
            turn.marks.setdefault("silenced", time.monotonic())  # set early by a paused check
            if turn.text_done:  # the text was all out; the voice was cut
                self.ui.notice("[interrupted]", "dim")
            else:
                self.ui.reply_finished("interrupted")
            raise
        except LLMError as exc:
            partial = getattr(exc, "partial", "")
            self._last_failed = not partial
            if partial:
                turn.reply = partial.strip()
                turn.interrupted = True
            self.ui.reply_finished("cut off" if partial else None)
            if speaker is not None:
                if partial:
                    speaker.feed(" I was cut off there.")
                    await speaker.finish()
                else:
                    speaker.interrupt()
            hint = " Type /retry to ask again." if self._last_failed else ""
            message = str(exc) if str(exc).endswith(".") else f"{exc}."
            self.ui.notice(message + hint, "red")
        finally:
            if draft is not None and draft.task is not None:
                draft.task.cancel()  # an interrupted turn stops its draft's generation too
            self._finish_turn(turn)

    def _finish_turn(self, turn: TurnRecord) -> None:
        assert self.ui is not None
        self._set_listening_strict(False)
        turn.reply = turn.reply.strip()
        if turn.interrupted and turn.heard is None:
            turn.heard = turn.reply
        self._remember(turn)
        if turn.reply:
            self._save_turn(
                "assistant",
                turn.reply,
                None,
                interrupted=turn.interrupted,
                heard=turn.heard if turn.interrupted else None,
                backend=self._backend_label,
                timings=turn.marks,
            )
        self.ui.set_state(State.LISTENING)
        if self.config.interaction.show_timings and not turn.interrupted:
            self._show_timings(turn)
        self._prefill_next()

    def _llm_is_ready(self) -> bool:
        """The model has loaded (a failed load was said when it failed)."""
        ready = self._llm_ready
        if self._llm is None or ready is None or not ready.done() or ready.cancelled():
            return False
        return ready.exception() is None

    def _prefill_next(self) -> None:
        """Have the model read the next prompt as far as it is known (the system message and this
        session's history) now, while the user has yet to speak: the reply then reads only the
        user's words (LLM.prefill)."""
        llm = self._llm
        if llm is None or not self._llm_is_ready():
            return

        async def prefill() -> None:
            try:
                messages = await asyncio.to_thread(self._build_messages, "")
                await asyncio.to_thread(llm.prefill, messages[:-1])
            except Exception as exc:  # only a head start is lost: the reply reads it all
                log.debug("llm: reading the next prompt ahead failed: %s", exc)

        self._prefill_task = asyncio.create_task(prefill(), name="prefill")

    def _say_piece(self, turn: TurnRecord, piece: str, speak: bool = True) -> None:
        assert self.ui is not None
        turn.reply += piece
        self.ui.reply_piece(piece)
        if speak and self._speaker is not None and self._speaker.speaking:
            self._speaker.feed(piece)

    def _remember(self, turn: TurnRecord) -> None:
        """Add the finished turn to this session's history, as the model will see it next time.

        An interrupted reply enters the history as far as the user heard it, ending with a dash,
        and from then on the system message says what that dash means. Not a note right before
        the question (a small model says it back), nor one that comes and goes with the turn
        (each change to the system message makes llama.cpp read the whole prompt again: about
        1.4 s for 250 tokens on a busy 2-core machine, instead of its cached prefix).
        """
        self._history.append(Message("user", turn.user_text))
        said = turn.heard if turn.interrupted else turn.reply
        if said and turn.interrupted:
            self._history.append(Message("assistant", f"{said.rstrip()}{INTERRUPTED_DASH}"))
            self._interrupted_note = INTERRUPTED_NOTE
        elif said:
            self._history.append(Message("assistant", said))

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
        if self.config.interaction.streaming:
            async for piece in stream_async(self._llm, messages, cancel):
                turn.marks.setdefault("first_token", time.monotonic())
                self._say_piece(turn, piece)
        else:
            # The classic design, kept for comparison (scripts/bench_latency.py): the whole reply
            # is written before any of it is shown or spoken.
            pieces = []
            async for piece in stream_async(self._llm, messages, cancel):
                turn.marks.setdefault("first_token", time.monotonic())
                pieces.append(piece)
            self._say_piece(turn, "".join(pieces))
        turn.marks["reply_done"] = time.monotonic()

    # speculative replies

    def _on_early_text(self, text: UserText) -> None:
        """The early transcript of an utterance that may be over: start its reply, unheard."""
        if (
            self._replying()
            or self._draft is not None
            or (self._inputs is not None and not self._inputs.empty())
            or not self._llm_is_ready()
        ):
            return
        from .memory.intents import match_memory_intent

        if match_memory_intent(text.text):
            return  # a memory command writes to the store: it waits for the end of speech
        draft = Draft(text, {"reply_speculative": time.monotonic()})
        speaker = self._speaker if not self._tts_failed else None
        if speaker is not None:
            speaker.begin(self._voice, draft.marks, streaming=True, hold=True)
            draft.spoken = True
        draft.task = asyncio.create_task(self._draft_reply(draft), name="draft")
        self._draft = draft
        log.debug("reply: started speculatively on %r", text.text)

    async def _draft_reply(self, draft: Draft) -> None:
        assert self._llm is not None
        try:
            messages = await asyncio.to_thread(self._build_messages, draft.text.text)
            async for piece in stream_async(self._llm, messages, draft.cancel):
                draft.marks.setdefault("first_token", time.monotonic())
                if draft.spoken and self._speaker is not None and self._speaker.speaking:
                    self._speaker.feed(piece)
                draft.pieces.put_nowait(piece)
            draft.marks["reply_done"] = time.monotonic()
        except PerslmVoiceError as exc:
            draft.pieces.put_nowait(exc)  # raised by the turn that takes the draft over
        finally:
            draft.pieces.put_nowait(None)

    def _drop_draft(self) -> None:
        """The user went on (or typed): the speculative reply is not wanted."""
        draft, self._draft = self._draft, None
        if draft is None:
            return
        draft.cancel.set()
        if draft.task is not None:
            draft.task.cancel()
        if draft.spoken and self._speaker is not None:
            self._speaker.discard()
        log.debug("reply: the speculative reply to %r is dropped", draft.text.text)

    def _claim_draft(self, text: UserText) -> Draft | None:
        """The draft made for ``text``, now wanted; any other draft is dropped."""
        draft = self._draft
        if draft is not None and draft.matches(text):
            self._draft = None
            log.debug("reply: the speculative reply stands")
            return draft
        self._drop_draft()
        return None

    async def _take_over(self, turn: TurnRecord, draft: Draft) -> None:
        """Show (and go on with) a draft's reply; its voice is already on its way."""
        while (item := await draft.pieces.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            self._say_piece(turn, item, speak=False)  # the draft feeds the speaker itself

    # voice events

    def _set_listening_strict(self, strict: bool) -> None:
        """While the assistant talks, only clear, sustained speech counts (barge-in, not echo)."""
        if self._listener is not None:
            self._listener.endpointer.assistant_speaking = strict

    def _barge_in(self, how: str, t_speech_start: float | None = None) -> None:
        if not self._replying() or not self.config.interaction.interruption_enabled:
            return
        log.info("barge-in (%s): stopping the reply", how)
        assert self._reply_task is not None and self._last_turn is not None
        marks = self._last_turn.marks
        marks.setdefault("barge_in_detected", time.monotonic())  # set early by a paused check
        if t_speech_start is not None:
            marks["barge_in_speech_start"] = t_speech_start
        self._reply_task.cancel()

    async def _check_barge_in(self, t_start: float) -> None:
        """Speech while we talk, and our voice may be its source: silence at once, listen, decide.

        A sound that what we played explains (``Listener.hear_recent``) is our echo and is
        let be, with no pause. Otherwise the reply is paused (so a real barge-in is silenced
        within milliseconds), the first fraction of a second of the speech is transcribed, and if
        it is mostly our own words the reply resumes; otherwise this is the user, and the reply is interrupted. While that
        utterance goes on (our echo keeps it open) its latest second is checked again, so a user
        who starts talking inside our echo still interrupts (a recheck needs three words that are
        not ours: a second of our echo is misheard more often than half a second of it; and as the
        reply was not paused, the decision is the detection). A sound mostly not ours that gives
        no words yet keeps the reply quiet while it is heard again, twice at most, on all of it.
        """
        assert self._listener is not None and self._speaker is not None
        listener, speaker = self._listener, self._speaker
        first = True
        since = t_start
        held: tuple[float, float] | None = None  # (detected, silenced): kept quiet to listen on
        holds = 0
        while self._replying() and self._last_turn is not None:
            audio, not_ours = listener.hear_recent(since)
            if is_our_echo(len(audio), not_ours):
                # The sound is what we are playing, come back: no need to pause or transcribe.
                log.info("echo: the sound heard is our own voice")
                if held is not None:
                    speaker.resume()
                    held = None
            else:
                marks = self._last_turn.marks
                paused = first or held is not None
                if held is not None:
                    detected, silenced = held
                else:
                    detected = time.monotonic()
                    silenced = speaker.pause() if paused else None
                try:
                    heard = await listener.transcribe_heard(audio, not_ours)
                except PerslmVoiceError:
                    heard = None
                except Exception:  # a bug must not leave the reply paused for good
                    log.exception("barge-in: the check failed")
                    heard = None
                transcript = heard.transcript if heard is not None else None
                text = transcript.text.strip() if transcript and not transcript.rejected else ""
                verified = time.monotonic()
                if not self._replying():
                    return
                # Mostly not our voice: someone is talking, and their words (ours taken out of
                # the sound) are theirs. Otherwise the words must not be ours.
                someone_else = heard is not None and (heard.not_ours or 0.0) >= SOMEONE_ELSE_MIN
                new = 1 if paused else 3
                if text and (
                    someone_else or not listener.heard_echo(text, t_start, min_new_words=new)
                ):
                    log.info("barge-in: %r is not our echo", text)
                    marks["barge_in_detected"] = detected if paused else verified
                    marks["silenced"] = silenced if silenced is not None else time.monotonic()
                    marks["barge_in_verified"] = verified
                    self._barge_in("voice", t_start)
                    return
                if someone_else and not text and paused and holds < HOLD_RECHECKS:
                    # Mostly not our voice, and no words in its first fraction of a second yet
                    # (a person's first syllables often give Whisper none): listen on, quiet,
                    # rather than talk over them until the next check.
                    holds += 1
                    held = (detected, silenced)
                    first = False
                    log.info("barge-in: someone else's sound, no words yet; listening on")
                    await asyncio.sleep(HOLD_RECHECK_S)
                    if listener.endpointer.in_speech:
                        continue
                log.info(
                    "echo: not (yet) a barge-in (%r, checked in %.0f ms)",
                    text,
                    (verified - detected) * 1000,
                )
                if paused:
                    speaker.resume()
                held = None
            first = False
            await asyncio.sleep(ECHO_RECHECK_S)
            if not listener.endpointer.in_speech:
                return
            since = time.monotonic() - ECHO_RECHECK_WINDOW_S

    def _on_speech_started(self, t_start: float) -> None:
        assert self.ui is not None
        self._last_activity = time.monotonic()
        if self._replying():
            # A file played in "fast" mode is a batch of questions, not a person talking over us.
            if self.config.audio.input_speed == "realtime" or self.audio_input is None:
                speaker, listener = self._speaker, self._listener
                checked = listener is not None and listener.echo_text is not None
                if speaker is not None and checked and speaker.may_echo(t_start):
                    task = asyncio.ensure_future(self._check_barge_in(t_start))
                    task.add_done_callback(lambda t: t.cancelled() or t.exception())
                else:
                    self._barge_in("voice", t_start)
        self.ui.set_state(State.HEARING)

    def _on_voice_text(self, text: UserText) -> None:
        assert self.ui is not None and self._inputs is not None
        self._last_activity = time.monotonic()
        self.ui.heard(text.text)
        if not self._replying():
            self.ui.set_state(State.LISTENING)
        elif self.config.audio.input_speed == "realtime" or self.audio_input is None:
            # Words that are not our echo (the listener dropped those), heard while we talk, and
            # not taken as a barge-in when they began: the user is talking over us after all.
            self._barge_in("voice")
        self._inputs.put_nowait(text)

    def _on_rejected(self, reason: str) -> None:
        assert self.ui is not None
        log.info("heard something, not taken as a turn: %s", reason)
        if "language" in reason:
            self.ui.notice(f"Not understood: {reason}.", "dim")
        elif reason.startswith(STT_FAILED):
            detail = reason.removeprefix(STT_FAILED).lstrip(": ")
            self.ui.notice(f"Not heard: {detail}; please say it again, or type it.")
        if not self._replying():
            self.ui.set_state(State.LISTENING)

    def _on_source_end(self, reason: str | None) -> None:
        assert self.ui is not None and self._inputs is not None
        if reason is None:  # the end of --audio-input: finish the turns heard, then end
            self._inputs.put_nowait(None)
        else:
            self.ui.notice(f"{reason}; carrying on typed.")

    def _on_first_audio(self, t: float) -> None:
        assert self.ui is not None
        self.ui.set_state(State.SPEAKING)

    def _on_tts_failure(self, message: str) -> None:
        assert self.ui is not None
        if not self._tts_failed:
            self._tts_failed = True
            self.ui.notice(f"Speech output failed: {message}; replies are text only.")

    def _build_messages(self, user_text: str) -> list[Any]:
        from .persona import build_messages

        assert self._llm is not None
        messages = build_messages(
            store=self._store,
            user_id=self.user_id,
            session_id=self._session_id,
            user_text=user_text,
            config=self.config,
            llm=self._llm,
            history=self._history,
            interrupted_note=self._interrupted_note,
        )
        return messages

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
