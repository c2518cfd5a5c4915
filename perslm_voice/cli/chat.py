"""`perslm-voice [chat]`: the conversation loop."""

from __future__ import annotations

import sys

import click

from .. import logs
from ..echo import EchoRoomSpec
from ..llm.presets import apply_llm_flag
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
    "--device-index",
    default=None,
    metavar="N|NAME",
    help="The microphone: a device index or name from `perslm-voice devices`.",
)
@click.option("--output-device", default=None, metavar="NAME", help="The speakers, by name.")
@click.option(
    "--audio-input",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Play a recording into the session as the microphone; the session ends with it.",
)
@click.option(
    "--audio-input-speed",
    type=click.Choice(["realtime", "fast"]),
    default=None,
    help="Pace --audio-input in real time, or feed it as fast as it decodes.  [default: realtime]",
)
@click.option(
    "--audio-output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the assistant's voice to this WAV file instead of the speakers.",
)
@click.option(
    "--echo-room",
    default=None,
    metavar="DELAY_MS:GAIN[:NOISE_DB]",
    help="For testing, with --audio-input: mix the assistant's voice, as it plays, back into the "
    "recording with this delay and gain (and white noise at NOISE_DB dBFS), as speakers would.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE.wav",
    help="Record the conversation as it was heard: the microphone on the left, the assistant's "
    "voice on the right, interruptions where they happened.",
)
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
    device_index: str | None,
    output_device: str | None,
    audio_input: str | None,
    audio_input_speed: str | None,
    audio_output: str | None,
    echo_room: str | None,
    record: str | None,
    llm_choice: str | None,
    model: str | None,
) -> None:
    """Talk with the assistant: type (or speak) and it answers in text (and speech).

    Type /help in the session for its commands; /quit or Ctrl+D ends it.
    """
    # Log level first, so that a configuration error is explained at debug level too.
    logs.setup(log_level or "warning", log_file)
    if echo_room is not None:
        if audio_input is None:
            raise click.UsageError("--echo-room needs --audio-input (the room mixes into it)")
        EchoRoomSpec.parse(echo_room)  # a bad spec is a usage error before anything loads
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
            "audio.input_device": device_index,
            "audio.output_device": output_device,
            "audio.input_speed": audio_input_speed,
            **(apply_llm_flag(llm_choice) if llm_choice else {}),
        },
    )
    from ..ui.terminal import RealtimeLoop

    loop = RealtimeLoop(
        config=config,
        user_id=user,
        incognito=incognito,
        audio_input=audio_input,
        audio_output=audio_output,
        echo_room=echo_room,
        record=record,
    )
    sys.exit(loop.start())
