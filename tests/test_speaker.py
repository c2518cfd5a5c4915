"""The Speaker on a real voice (espeak-ng) and the real-time WAV sink: how far ahead it
synthesizes while a long reply plays."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import wave

import pytest

from perslm_voice.audio.wav_sink import WavSink
from perslm_voice.config import Config
from perslm_voice.realtime_loop.speaker import SYNTHESIS_AHEAD_S, Speaker, SpeechFailed
from perslm_voice.tts import create_tts

REPLY = (
    "The first sentence is said at once. The second one follows it right away. "
    "A third sentence keeps the voice going for a while. The fourth one is here too. "
    "Then comes a fifth sentence, a little longer than the others. And the sixth ends it all."
)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_synthesis_stays_a_few_seconds_ahead_of_the_voice(tmp_path, caplog):
    config = Config()
    config.tts.backend = "system"  # espeak-ng: a real voice that is quick to load
    config.tts.enable_cache = False
    out = tmp_path / "reply.wav"
    failures: list[SpeechFailed] = []

    async def speak() -> float:
        tts = create_tts(config.tts)
        player = WavSink(out, realtime=True)
        player.start()
        ready = asyncio.get_running_loop().run_in_executor(None, tts.load)
        speaker = Speaker(
            tts, ready, player, lambda e: isinstance(e, SpeechFailed) and failures.append(e)
        )
        await speaker.tts_ready
        marks = {"first_token": time.monotonic()}
        speaker.begin(1, config.tts.voice, marks)
        speaker.feed(REPLY)
        await speaker.finish()
        wall_s = time.monotonic() - marks["first_audio_played"]
        await asyncio.to_thread(speaker.player.close)
        return wall_s

    with caplog.at_level(logging.DEBUG, logger="perslm_voice.realtime_loop.speaker"):
        wall_s = asyncio.run(speak())
    assert not failures
    with wave.open(str(out)) as wav:
        audio_s = wav.getnframes() / wav.getframerate()
    starts_s = [
        int(ms) / 1000 for ms in re.findall(r"started (\d+) ms after the first token", caplog.text)
    ]
    assert len(starts_s) == 6, caplog.text
    assert audio_s > SYNTHESIS_AHEAD_S + 4
    # Not all at once (espeak-ng writes all six in a fraction of a second) ...
    assert starts_s[-1] >= audio_s - SYNTHESIS_AHEAD_S - 4.0, (starts_s, audio_s)
    # ... and never so late that the voice stops between sentences.
    assert wall_s <= audio_s + 1.0, (wall_s, audio_s)
