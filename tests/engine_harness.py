"""A fast harness for the session engine: scripted stages behind the real abstract classes, a real
store and a real (WAV, real-time) audio output; push inputs in, read the events out.

The stages are fakes that implement the real interfaces (pipecat's ``run_test``, simonw/llm's
``MockModel``): `ScriptedLLM` answers with the replies it was given; `CodedSTT` reads a "word
code" from the sound (each utterance is a steady level, ``code * 100``); `LevelVAD` calls any
frame above a level speech; `ToneTTS` says each word as 60 ms of a tone. The session, its
listener, endpointer, barge-in judge, echo guard, drafts, history and store are the real ones.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perslm_voice.audio.vad import VAD
from perslm_voice.audio.wav_sink import WavSink
from perslm_voice.config import Config, LLMConfig, SpeechConfig, TTSConfig, VoiceSettings
from perslm_voice.echo.played import _Reference
from perslm_voice.events import (
    FRAME_SAMPLES,
    SAMPLE_RATE_HZ,
    AudioChunk,
    AudioFrame,
    AudioPlayed,
    AudioSilenced,
    ReplyAudio,
    Transcript,
)
from perslm_voice.llm.base import LLM, Message
from perslm_voice.realtime_loop import Models, Session
from perslm_voice.stt.base import STT
from perslm_voice.tts.base import TTS

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
WORD_S = 0.06  # ToneTTS: each word lasts this long


class ScriptedLLM(LLM):
    """Answers each prompt with the next scripted reply (pieces, or an exception to raise)."""

    name = "scripted"

    def __init__(
        self,
        *replies: list[str] | BaseException,
        piece_delay_s: float = 0.0,
        load_failures: list[BaseException] | None = None,
    ):
        super().__init__(LLMConfig())
        self.load_failures = list(load_failures or [])  # raised by the next loads, in turn
        self.replies: deque[list[str] | BaseException] = deque(replies)
        self.piece_delay_s = piece_delay_s
        self.prompts: list[list[Message]] = []
        self.prefills: list[list[Message]] = []

    @property
    def description(self) -> str:
        return "scripted"

    def enqueue(self, *replies: list[str] | BaseException) -> None:
        self.replies.extend(replies)

    def load(self) -> None:
        if self.load_failures:
            raise self.load_failures.pop(0)

    def prefill(self, messages: list[Message]) -> None:
        self.prefills.append(messages)

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        self.prompts.append(messages)
        reply = self.replies.popleft() if self.replies else ["Yes."]
        if isinstance(reply, BaseException):
            raise reply
        for piece in reply:
            if cancel.is_set():
                return
            if self.piece_delay_s:
                time.sleep(self.piece_delay_s)
            yield piece


class CodedSTT(STT):
    """Hears the words coded in a steady level: ``words[round(level / 100)]``."""

    def __init__(self, words: dict[int, str], fail: BaseException | None = None):
        super().__init__(SpeechConfig())
        self.words = words
        self.fail = fail
        self.heard: list[str] = []

    @property
    def description(self) -> str:
        return "coded"

    def transcribe(
        self, audio_int16_16k: np.ndarray, language: str | None = None, **options: Any
    ) -> Transcript:
        if self.fail is not None:
            raise self.fail
        loud = np.abs(audio_int16_16k[np.abs(audio_int16_16k) > 50].astype(np.float64))
        code = round(float(np.median(loud)) / 100) if len(loud) else 0
        text = self.words.get(code, "")
        self.heard.append(text)
        return Transcript(text, language="en", rejected=None if text else "no speech")


class LevelVAD(VAD):
    """Speech is any frame louder than a level."""

    def speech_probability(self, frame_int16: np.ndarray) -> float:
        return 1.0 if float(np.abs(frame_int16.astype(np.float64)).mean()) > 50 else 0.0


class ToneTTS(TTS):
    """Each word as 60 ms of a 440 Hz tone, one chunk per sentence."""

    name = "tone"

    def __init__(self) -> None:
        super().__init__(TTSConfig())

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        n = round(len(text.split()) * WORD_S * SAMPLE_RATE_HZ)
        t = np.arange(n) / SAMPLE_RATE_HZ
        yield AudioChunk(
            (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), SAMPLE_RATE_HZ, text
        )


def harness_config() -> Config:
    config = Config()
    # The harness's "speech" is a steady level (a word code), not sound: WebRTC's canceller (its
    # high-pass filter) would take it out. The echo room here tests the echo check.
    config.audio.echo_cancellation = "none"
    config.speech.audio.silence_duration = 0.3
    config.speech.audio.min_speech_duration = 0.1
    config.speech.audio.pre_roll = 0.1
    config.vad.speaking_min_speech_duration = 0.15
    return config


class Harness:
    """A running session with scripted stages; ``events`` holds everything it emitted."""

    def __init__(
        self,
        tmp_path: Path,
        llm: LLM | None = None,
        words: dict[int, str] | None = None,
        *,
        config: Config | None = None,
        stt_fail: BaseException | None = None,
        tts: TTS | None = None,
        echo_gain: float = 0.0,
    ):
        self.tmp_path = tmp_path
        self.config = config or harness_config()
        self.llm = llm or ScriptedLLM()
        self.stt = CodedSTT(words or {}, stt_fail)
        self.tts = tts or ToneTTS()
        self.echo_gain = echo_gain
        self.events: list[Any] = []
        self.session: Session | None = None
        self._task: asyncio.Task[int] | None = None
        self._played = _Reference()  # what the output played: the harness's echo room
        self.player = WavSink(tmp_path / "voice.wav", realtime=True)

    async def __aenter__(self) -> Harness:
        loop = asyncio.get_running_loop()

        def ready() -> asyncio.Future[None]:
            future: asyncio.Future[None] = loop.create_future()
            future.set_result(None)
            return future

        llm_ready = ready()
        if isinstance(self.llm, ScriptedLLM) and self.llm.load_failures:
            llm_ready = loop.run_in_executor(None, self.llm.load)
            await asyncio.gather(llm_ready, return_exceptions=True)
        models = Models(
            llm=self.llm,
            llm_ready=llm_ready,
            stt=self.stt,
            stt_ready=ready(),
            tts=self.tts,
            tts_ready=ready(),
            new_vad=LevelVAD,
        )
        self.player.start()
        session = Session(self.config, "harness", models=models, hearing=True, player=self.player)
        self.session = session
        session.subscribe(self.events.append)
        session.subscribe(self._follow_output, AudioPlayed, AudioSilenced)
        await session.open()
        self._task = asyncio.create_task(session.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None and self._task is not None
        self.session.stop()
        await asyncio.wait_for(self._task, 5)
        await asyncio.to_thread(self.player.close)

    def _follow_output(self, event: Any) -> None:
        if isinstance(event, AudioPlayed):
            self._played.played(event.chunk, event.t_start)
        else:
            self._played.silenced(event.t)

    # inputs

    async def frames(self, level: int, seconds: float) -> None:
        """Push ``seconds`` of audio at a steady ``level`` (0: silence), in real time; what the
        output plays comes back into it at ``echo_gain``, 100 ms late."""
        assert self.session is not None
        for _ in range(max(1, round(seconds / FRAME_S))):
            await asyncio.sleep(FRAME_S)
            t = time.monotonic()
            samples = np.full(FRAME_SAMPLES, level, np.float32)
            if self.echo_gain:
                echo = self._played.render(t - 0.1 - FRAME_S, FRAME_SAMPLES)
                samples += self.echo_gain * echo.astype(np.float32)
            frame = np.clip(samples, -32768, 32767).astype(np.int16)
            self.session.push_audio(AudioFrame(frame, t))

    async def say(self, code: int, seconds: float = 0.3, then_silence_s: float = 0.5) -> None:
        """The user says the words of ``code``, then is quiet long enough to end the turn."""
        await self.frames(code * 100, seconds)
        await self.frames(0, then_silence_s)

    def type(self, text: str, live: bool = True) -> None:
        assert self.session is not None
        self.session.type_line(text, live=live)

    async def until(self, kind: type, count: int = 1, timeout_s: float = 5.0) -> list[Any]:
        """Wait until ``count`` events of ``kind`` have been emitted; return them all."""
        deadline = time.monotonic() + timeout_s
        while len(self.of(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {count} x {kind.__name__} in {timeout_s} s: {self.said()}"
                )
            await asyncio.sleep(0.01)
        return self.of(kind)

    async def until_state(self, state: Any, timeout_s: float = 5.0) -> None:
        """Wait until the session is in ``state``."""
        deadline = time.monotonic() + timeout_s
        assert self.session is not None
        while self.session.state is not state:
            if time.monotonic() > deadline:
                raise AssertionError(f"not {state} in {timeout_s} s: {self.said()}")
            await asyncio.sleep(0.01)

    def said(self) -> list[Any]:
        """The events but the audio (for a failure's message)."""
        return [e for e in self.events if not isinstance(e, AudioFrame | AudioPlayed | ReplyAudio)]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
