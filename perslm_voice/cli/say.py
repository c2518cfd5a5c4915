"""`perslm-voice say TEXT`: speak a text with the configured voice, or write it to a WAV file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import logs
from ..errors import AudioError, UsageError
from .common import config_option, console, err_console, load

if TYPE_CHECKING:
    from ..config import Config
    from ..tts import TTS


@click.command()
@click.argument("text", required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the speech to this WAV file instead of playing it.",
)
@click.option("--backend", default=None, help="TTS backend: auto, piper, pyttsx3, system, ...")
@click.option("--voice", "voice_id", default=None, help="Voice id (see --list-voices).")
@click.option("--rate", type=float, default=None, help="Speaking rate; 1.0 is normal speed.")
@click.option("--output-device", default=None, help="Audio output device name.")
@click.option("--list-voices", is_flag=True, help="List the backend's voices and exit.")
@config_option
@click.option(
    "--log-level",
    type=click.Choice(sorted(logs.LEVELS)),
    default=None,
    help="Logging detail (debug shows timings and tracebacks).",
)
def say(
    text: str | None,
    out: str | None,
    backend: str | None,
    voice_id: str | None,
    rate: float | None,
    output_device: str | None,
    list_voices: bool,
    config_file: str | None,
    log_level: str | None,
) -> None:
    """Speak TEXT (markdown is read sensibly) with the configured voice.

    TEXT "-" reads standard input. With --out FILE.wav the audio is written instead of played.
    """
    config = load(
        config_file,
        {
            "tts.backend": backend,
            "tts.voice.voice_id": voice_id,
            "tts.voice.rate": rate,
            "audio.output_device": output_device,
            "logging.level": log_level,
        },
    )
    logs.setup(config.logging.level, config.logging.file)

    from ..tts import create_tts, to_speech, with_cache

    if list_voices:
        tts = create_tts(config.tts)
        tts.load()
        chosen = tts.resolve_voice(config.tts.voice)
        for voice in tts.list_voices():
            console.print(f"{voice}{'  (selected)' if voice == chosen else ''}", markup=False)
        return
    if text == "-":
        text = sys.stdin.read()
    if not text or not text.strip():
        raise UsageError("give the TEXT to say (or '-' to read it from standard input)")
    speech = to_speech(text)
    if not speech:
        raise UsageError("nothing to say: the text has no words to speak")
    tts = create_tts(config.tts)
    tts.load()
    speak(with_cache(tts, config.tts), speech, config, out)


def speak(tts: TTS, speech: str, config: Config, out: str | None) -> None:
    """Synthesize ``speech`` into a player: the speakers, or a WAV file when ``out`` is given."""
    from ..audio.playback import Player, open_player
    from ..audio.wav_sink import WavSink

    player: Player
    if out:
        sink = player = WavSink(out)
        player.start()
    else:
        try:
            player = open_player(config.audio)
        except AudioError as exc:
            reason = str(exc)
            raise AudioError(f"{reason}; write the speech to a file with --out FILE.wav") from None
    done = False
    try:
        for chunk in tts.synthesize(speech, config.tts.voice):
            player.enqueue(chunk)
        player.wait_idle()
        done = True
    except KeyboardInterrupt:
        player.stop()
        raise
    finally:
        player.close()
        if out and not done:
            Path(out).unlink(missing_ok=True)  # no half-written file behind a failure
    if out:
        seconds = sink.frames_written / (sink.sample_rate_hz or 1)
        console.print(f"Wrote {out}: {seconds:.1f} s of speech ({tts.description})", markup=False)
    else:
        err_console.print(f"Said with {tts.description}", markup=False)
