"""The reference openai-whisper implementation (PyTorch), on the same bundled weights.

An optional extra (``pip install 'perslm-voice[openai-whisper]'``, which brings torch). It never
downloads: ``tiny.en`` and ``base`` are converted once from the bundled CTranslate2 weights into
``<cache dir>/models/openai-whisper/<name>.pt`` (see ``stt/convert.py``); a path to a ``.pt`` checkpoint
is loaded as it is.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths
from ..config import SpeechConfig
from ..errors import ConfigError, ModelError
from ..events import Transcript, TranscriptSegment
from .base import STT, judge, rejected, whisper_input
from .models import BUNDLED, resolve_model


def checkpoint_for(model_name: str) -> Path:
    """The .pt checkpoint for ``speech.model_name``, converting bundled weights on first use."""
    if model_name in BUNDLED:
        target = paths.cache_dir() / "models" / "openai-whisper" / f"{model_name}.pt"
        if not target.is_file():
            from .convert import convert

            convert(resolve_model(model_name), target)
        return target
    path = Path(model_name).expanduser()
    if path.is_file() and path.suffix == ".pt":
        return path
    if path.is_dir() and (path / "model.bin").is_file():  # a CTranslate2 folder: convert it once
        target = paths.cache_dir() / "models" / "openai-whisper" / f"{path.resolve().name}.pt"
        if not target.is_file():
            from .convert import convert

            convert(path, target)
        return target
    raise ConfigError(
        f"speech.model_name: {model_name!r} is not tiny.en, base, a .pt checkpoint or a"
        " CTranslate2 folder"
    )


class OpenAIWhisperSTT(STT):
    """openai-whisper, greedy, fp32 on the CPU; judged by the same rules as faster-whisper."""

    name = "openai_whisper"

    def __init__(self, config: SpeechConfig):
        super().__init__(config)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"openai-whisper {self.config.model_name}"

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            import whisper

            torch.set_num_threads(self.config.cpu_threads or os.cpu_count() or 1)
            checkpoint = checkpoint_for(self.config.model_name)
            try:
                self._model = whisper.load_model(str(checkpoint), device="cpu")
            except Exception as exc:
                raise ModelError(
                    f"cannot load openai-whisper checkpoint {checkpoint}: {exc}"
                ) from None

    def transcribe(
        self,
        audio_int16_16k: np.ndarray,
        language: str | None = None,
        *,
        user_language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
    ) -> Transcript:
        """As ``STT.transcribe``; this backend has no language check, so ``user_language`` is
        not used."""
        self.load()
        prepared = whisper_input(
            audio_int16_16k,
            language or self.config.language,
            multilingual=self._model.is_multilingual,
            model_label=self.config.model_name,
        )
        if isinstance(prepared, Transcript):
            return prepared
        audio, language = prepared
        with self._lock:
            try:
                result = self._model.transcribe(
                    audio,
                    language=language,
                    beam_size=None if self.config.beam_size == 1 else self.config.beam_size,
                    temperature=0.0,
                    condition_on_previous_text=False,
                    initial_prompt=prompt or None,
                    without_timestamps=True,
                    word_timestamps=words,
                    fp16=False,
                    no_speech_threshold=None,
                    logprob_threshold=None,
                    compression_ratio_threshold=None,
                )
            except Exception as exc:
                raise ModelError(f"speech-to-text failed: {exc}") from None
        segments = tuple(
            TranscriptSegment(
                text=str(s["text"]).strip(),
                start_s=float(s["start"]),
                end_s=float(s["end"]),
                no_speech_prob=float(s["no_speech_prob"]),
                avg_logprob=float(s["avg_logprob"]),
                compression_ratio=float(s["compression_ratio"]),
                words=tuple(
                    TranscriptSegment(
                        str(w["word"]),
                        float(w["start"]),
                        float(w["end"]),
                        avg_logprob=math.log(max(float(w["probability"]), 1e-9)),
                    )
                    for w in s.get("words") or ()
                ),
            )
            for s in result["segments"]
        )
        text = str(result["text"]).strip()
        heard = Transcript(text, result.get("language") or language, segments)
        return rejected(heard, judge(segments, self.config))

    def close(self) -> None:
        with self._lock:
            self._model = None
