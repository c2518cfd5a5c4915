"""`perslm-voice transcribe FILE`: speech-to-text of a recording, through the live loop's pieces."""

from __future__ import annotations

import click

from .. import logs
from ..safetext import visible
from ..transcription import transcribe_file
from .common import config_option, console, err_console, json_option, load, print_json

# A transcript reads better in sentence-sized segments than in the loop's quick turns: a pause of a
# second separates two segments (the live loop answers after speech.audio.silence_duration, 0.5 s).
TRANSCRIPT_SILENCE_S = 1.0


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@json_option
@config_option
@click.option("--model", "model_name", default=None, help="tiny.en, base, or a model folder.")
@click.option("--backend", default=None, help="Speech-to-text backend (speech.backend).")
@click.option("--language", default=None, help="Language code; default: auto-detect (or en).")
@click.option(
    "--silence",
    "silence_s",
    type=click.FloatRange(0.1, 5.0),
    default=TRANSCRIPT_SILENCE_S,
    show_default=True,
    help="Seconds of pause that end a segment.",
)
@click.option(
    "--window",
    "window_s",
    type=click.FloatRange(1.0, 30.0),
    default=10.0,
    show_default=True,
    help="Seconds of audio Whisper reads for an utterance read alone (speech.context_s), as the"
    " live loop does; utterances read together always get Whisper's full 30 s window.",
)
@click.option(
    "--context/--no-context",
    default=True,
    show_default=True,
    help="Read nearby utterances together (Whisper hears each word in its sentence); "
    "--no-context reads each utterance alone, as the live loop reads a turn.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Log verbosity (stderr).",
)
def transcribe(
    file: str,
    as_json: bool,
    config_file: str | None,
    model_name: str | None,
    backend: str | None,
    language: str | None,
    silence_s: float,
    window_s: float,
    context: bool,
    log_level: str | None,
) -> None:
    """Speech-to-text of an audio FILE (WAV, FLAC, AIFF, MP3, ...), segmented by the VAD.

    Prints one line per utterance, and on stderr what it set aside (noise, another language, too
    unclear) with the reason; --json gives the segments with start and end seconds.
    """
    config = load(
        config_file,
        {
            "speech.model_name": model_name,
            "speech.backend": backend,
            "speech.language": language,
            "speech.audio.silence_duration": silence_s,
            "speech.context_s": window_s,
            "logging.level": log_level,
        },
    )
    logs.setup(config.logging.level, config.logging.file)
    result = transcribe_file(file, config, context=context)
    if as_json:
        print_json(result.to_dict())
        return
    for utterance in result.utterances:
        console.print(visible(utterance.text), markup=False)
    for rejection in result.rejected:
        err_console.print(
            f"not transcribed {rejection.start_s:.1f}-{rejection.end_s:.1f} s:"
            f" {rejection.notice.strip('()')} ({visible(rejection.reason)})",
            style="dim",
            markup=False,
        )
