"""Speech-to-text on an OpenAI-compatible /audio/transcriptions endpoint (OpenAI, Groq, a local server)."""

from __future__ import annotations

import io
import os
import wave
from typing import Any

import numpy as np

from ..config import SpeechConfig
from ..errors import BackendUnavailable, ModelError
from ..events import SAMPLE_RATE_HZ, Transcript, TranscriptSegment
from .base import NO_AUDIO, NOT_SPEECH, STT, Verdict, judge, rejected
from .language import WHISPER_LANGUAGES
from .models import BUNDLED

DEFAULT_MODEL = "whisper-1"


def wav_bytes(audio_int16_16k: np.ndarray) -> bytes:
    """The utterance as a 16 kHz mono 16-bit WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes(np.asarray(audio_int16_16k, "<i2").tobytes())
    return buffer.getvalue()


def _words_within(words: list[dict[str, Any]], start_s: float, end_s: float) -> tuple:
    """The server's timed words (verbose_json ``words``) whose middle lies in one segment; the
    server gives no per-word probability."""
    return tuple(
        TranscriptSegment(str(w.get("word", "")), float(w["start"]), float(w["end"]))
        for w in words
        if "start" in w and "end" in w and start_s <= (w["start"] + w["end"]) / 2 <= end_s
    )


def _code(language: Any) -> str | None:
    """OpenAI names the language ("english"); Whisper's code ("en") is what the rest expects."""
    if not language:
        return None
    name = str(language).lower()
    for code, full in WHISPER_LANGUAGES.items():
        if full.lower() == name:
            return code
    return name


class OpenAISTT(STT):
    """The `openai` client against ``speech.base_url`` (OpenAI when null), key from ``speech.api_key_env``.

    ``speech.model_name`` names the server's model; the local names (tiny.en, base) mean whisper-1.
    When the server returns segments with Whisper's signals (verbose_json), they are judged like
    local results.
    """

    name = "openai"

    def __init__(self, config: SpeechConfig):
        super().__init__(config)
        self._client: Any = None

    @property
    def model(self) -> str:
        name = self.config.model_name
        return DEFAULT_MODEL if name in BUNDLED else name

    @property
    def description(self) -> str:
        where = self.config.base_url or "api.openai.com"
        return f"{self.model} at {where}"

    def load(self) -> None:
        if self._client is not None:
            return
        key = os.environ.get(self.config.api_key_env)
        if not key:
            raise BackendUnavailable(
                f"stt backend 'openai' needs an API key: export {self.config.api_key_env}=..."
            )
        import openai

        self._client = openai.OpenAI(api_key=key, base_url=self.config.base_url, max_retries=1)

    def transcribe(
        self,
        audio_int16_16k: np.ndarray,
        language: str | None = None,
        *,
        user_language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
    ) -> Transcript:
        self.load()
        language = language or self.config.language
        if len(audio_int16_16k) == 0:
            return Transcript("", language, rejected=NO_AUDIO, rejected_kind="no speech")
        options: dict[str, Any] = {}
        if language:
            options["language"] = language
        if prompt:
            options["prompt"] = prompt
        if words:
            options["timestamp_granularities"] = ["segment", "word"]
        import openai

        try:
            response = self._client.audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", wav_bytes(audio_int16_16k), "audio/wav"),
                response_format="verbose_json",
                **options,
            )
        except openai.AuthenticationError:
            raise BackendUnavailable(
                f"stt backend 'openai': the server refused the key in ${self.config.api_key_env}"
            ) from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"speech-to-text server unreachable ({exc})") from None
        except openai.APIError as exc:
            raise ModelError(f"speech-to-text server error: {exc}") from None
        data = response if isinstance(response, dict) else response.model_dump()
        text = str(data.get("text") or "").strip()
        spoken = [w for w in data.get("words") or [] if isinstance(w, dict)]
        segments = tuple(
            TranscriptSegment(
                text=str(s.get("text", "")).strip(),
                start_s=float(s.get("start", 0.0)),
                end_s=float(s.get("end", 0.0)),
                no_speech_prob=float(s.get("no_speech_prob", 0.0)),
                avg_logprob=float(s.get("avg_logprob", 0.0)),
                compression_ratio=float(s.get("compression_ratio", 0.0)),
                words=_words_within(spoken, float(s.get("start", 0.0)), float(s.get("end", 0.0))),
            )
            for s in data.get("segments") or []
        )
        if segments:
            verdict = judge(segments, self.config)
        else:
            verdict = None if text else Verdict("no speech", NOT_SPEECH)
        heard = Transcript(text, _code(data.get("language")) or language, segments)
        return rejected(heard, verdict)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
