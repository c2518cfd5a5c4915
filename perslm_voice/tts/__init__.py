"""Text-to-speech: backends that yield audio chunks, a response cache, and text made for speaking.

tts = with_cache(create_tts(config.tts), config.tts)
tts.load()
for chunk in tts.synthesize(to_speech(reply), voice_settings):
    player.enqueue(chunk)
"""

from __future__ import annotations

from .base import TTS, split_sentences
from .cache import CachedTTS, TTSCache, with_cache
from .registry import create_tts, registry, resolve_backend
from .speakable import SpeakableStream, to_speech

__all__ = [
    "TTS",
    "CachedTTS",
    "SpeakableStream",
    "TTSCache",
    "create_tts",
    "registry",
    "resolve_backend",
    "split_sentences",
    "to_speech",
    "with_cache",
]
