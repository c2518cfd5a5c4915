"""ElevenLabs text-to-speech over its REST API (``POST /v1/text-to-speech/{voice_id}``).

Plain HTTP rather than the ``elevenlabs`` SDK: one endpoint does not justify its dependencies,
and a fake server on loopback can stand in for the real one in tests.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator

import numpy as np

from ..config import TTSConfig, VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from . import _http
from .base import DEFAULT_VOICE, TTS, split_sentences

OFFICIAL_URL = "https://api.elevenlabs.io"
DEFAULT_KEY_ENV = "ELEVENLABS_API_KEY"
DEFAULT_MODEL = "eleven_flash_v2_5"  # their lowest-latency model
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", one of the premade voices
OUTPUT_FORMAT = "pcm_16000"
SAMPLE_RATE_HZ = 16000
VOICE_ID = re.compile(r"^[A-Za-z0-9]{20}$")
MIN_SPEED, MAX_SPEED = 0.7, 1.2  # the range ElevenLabs accepts for voice_settings.speed


class ElevenLabsTTS(TTS):
    """ElevenLabs voices by id or by name (names are looked up with ``GET /v1/voices``)."""

    name = "elevenlabs"

    def __init__(self, config: TTSConfig):
        super().__init__(config)
        self.base_url = (config.base_url or OFFICIAL_URL).rstrip("/")
        self.key_env = config.api_key_env or DEFAULT_KEY_ENV
        self.model = config.model or DEFAULT_MODEL
        self._voices: dict[str, str] | None = None  # name -> voice id

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.key_env, "").strip()
        if not key:
            raise BackendUnavailable(
                f"tts backend 'elevenlabs' needs an API key: export {self.key_env}=... "
                "(or set tts.api_key_env to the variable that holds it)"
            )
        return {"xi-api-key": key}

    def _check(self, response: _http.Response) -> None:
        if response.status in (401, 403):
            raise BackendUnavailable(
                f"ElevenLabs refused the API key in ${self.key_env}"
                f" (HTTP {response.status}: {response.message()})"
            )
        if response.status != 200:
            raise ModelError(f"TTS request failed: HTTP {response.status}: {response.message()}")

    def load(self) -> None:
        self._headers()

    def _voice_table(self) -> dict[str, str]:
        if self._voices is None:
            response = _http.request(
                self.name, "GET", f"{self.base_url}/v1/voices", headers=self._headers()
            )
            self._check(response)
            try:
                voices = json.loads(response.body)["voices"]
                self._voices = {str(v["name"]): str(v["voice_id"]) for v in voices}
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelError(f"ElevenLabs sent an unreadable voice list: {exc}") from None
        return self._voices

    def list_voices(self) -> list[str]:
        return sorted(self._voice_table())

    def resolve_voice(self, voice: VoiceSettings) -> str:
        if voice.voice_id == DEFAULT_VOICE:
            return DEFAULT_VOICE_ID
        if VOICE_ID.match(voice.voice_id):
            return voice.voice_id
        table = self._voice_table()
        by_name = {name.lower(): vid for name, vid in table.items()}
        if voice.voice_id.lower() in by_name:
            return by_name[voice.voice_id.lower()]
        raise self.unknown_voice(voice.voice_id, sorted(table))

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        headers = self._headers()
        voice_id = self.resolve_voice(voice)
        query = urllib.parse.urlencode({"output_format": OUTPUT_FORMAT})
        url = f"{self.base_url}/v1/text-to-speech/{urllib.parse.quote(voice_id)}?{query}"
        speed = min(MAX_SPEED, max(MIN_SPEED, voice.rate))
        for sentence in split_sentences(text):
            body = {"text": sentence, "model_id": self.model, "voice_settings": {"speed": speed}}
            response = _http.request(self.name, "POST", url, headers=headers, body=body)
            if response.status == 404 and VOICE_ID.match(voice.voice_id):  # no such voice id
                raise self.unknown_voice(voice.voice_id, self.list_voices())
            self._check(response)
            pcm = response.body[: len(response.body) - len(response.body) % 2]
            if not pcm:
                raise ModelError(f"ElevenLabs sent no audio for {sentence[:40]!r}")
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
            yield AudioChunk(samples=samples, sample_rate_hz=SAMPLE_RATE_HZ, text=sentence)

    @property
    def description(self) -> str:
        return f"elevenlabs ({self.model})"

    @property
    def model_id(self) -> str:
        return f"{self.model}@{self.base_url}"
