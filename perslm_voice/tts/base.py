"""The text-to-speech interface: load once, turn text into audio chunks as they are made."""

from __future__ import annotations

import io
import re
import wave
from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from ..config import TTSConfig, VoiceSettings
from ..errors import ConfigError, ModelError
from ..events import AudioChunk

DEFAULT_VOICE = "default"

# A sentence ends at . ! ? or … followed by space; abbreviations like "e.g. x" split too, which
# costs nothing but a slightly earlier chunk boundary.
SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"')\]]))\s+")


class TTS(ABC):
    """A loaded text-to-speech engine; one instance serves every reply of a session.

    ``synthesize`` is blocking (the loop runs it in a thread) and yields int16 mono chunks as soon
    as each is made, so playback can start before the whole reply is synthesized.
    """

    name: str = "tts"

    def __init__(self, config: TTSConfig):
        self.config = config

    def load(self) -> None:
        """Load the engine (blocking, idempotent). Backends that need no loading keep this."""

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        """Yield the speech for ``text`` in chunks, each carrying the text it says.

        Raises BackendUnavailable when the engine cannot be reached, ModelError when it fails, and
        ConfigError for a voice it does not have (the message lists the available ones).
        """

    def list_voices(self) -> list[str]:
        """The voice ids this backend accepts for ``tts.voice.voice_id`` ("default" always works)."""
        return []

    def resolve_voice(self, voice: VoiceSettings) -> str:
        """The concrete voice id that ``voice`` selects; part of the cache key."""
        return voice.voice_id

    @property
    def description(self) -> str:
        """What the user hears, for the banner: backend and voice."""
        return self.name

    @property
    def model_id(self) -> str:
        """What else besides the voice changes the sound (a model file, a server); for the cache."""
        return ""

    def close(self) -> None:
        """Release the engine."""

    def unknown_voice(self, voice_id: str, available: list[str]) -> ConfigError:
        """The error for a voice this backend does not have, listing the ones it has."""
        shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
        return ConfigError(
            f"tts.voice.voice_id: unknown {self.name} voice {voice_id!r}; available: {shown}"
            f" (see `perslm-voice say --list-voices --backend {self.name}`)"
        )


def split_sentences(text: str) -> list[str]:
    """Split text into sentences so that the first can be spoken while the rest is made."""
    parts = [p.strip() for p in SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def chunk_from_wav(data: bytes, text: str) -> AudioChunk:
    """An AudioChunk from WAV bytes (16-bit PCM, mono or the first channel); ModelError if bad."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ModelError(f"expected 16-bit WAV audio, got {8 * wav.getsampwidth()}-bit")
            channels = wav.getnchannels()
            rate_hz = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ModelError(f"the TTS engine returned unreadable WAV audio: {exc}") from None
    samples = np.frombuffer(frames, dtype="<i2")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)[:, 0]
    return AudioChunk(
        samples=np.ascontiguousarray(samples, dtype=np.int16), sample_rate_hz=rate_hz, text=text
    )


def chunk_from_file(path: str, text: str) -> AudioChunk:
    """An AudioChunk from any file soundfile reads (WAV, AIFF, MP3), as int16 mono."""
    import soundfile

    try:
        samples, rate_hz = soundfile.read(path, dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ModelError(f"the TTS engine wrote unreadable audio: {exc}") from None
    return AudioChunk(
        samples=np.ascontiguousarray(samples[:, 0]), sample_rate_hz=int(rate_hz), text=text
    )


def wav_bytes(samples: np.ndarray, sample_rate_hz: int) -> bytes:
    """16-bit mono WAV bytes of int16 samples."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return out.getvalue()
