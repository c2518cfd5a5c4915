"""pyttsx3 (MPL-2.0): the platform's own engine, espeak-ng on Linux; robotic but always offline.

pyttsx3 2.99 only writes to files or plays through its own player, so every sentence is saved to a
temporary file and read back. Only ``save_to_file`` is used: ``say()`` after ``save_to_file()``
would rewrite that file.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from ..config import TTSConfig, VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from .base import DEFAULT_VOICE, TTS, chunk_from_file, split_sentences

log = logging.getLogger(__name__)

DEFAULT_WORDS_PER_MIN = 200  # pyttsx3's default rate, our rate 1.0
_MBROLA_PREFIX = "mb/"  # espeak-ng voices that need the separate mbrola program


def _driver_name() -> str | None:
    return "espeak" if sys.platform.startswith("linux") else None


class _DropLine:
    """A stdout that drops one exact line: pyttsx3's espeak driver prints "Audio saved to PATH"
    for every file, from espeak's own thread, and that must not reach our stdout (JSON output,
    the session). Everything else passes through untouched."""

    def __init__(self, target: TextIO, line: str):
        self._target = target
        self._line = line
        self._dropped = False

    def write(self, text: str) -> int:
        if text == self._line:
            self._dropped = True
            return len(text)
        if self._dropped and text == "\n":  # print() writes the end of line separately
            self._dropped = False
            return len(text)
        return self._target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class Pyttsx3TTS(TTS):
    """pyttsx3 over espeak-ng (Linux), NSSpeechSynthesizer (macOS) or SAPI5 (Windows)."""

    name = "pyttsx3"

    def __init__(self, config: TTSConfig, driver: str | None = None):
        super().__init__(config)
        self._driver = driver or _driver_name()
        self._engine: Any = None
        self._voices: list[Any] = []
        self._lock = threading.Lock()  # the engine is not thread-safe

    def load(self) -> None:
        with self._lock:
            if self._engine is not None:
                return
            try:
                import pyttsx3

                self._engine = pyttsx3.init(self._driver)
                self._voices = list(self._engine.getProperty("voices") or [])
            except Exception as exc:  # a missing libespeak-ng is an OSError deep inside pyttsx3
                fix = (
                    "sudo apt install espeak-ng libespeak-ng1"
                    if sys.platform.startswith("linux")
                    else "reinstall pyttsx3"
                )
                raise BackendUnavailable(
                    f"tts backend 'pyttsx3' cannot start: {exc}; {fix}"
                ) from None

    def list_voices(self) -> list[str]:
        self.load()
        return [str(v.id) for v in self._voices]

    def resolve_voice(self, voice: VoiceSettings) -> str:
        self.load()
        wanted = voice.voice_id.lower()
        if wanted == DEFAULT_VOICE:
            return self._voice_for_language(voice.language)
        for v in self._voices:
            if wanted in (str(v.id).lower(), str(v.name).lower()):
                return str(v.id)
        raise self.unknown_voice(voice.voice_id, self.list_voices())

    def _voice_for_language(self, language: str) -> str:
        """The engine's voice for a language code such as en-US (then en), else its default."""
        lang = language.lower().replace("_", "-")
        candidates = [v for v in self._voices if not str(v.id).startswith(_MBROLA_PREFIX)]
        for wanted in (lang, lang.split("-")[0]):
            for v in candidates:
                langs = [str(x).lower().replace("_", "-") for x in (v.languages or [])]
                if wanted in langs:
                    return str(v.id)
        return str(self._engine.getProperty("voice"))

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        voice_id = self.resolve_voice(voice)
        suffix = ".aiff" if sys.platform == "darwin" else ".wav"
        for sentence in split_sentences(text):
            fd, path = tempfile.mkstemp(prefix="perslm-tts-", suffix=suffix)
            os.close(fd)
            try:
                with self._lock:
                    self._engine.setProperty("voice", voice_id)
                    self._engine.setProperty("rate", round(DEFAULT_WORDS_PER_MIN * voice.rate))
                    self._engine.save_to_file(sentence, path)
                    self._run_quietly(path)
                if os.path.getsize(path) == 0:
                    raise ModelError(f"pyttsx3 wrote no audio for {sentence[:40]!r}")
                yield chunk_from_file(path, sentence)
            finally:
                os.unlink(path)

    def _run_quietly(self, path: str) -> None:
        original = sys.stdout
        sys.stdout = _DropLine(original, f"Audio saved to {path}")  # type: ignore[assignment]
        try:
            self._engine.runAndWait()
        except Exception as exc:
            raise ModelError(f"pyttsx3 failed: {exc}") from None
        finally:
            sys.stdout = original

    @property
    def description(self) -> str:
        engine = {"espeak": "espeak-ng"}.get(self._driver or "", "system voice")
        return f"pyttsx3 ({engine})"

    @property
    def model_id(self) -> str:
        return self._driver or sys.platform

    def close(self) -> None:
        with self._lock:
            self._engine = None
