"""The command line: a click group whose bare form runs the conversation loop."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from typing import Any

import click

from .. import __version__
from ..errors import ConfigError, PerslmVoiceError, UsageError
from ..logs import debug_enabled

# name -> "module:attribute"; a command's module is imported only when it runs.
COMMANDS = {
    "chat": ("perslm_voice.cli.chat:chat", "Talk with the assistant (the default command)."),
    "devices": ("perslm_voice.cli.devices:devices", "List audio devices and the defaults."),
    "transcribe": ("perslm_voice.cli.transcribe:transcribe", "Speech-to-text of an audio file."),
    "say": ("perslm_voice.cli.say:say", "Speak a text with the configured voice."),
    "profile": ("perslm_voice.cli.profile:profile", "Show and change user profiles."),
    "memory": ("perslm_voice.cli.memory:memory", "What is remembered, per user."),
    "stats": ("perslm_voice.cli.stats:stats", "Per-turn latency by stage."),
    "doctor": ("perslm_voice.cli.doctor:doctor", "Check audio, models, backends and the store."),
    "tools": ("perslm_voice.cli.tools:tools", "List the tools and run one by hand."),
    "config": ("perslm_voice.cli.config_cmd:config_group", "Show the effective configuration."),
    "serve": ("perslm_voice.cli.serve:serve", "Serve the assistant over WebSocket and a web page."),
}
DEFAULT_COMMAND = "chat"


class MainGroup(click.Group):
    """Loads commands lazily, runs `chat` when no command is named, maps errors to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._spec_exists(name)]

    @staticmethod
    def _spec_exists(name: str) -> bool:
        module = COMMANDS[name][0].partition(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not self._spec_exists(cmd_name):
            return None
        module_name, _, attr = COMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if not rows:
            return
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        chat = self.get_command(ctx, DEFAULT_COMMAND)
        if chat is not None:
            rows = [r for p in chat.get_params(ctx) if (r := p.get_help_record(ctx))]
            if rows:
                with formatter.section("Conversation options (perslm-voice [chat] ...)"):
                    formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version")):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", True)
        return run_guarded(lambda: super(MainGroup, self).main(*args, **kwargs))


def run_guarded(fn: Any) -> Any:
    """Run a click entry point, turning our errors into one `Error:` line and an exit code."""
    from ..redact import redact
    from ..safetext import visible
    from .common import err_console

    try:
        return fn()
    except (ConfigError, UsageError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        if debug_enabled():
            traceback.print_exc()
        err_console.print(f"Error: {visible(redact(problems[0]))}", markup=False)
        for problem in problems[1:]:
            err_console.print(f"       {visible(redact(problem))}", markup=False)
        sys.exit(2)
    except PerslmVoiceError as exc:
        if debug_enabled():
            traceback.print_exc()
        err_console.print(f"Error: {visible(redact(str(exc)))}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, the traceback at debug level
        if debug_enabled():
            traceback.print_exc()
        err_console.print(
            visible(
                redact(
                    f"Error: unexpected {type(exc).__name__}: {exc}"
                    " (run with --log-level debug for details)"
                )
            ),
            markup=False,
        )
        sys.exit(1)


@click.group(
    cls=MainGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="perslm-voice")
def main() -> None:
    """perslm-voice: a private voice assistant for your terminal.

    Without a command it starts a conversation: speak or type, and it answers in text and speech,
    remembering each user across sessions. Everything runs on this computer unless you point it at
    a server.
    """
