"""edge-tts (LGPL, an optional extra): Microsoft Edge's online neural voices. Needs the internet."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np

from ..config import VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from .base import DEFAULT_VOICE, TTS, split_sentences

T = TypeVar("T")

# The default voice per language; any other edge-tts voice is chosen by its full name.
DEFAULT_VOICES = {
    "en-us": "en-US-AriaNeural",
    "en-gb": "en-GB-SoniaNeural",
    "fr-fr": "fr-FR-DeniseNeural",
    "de-de": "de-DE-KatjaNeural",
    "es-es": "es-ES-ElviraNeural",
    "it-it": "it-IT-ElsaNeural",
}
VOICE_NAME = re.compile(r"^[a-z]{2,3}-[A-Za-z]{2,4}(-[A-Za-z]+)?-[A-Za-z]+Neural$")
OFFLINE_FIX = "check the network, or set tts.backend: piper for offline speech"


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from blocking code, even inside a thread with a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            result.append(exc)

    thread = threading.Thread(target=target, name="edge-tts", daemon=True)
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]  # type: ignore[no-any-return]


def _unreachable(exc: BaseException) -> BackendUnavailable:
    host, os_error = getattr(exc, "host", None), getattr(exc, "os_error", None)
    if host and os_error is not None:  # aiohttp's connector errors: without the SSL context repr
        reason = f"cannot connect to {host}: {os_error.strerror or os_error}"
    else:
        reason = str(exc) or type(exc).__name__
    return BackendUnavailable(
        f"tts backend 'edge_tts' cannot reach Microsoft's speech service ({reason}); {OFFLINE_FIX}"
    )


def decode_mp3(data: bytes, text: str) -> AudioChunk:
    """Decode edge-tts's MP3 to int16 mono (libsndfile >= 1.1 reads MP3)."""
    import soundfile

    try:
        samples, rate_hz = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ModelError(f"edge-tts sent audio that cannot be decoded: {exc}") from None
    return AudioChunk(
        samples=np.ascontiguousarray(samples[:, 0]), sample_rate_hz=int(rate_hz), text=text
    )


class EdgeTTS(TTS):
    """Online neural voices through the edge-tts package; one request per sentence."""

    name = "edge_tts"

    def list_voices(self) -> list[str]:
        import aiohttp
        import edge_tts

        try:
            voices = _run(edge_tts.list_voices())
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _unreachable(exc) from None
        return sorted(str(v["ShortName"]) for v in voices)

    def resolve_voice(self, voice: VoiceSettings) -> str:
        if voice.voice_id == DEFAULT_VOICE:
            language = voice.language.lower().replace("_", "-")
            if language in DEFAULT_VOICES:
                return DEFAULT_VOICES[language]
            matches = [v for k, v in DEFAULT_VOICES.items() if k.split("-")[0] == language[:2]]
            if matches:
                return matches[0]
            raise self.unknown_voice(
                f"default for {voice.language}", sorted(DEFAULT_VOICES.values())
            )
        if not VOICE_NAME.match(voice.voice_id):
            # The full list needs the network; offline, name the shape and a few examples.
            raise self.unknown_voice(voice.voice_id, sorted(DEFAULT_VOICES.values()))
        return voice.voice_id

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        voice_name = self.resolve_voice(voice)
        rate = f"{round((voice.rate - 1.0) * 100):+d}%"
        for sentence in split_sentences(text):
            yield decode_mp3(_run(self._fetch(sentence, voice_name, rate)), sentence)

    async def _fetch(self, sentence: str, voice_name: str, rate: str) -> bytes:
        import aiohttp
        import edge_tts

        audio = bytearray()
        try:
            communicate = edge_tts.Communicate(sentence, voice_name, rate=rate)
            async for message in communicate.stream():
                if message["type"] == "audio":
                    audio.extend(message["data"])
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _unreachable(exc) from None
        except edge_tts.exceptions.EdgeTTSException as exc:
            raise ModelError(f"edge-tts failed: {exc}") from None
        if not audio:
            raise ModelError(f"edge-tts returned no audio for {sentence[:40]!r}")
        return bytes(audio)

    @property
    def description(self) -> str:
        return f"edge_tts ({self.config.voice.voice_id}, online)"

    @property
    def model_id(self) -> str:
        return "edge"
