"""The speech-to-text backends by name."""

from __future__ import annotations

from ..config import SpeechConfig
from ..registry import Registry
from .base import STT

registry = Registry("stt", "speech.backend")
registry.register(
    "faster_whisper",
    "perslm_voice.stt.faster_whisper:FasterWhisperSTT",
    requires=("faster_whisper", "ctranslate2"),
    install="pip install faster-whisper",
)
# The guide's name for "the local default".
registry.register(
    "whisper_local",
    "perslm_voice.stt.faster_whisper:FasterWhisperSTT",
    requires=("faster_whisper", "ctranslate2"),
    install="pip install faster-whisper",
)
registry.register(
    "openai_whisper",
    "perslm_voice.stt.openai_whisper:OpenAIWhisperSTT",
    requires=("whisper", "torch"),
    install="pip install 'perslm-voice[openai-whisper]'",
)
registry.register(
    "openai",
    "perslm_voice.stt.openai:OpenAISTT",
    requires=("openai",),
    install="pip install openai",
)


def create_stt(config: SpeechConfig) -> STT:
    """The configured backend, not loaded yet (call ``load()``, e.g. in the background)."""
    cls = registry.load(config.backend)
    stt: STT = cls(config)
    return stt
