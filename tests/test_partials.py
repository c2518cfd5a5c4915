"""Partial transcripts while the user speaks (speech.partial_interval_s): the real listener, VAD and
faster-whisper on a spoken question fed at real time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soundfile

from perslm_voice.audio.endpointer import Endpointer
from perslm_voice.audio.resample import resample
from perslm_voice.audio.vad import create_vad
from perslm_voice.config import Config
from perslm_voice.events import FRAME_SAMPLES, AudioFrame, PartialTranscript, UserText
from perslm_voice.realtime_loop.listener import Listener
from perslm_voice.stt import create_stt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stt():
    model = create_stt(Config().speech)
    model.load()
    return model


@pytest.fixture(scope="module")
def question(tmp_path_factory, speak):
    wav = speak(
        "Could you tell me what the weather will be like in Paris tomorrow morning?",
        tmp_path_factory.mktemp("p") / "q.wav",
    )
    audio, rate = soundfile.read(wav, dtype="int16")
    pcm = resample(audio, rate, 16000).astype(np.int16)
    silence = np.zeros(16000, np.int16)
    return np.concatenate([silence[:4800], pcm, silence])


def hear(stt, pcm: np.ndarray, interval_s: float, strict: bool = False):
    """Feed ``pcm`` at real time to a listener; return its events and the listener."""
    config = Config()

    async def run():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        ready.set_result(None)
        events: list = []
        listener = Listener(
            Endpointer(create_vad(config.vad), config.speech.audio, config.vad),
            stt,
            ready,
            events.append,
            language=None,
            partial_interval_s=interval_s,
        )
        listener.set_strict(strict)
        task = asyncio.create_task(listener.run())
        start = loop.time()
        for i, offset in enumerate(range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
            t = start + (i + 1) * FRAME_SAMPLES / 16000
            await asyncio.sleep(max(0.0, t - loop.time()))
            listener.push(AudioFrame(pcm[offset : offset + FRAME_SAMPLES], t))
        listener.end()
        await task
        return events, listener

    return asyncio.run(run())


def test_partials_come_while_the_user_speaks_and_before_the_transcript(stt, question):
    events, listener = hear(stt, question, 0.4)
    final = next(e for e in events if isinstance(e, UserText))
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    assert listener.partials_made >= 1 and listener.partial_busy_s > 0
    assert partials  # how many depends on the machine's speed: one at a time, never queued
    assert events.index(partials[0]) < events.index(final)
    # the words so far: the first partial is the start of what was finally heard
    first_word = partials[0].text.split()[0].strip(",.?").lower()
    assert first_word in final.text.lower()
    assert "paris" in final.text.lower()


def test_no_partials_when_off_or_while_the_assistant_speaks(stt, question):
    _, off = hear(stt, question, 0.0)
    assert off.partials_made == 0
    _, strict = hear(stt, question, 0.4, strict=True)  # its echo is the barge-in check's
    assert strict.partials_made == 0
