"""Terminal rendering and keyboard input for a session.

Two front ends with one interface: `InteractiveUI` for a terminal (prompt_toolkit keeps the input line
intact at the bottom while replies stream above it, with the assistant's state beside the prompt) and
`PlainUI` for piped input and output (lines in, streamed text out).
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from ..events import State

LineHandler = Callable[[str | None], None]  # a typed line; None at end of input
KeyHandler = Callable[[], None]

STATE_STYLE = {
    State.LOADING: "yellow",
    State.LISTENING: "green",
    State.HEARING: "bold green",
    State.THINKING: "cyan",
    State.SPEAKING: "magenta",
    State.STOPPED: "dim",
}


def private_stream(fd: int) -> TextIO:
    """A text stream on a duplicate of ``fd``.

    llama.cpp points descriptors 1 and 2 (and sys.stdout/stderr) at /dev/null while it loads a
    model, in a background thread; what the session prints meanwhile must not vanish.
    """
    try:
        return os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace", buffering=1)
    except OSError:  # no such descriptor (a daemon): fall back to whatever Python has
        return sys.stdout if fd == 1 else sys.stderr


class UI:
    """What the loop shows and reads; the two front ends below implement it."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.state = State.LOADING
        self.assistant_name = "assistant"

    # output
    def banner(self, title: str, rows: list[tuple[str, str]]) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(f"[bold]{title}[/bold]")
        self.console.print(table)

    def notice(self, text: str, style: str = "yellow") -> None:
        self.console.print(f"[{style}]{_escape(text)}[/{style}]")

    def set_state(self, state: State) -> None:
        self.state = state

    def heard(self, text: str) -> None:
        """What speech-to-text made of the user's voice."""
        self.hearing("")
        self.console.print(f"[bold green]you (voice):[/bold green] {_escape(text)}")

    def typed(self, text: str) -> None:
        """A typed line, as its reply begins (an interactive prompt shows it already)."""

    def hearing(self, text: str) -> None:
        """What the user has said so far, while they speak ("" when it is over); a terminal
        shows it on the prompt line, a pipe does not."""

    def reply_started(self) -> None:
        raise NotImplementedError

    def reply_piece(self, piece: str) -> None:
        raise NotImplementedError

    def reply_finished(self, note: str | None = None) -> None:
        raise NotImplementedError

    def show_timings(self, rows: list[tuple[str, str]]) -> None:
        table = Table(title="this turn", show_header=True, header_style="bold", box=None)
        table.add_column("stage")
        table.add_column("ms", justify="right")
        for stage, ms in rows:
            table.add_row(stage, ms)
        self.console.print(table)

    # input
    def start_input(
        self,
        loop: asyncio.AbstractEventLoop,
        on_line: LineHandler,
        on_ctrl_c: KeyHandler,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        """Read lines (``on_line``, None at the end) and Ctrl+C; ``busy()``: a reply is in
        progress (Ctrl+C then stops it rather than clearing the line)."""
        raise NotImplementedError

    def stop_input(self) -> None:
        """Stop reading; safe to call more than once."""


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class PlainUI(UI):
    """Piped use: read stdin line by line in a thread; stream the reply as plain text."""

    def __init__(self, console: Console | None = None, input_stream: Any = None):
        super().__init__(
            console or Console(file=private_stream(1), highlight=False, soft_wrap=True)
        )
        self._input = input_stream  # binary; stdin unless given
        self._started = False
        self._thread: threading.Thread | None = None
        self._open = False

    def typed(self, text: str) -> None:
        # Piped lines are not echoed by a terminal: stdout reads as the conversation.
        self.console.print(f"you: {text}", markup=False)

    def reply_started(self) -> None:
        self._started = False  # the name is printed with the first words, not before

    def reply_piece(self, piece: str) -> None:
        if not self._started:
            self._started = True
            self.console.print(f"{self.assistant_name}: ", end="", markup=False)
        self.console.print(piece, end="", markup=False)
        self.console.file.flush()

    def reply_finished(self, note: str | None = None) -> None:
        if not self._started and not note:
            return
        if not self._started:
            self.console.print(f"{self.assistant_name}:", end="", markup=False)
        self._started = False
        self.console.print(f" [{note}]" if note else "", markup=False)

    def start_input(
        self,
        loop: asyncio.AbstractEventLoop,
        on_line: LineHandler,
        on_ctrl_c: KeyHandler,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self._open = True

        def read() -> None:
            # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
            # reader makes the interpreter abort at exit.
            try:
                fd = (self._input or sys.stdin).fileno()
            except (AttributeError, OSError, ValueError):
                fd = -1
            pending = b""
            while self._open and fd >= 0:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                pending += data
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    loop.call_soon_threadsafe(on_line, line)
            if pending and self._open:
                loop.call_soon_threadsafe(on_line, pending)
            if self._open:
                loop.call_soon_threadsafe(on_line, None)

        # A daemon thread: a blocked read of stdin must not keep the process alive at exit.
        self._thread = threading.Thread(target=read, name="stdin", daemon=True)
        self._thread.start()

    def stop_input(self) -> None:
        self._open = False


class InteractiveUI(UI):
    """A terminal: prompt_toolkit owns the input line; output is printed above it."""

    def __init__(self) -> None:
        self._is_tty = sys.stdout.isatty()
        # The UI draws through its own duplicate of the terminal's descriptor (private_stream).
        self._terminal = private_stream(sys.stdout.fileno())
        self._context: contextvars.Context | None = None
        super().__init__(
            Console(
                file=_AbovePrompt(self),
                highlight=False,
                soft_wrap=True,
                force_terminal=self._is_tty or None,
            )
        )
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None
        self._partial = ""
        self._hearing = ""
        self._first_line = True

    def set_state(self, state: State) -> None:
        super().set_state(state)
        self._invalidate()

    def _invalidate(self) -> None:
        app = getattr(self._session, "app", None)
        if app is not None and app.is_running:
            app.invalidate()

    def _prompt(self) -> Any:
        from prompt_toolkit.formatted_text import FormattedText

        style = {
            State.LISTENING: "ansigreen",
            State.HEARING: "ansigreen bold",
            State.THINKING: "ansicyan",
            State.SPEAKING: "ansimagenta",
        }.get(self.state, "ansiyellow")
        return FormattedText([(style, f"[{self.state.value}] "), ("bold", "you> ")])

    def _toolbar(self) -> Any:
        from prompt_toolkit.formatted_text import FormattedText

        if self._partial:
            # One line only: a toolbar that wraps leaves stale lines behind when it shrinks.
            room = max(10, self.console.width - len(self.assistant_name) - 4)
            tail = self._partial.replace("\n", " ")[-room:]
            return FormattedText([("", f" {self.assistant_name}: {tail}")])
        if self._hearing:
            room = max(10, self.console.width - 12)
            return FormattedText([("ansigreen", f" you (so far): {self._hearing[-room:]}")])
        return FormattedText([("", " /help for commands · Ctrl+C stops a reply · Ctrl+D quits")])

    def hearing(self, text: str) -> None:
        self._hearing = text
        self._invalidate()

    def reply_started(self) -> None:
        self._partial = ""
        self._first_line = True

    def _print_reply_line(self, text: str) -> None:
        prefix = (
            f"[bold magenta]{self.assistant_name}:[/bold magenta] " if self._first_line else "  "
        )
        self._first_line = False
        self.console.print(prefix + _escape(text))

    def reply_piece(self, piece: str) -> None:
        # Only whole lines are printed above the prompt; the unfinished line is shown in the
        # toolbar, so streaming never breaks the line the user is typing.
        self._partial += piece
        if "\n" in self._partial:
            done, _, self._partial = self._partial.rpartition("\n")
            for line in done.split("\n"):
                self._print_reply_line(line)
        self._invalidate()

    def reply_finished(self, note: str | None = None) -> None:
        text = self._partial.strip() + (f" [{note}]" if note else "")
        self._partial = ""
        if text or self._first_line:
            self._print_reply_line(text)
        self._invalidate()

    def start_input(
        self,
        loop: asyncio.AbstractEventLoop,
        on_line: LineHandler,
        on_ctrl_c: KeyHandler,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.application import create_app_session
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.output import create_output

        output = create_output(stdout=self._terminal)
        keys = KeyBindings()

        @keys.add("c-c")
        def _(event: Any) -> None:
            # Ctrl+C with text typed clears the line, as in a shell; otherwise it is the loop's:
            # stop the reply in progress, or quit when pressed twice. The typed text survives.
            buffer = event.app.current_buffer
            if buffer.text and not busy():
                buffer.reset()
            else:
                on_ctrl_c()

        self._session = PromptSession(
            bottom_toolbar=self._toolbar, refresh_interval=0.2, output=output, key_bindings=keys
        )

        async def read() -> None:
            with create_app_session(output=output):
                # The printing side runs in this context, where the prompt's application is known.
                self._context = contextvars.copy_context()
                while True:
                    try:
                        line = await self._session.prompt_async(self._prompt)
                    except KeyboardInterrupt:
                        on_ctrl_c()
                        continue
                    except EOFError:
                        on_line(None)
                        return
                    on_line(line)

        self._task = loop.create_task(read(), name="keyboard")

    def write_above_prompt(self, text: str) -> None:
        """Print ``text`` above the prompt (erasing and redrawing it), or plainly when it is gone."""

        def write() -> None:
            # The terminal may be in raw mode while the prompt is up: a bare line feed would not
            # return the cursor to the first column.
            self._terminal.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))
            self._terminal.flush()

        app = getattr(self._session, "app", None)
        if self._context is not None and app is not None and app.is_running:
            from prompt_toolkit.application import run_in_terminal

            self._context.run(run_in_terminal, write, in_executor=False)
        else:
            write()

    def stop_input(self) -> None:
        if self._task is not None and not self._task.done():
            app = getattr(self._session, "app", None)
            if app is not None and app.is_running:
                app.exit(exception=EOFError())
            self._task.cancel()


class _AbovePrompt(io.TextIOBase):
    """A text stream for Rich that hands each flushed piece to the prompt, to print above it."""

    def __init__(self, ui: InteractiveUI):
        self._ui = ui
        self._pending: list[str] = []

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            text, self._pending = "".join(self._pending), []
            self._ui.write_above_prompt(text)

    def isatty(self) -> bool:
        return self._ui._is_tty

    def fileno(self) -> int:
        return self._ui._terminal.fileno()
