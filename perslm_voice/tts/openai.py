"""OpenAI text-to-speech, or any server with an OpenAI-compatible ``/audio/speech`` endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..config import TTSConfig, VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from . import _http
from .base import DEFAULT_VOICE, TTS, chunk_from_wav, split_sentences

OFFICIAL_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "tts-1"  # the fastest of OpenAI's speech models
PCM_SAMPLE_RATE_HZ = 24000  # what OpenAI's response_format "pcm" is: 24 kHz s16le mono
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip


class OpenAITTS(TTS):
    """POST {base_url}/audio/speech, one request per sentence so the first one plays early."""

    name = "openai"

    def __init__(self, config: TTSConfig):
        super().__init__(config)
        self.base_url = (config.base_url or OFFICIAL_URL).rstrip("/")
        self.key_env = config.api_key_env or DEFAULT_KEY_ENV
        self.model = config.model or DEFAULT_MODEL
        self.official = self.base_url == OFFICIAL_URL

    def _api_key(self) -> str | None:
        key = os.environ.get(self.key_env, "").strip()
        if not key and self.official:
            raise BackendUnavailable(
                f"tts backend 'openai' needs an API key: export {self.key_env}=... "
                "(or set tts.api_key_env to the variable that holds it)"
            )
        return key or None  # a local compatible server may need none

    def load(self) -> None:
        self._api_key()

    def list_voices(self) -> list[str]:
        return list(OPENAI_VOICES)

    def resolve_voice(self, voice: VoiceSettings) -> str:
        if voice.voice_id == DEFAULT_VOICE:
            return OPENAI_VOICES[0]
        # Compatible servers have voices of their own; only OpenAI's list is known here.
        if self.official and voice.voice_id not in OPENAI_VOICES:
            raise self.unknown_voice(voice.voice_id, self.list_voices())
        return voice.voice_id

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        key = self._api_key()
        voice_name = self.resolve_voice(voice)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # OpenAI's "pcm" is the cheapest to decode; other servers get "wav", which names its rate.
        response_format = "pcm" if self.official else "wav"
        for sentence in split_sentences(text):
            body = {
                "model": self.model,
                "input": sentence,
                "voice": voice_name,
                "response_format": response_format,
                "speed": voice.rate,
            }
            response = _http.request(
                self.name, "POST", f"{self.base_url}/audio/speech", headers=headers, body=body
            )
            yield self._chunk(response, sentence)

    def _chunk(self, response: _http.Response, sentence: str) -> AudioChunk:
        if response.status in (401, 403):
            raise BackendUnavailable(
                f"the speech server refused the API key in ${self.key_env}"
                f" (HTTP {response.status}: {response.message()})"
            )
        if response.status != 200:
            raise ModelError(f"TTS request failed: HTTP {response.status}: {response.message()}")
        if response.body[:4] == b"RIFF" or "wav" in response.content_type:
            return chunk_from_wav(response.body, sentence)
        if "json" in response.content_type or "text" in response.content_type:
            raise ModelError(f"the speech server sent no audio: {response.message()}")
        body = response.body[: len(response.body) - len(response.body) % 2]
        if not body:
            raise ModelError(f"the speech server sent no audio for {sentence[:40]!r}")
        samples = np.frombuffer(body, dtype="<i2").astype(np.int16)
        return AudioChunk(samples=samples, sample_rate_hz=PCM_SAMPLE_RATE_HZ, text=sentence)

    @property
    def description(self) -> str:
        where = "OpenAI" if self.official else self.base_url
        return f"openai ({self.model}, {where})"

    @property
    def model_id(self) -> str:
        return f"{self.model}@{self.base_url}"
