"""`perslm-voice [chat]`: the conversation loop."""

from __future__ import annotations

import sys

import click

from .. import logs
from ..llm.presets import apply_llm_flag
from ..realtime_loop import RealtimeLoop
from .common import config_option, load, user_option

MODES = click.Choice(["text", "voice", "hybrid"])


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@user_option
@config_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Show what happens inside (debug: every stage with timings).  [default: warning]",
)
@click.option(
    "--log-file", type=click.Path(dir_okay=False), default=None, help="Log here, not stderr."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="End the session after this many seconds without a turn.",
)
@click.option(
    "--input-mode", type=MODES, default=None, help="Type, speak, or both.  [default: hybrid]"
)
@click.option(
    "--output-mode", type=MODES, default=None, help="Read, listen, or both.  [default: hybrid]"
)
@click.option(
    "--show-timings", is_flag=True, default=None, help="Show each turn's latency by stage."
)
@click.option("--incognito", is_flag=True, help="Use the profile and memory but save nothing.")
@click.option(
    "--llm",
    "llm_choice",
    default=None,
    metavar="SERVER",
    help="Where answers come from: embedded, or a server: "
    "ollama, llamacpp, vllm, openai, groq, cerebras.  [default: embedded]",
)
@click.option("--model", default=None, help="The model name on that server.")
@click.version_option(None, "--version", package_name="perslm-voice", prog_name="perslm-voice")
def chat(
    user: str,
    config_file: str | None,
    log_level: str | None,
    log_file: str | None,
    timeout: float | None,
    input_mode: str | None,
    output_mode: str | None,
    show_timings: bool | None,
    incognito: bool,
    llm_choice: str | None,
    model: str | None,
) -> None:
    """Talk with the assistant: type (or speak) and it answers in text (and speech).

    Type /help in the session for its commands; /quit or Ctrl+D ends it.
    """
    # Log level first, so that a configuration error is explained at debug level too.
    logs.setup(log_level or "warning", log_file)
    config = load(
        config_file,
        {
            "logging.level": log_level,
            "logging.file": log_file,
            "interaction.timeout": timeout,
            "interaction.input_mode": input_mode,
            "interaction.output_mode": output_mode,
            "interaction.show_timings": show_timings,
            "llm.model": model,
            **(apply_llm_flag(llm_choice) if llm_choice else {}),
        },
    )
    loop = RealtimeLoop(config=config, user_id=user, incognito=incognito)
    sys.exit(loop.start())
