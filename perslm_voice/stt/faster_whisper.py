"""Whisper on CTranslate2 (faster-whisper): the default speech-to-text, offline, int8 on the CPU."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SpeechConfig
from ..errors import BackendUnavailable, ConfigError, ModelError
from ..events import Transcript, TranscriptSegment
from .base import STT, english_only_reason, judge, whisper_input
from .models import resolve_model

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
FRAMES_PER_S = 100  # Whisper's log-Mel frames
FULL_WINDOW_S = 30.0
CONTEXT_MARGIN_S = 2.0  # silence after the utterance in a shortened window (see _decode_short)
MAX_TOKENS_PER_S = 8  # fast speech is about 4 tokens/s: more than twice that is a loop
QUICK_CHECK_SURE_PROB = 0.8  # a non-English guess this sure needs no second look
QUICK_CHECK_MIN_S = 1.5  # shorter speech is padded with silence for the quick check...
QUICK_CHECK_PAD_S = 8.0  # ... this much: a lone word unpadded is often "zh" to it, and sure of it
LANGUAGE_CHECK_MIN_PROB = 0.5  # another language must be at least this likely to reject


def _repeats(text: str, n: int = 3) -> bool:
    """True when some ``n`` words in a row occur twice in ``text``: Whisper looping."""
    words = re.findall(r"[\w']+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams)


def _load_model(path: Path, config: SpeechConfig) -> Any:
    from faster_whisper import WhisperModel

    threads = config.cpu_threads or os.cpu_count() or 1
    try:
        return WhisperModel(
            str(path), device="cpu", compute_type=config.compute_type, cpu_threads=threads
        )
    except ValueError as exc:  # e.g. an unknown compute_type
        raise ConfigError(f"speech.compute_type: {exc}") from None
    except Exception as exc:
        raise ModelError(f"cannot load Whisper model {path}: {exc}") from None


class FasterWhisperSTT(STT):
    """faster-whisper with greedy decoding and no temperature fallback (fast and predictable).

    faster-whisper's own silence and confidence filters are off; ``judge`` applies the same signals and
    says why it rejects. An English-only model turns other languages into fluent English that was
    never said ("Thank you very much."), so when such a transcript is doubtful (average log-probability
    below ``speech.language_check_below``) a multilingual model, when installed, identifies the
    language; another language is rejected as such. Clear English never pays for that check.
    """

    name = "faster_whisper"

    def __init__(self, config: SpeechConfig):
        super().__init__(config)
        self._model: Any = None
        self._checker: Any = None
        self._lock = threading.Lock()  # one decode at a time: CTranslate2 already uses every core
        self.multilingual = True

    @property
    def model_label(self) -> str:
        name = self.config.model_name
        return name if name in ("tiny.en", "base") else Path(name).name

    @property
    def description(self) -> str:
        return f"faster-whisper {self.model_label} ({self.config.compute_type})"

    @property
    def language_check(self) -> bool:
        """Whether doubtful English-only transcripts get their language checked."""
        return self._checker is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            path = resolve_model(self.config.model_name)
            model = _load_model(path, self.config)
            self.multilingual = bool(model.model.is_multilingual)
            if not self.multilingual:
                reason = english_only_reason(self.model_label, self.config.language)
                if reason:
                    raise ConfigError(f"speech.language: {reason}; use speech.model_name: base")
                self._checker = self._load_checker()
            self._model = model
            log.debug("stt: loaded %s from %s", self.description, path)
            self._warm_up()

    def _warm_up(self) -> None:
        """One throw-away run at load time, so that the first utterance is as fast as the tenth."""
        started = time.monotonic()
        quiet = np.zeros(16000, np.float32)
        self._decode(quiet, None if self.multilingual else "en")
        if self._checker is not None:
            self._quick_language(quiet)
        log.debug("stt: warmed up in %.0f ms", (time.monotonic() - started) * 1000)

    def _load_checker(self) -> Any:
        name = self.config.language_check_model
        if not name:
            return None
        try:
            checker = _load_model(resolve_model(name), self.config)
        except BackendUnavailable as exc:
            log.info("stt: no language check for %s (%s)", self.model_label, exc)
            return None
        if not checker.model.is_multilingual:
            raise ConfigError(f"speech.language_check_model: {name!r} is not multilingual")
        return checker

    def transcribe(self, audio_int16_16k: np.ndarray, language: str | None = None) -> Transcript:
        return self._transcribe(audio_int16_16k, language, check_language=True)

    def transcribe_words(
        self, audio_int16_16k: np.ndarray, language: str | None = None
    ) -> Transcript:
        """Without the language check: a barge-in needs to know that someone talks, not in
        which language (the check costs 0.2-1 s while the reply is being written and spoken)."""
        return self._transcribe(audio_int16_16k, language, check_language=False)

    def _transcribe(
        self, audio_int16_16k: np.ndarray, language: str | None, *, check_language: bool
    ) -> Transcript:
        self.load()
        prepared = whisper_input(
            audio_int16_16k,
            language or self.config.language,
            multilingual=self.multilingual,
            model_label=self.model_label,
        )
        if isinstance(prepared, Transcript):
            return prepared
        audio, language = prepared
        with self._lock:
            segments, detected = self._decode(audio, language)
            text = " ".join(s.text for s in segments if s.text).strip()
            rejected = judge(segments, self.config)
            not_speech = bool(rejected) and rejected.startswith("not speech")
            checked = check_language and self._checker is not None
            if checked and not not_speech and self._doubtful(segments):
                heard = self._detect_language(audio)
                if heard is not None and heard != "en":
                    detected = heard
                    rejected = english_only_reason(self.model_label, heard)
        return Transcript(text, detected, segments, rejected)

    def _decode(
        self, audio: np.ndarray, language: str | None
    ) -> tuple[tuple[TranscriptSegment, ...], str]:
        try:
            short = self._decode_short(audio, language) if language is not None else None
            if short is not None:
                return short, language
            pieces, info = self._model.transcribe(
                audio,
                language=language,
                beam_size=self.config.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                without_timestamps=True,  # utterances are short: one segment, fewer tokens
                vad_filter=False,  # the endpointer already cut the speech out
                no_speech_threshold=None,  # judged afterwards, with a reason
                log_prob_threshold=None,
                compression_ratio_threshold=None,
            )
            segments = tuple(
                TranscriptSegment(
                    text=p.text.strip(),
                    start_s=float(p.start),
                    end_s=float(p.end),
                    no_speech_prob=float(p.no_speech_prob),
                    avg_logprob=float(p.avg_logprob),
                    compression_ratio=float(p.compression_ratio),
                )
                for p in pieces
            )
        except Exception as exc:
            raise ModelError(f"speech-to-text failed: {exc}") from None
        return segments, (info.language if self.multilingual else "en")

    def _decode_short(
        self, audio: np.ndarray, language: str
    ) -> tuple[TranscriptSegment, ...] | None:
        """Whisper on a shorter window than its 30 s: the utterance plus 2 s of silence, at least
        ``speech.context_s``. Or None: the full window is needed (see below).

        Whisper pads every input to 30 s, and the encoder's cost grows with the window: on 2 cores
        tiny.en spends about 300 ms on a 2 s question padded to 30 s, and about 100 ms on a 10 s
        window (whisper.cpp's ``audio_ctx`` does the same). With too little padding Whisper
        sometimes says the sentence again ("Why is the sky blue? Why is the sky blue?"); such a
        result (three words said twice, or more tokens than the utterance's length allows) is
        decoded again on the full window, so the shortcut never costs a transcript; so is a
        probable silence, as Whisper's no-speech signal is calibrated on its full window.
        """
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        seconds = len(audio) / SAMPLE_RATE_HZ
        context_s = max(self.config.context_s, seconds + CONTEXT_MARGIN_S)
        if context_s >= FULL_WINDOW_S:
            return None
        model = self._model
        features = model.feature_extractor(audio)
        frames = round(context_s * FRAMES_PER_S)
        frames -= frames % 2  # the encoder's convolution halves the frame rate
        padded = np.zeros((features.shape[0], frames), features.dtype)
        used = min(frames, features.shape[-1])
        padded[:, :used] = features[:, :used]
        tokenizer = Tokenizer(model.hf_tokenizer, self.multilingual, "transcribe", language)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        limit = round(MAX_TOKENS_PER_S * seconds) + 10
        encoded = model.encode(padded)
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=self.config.beam_size,
            max_length=len(prompt) + limit,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, (-1,))),
        )[0]
        tokens = result.sequences_ids[0]
        text = tokenizer.decode(tokens).strip()
        compression = get_compression_ratio(text) if text else 0.0
        no_speech = float(result.no_speech_prob)
        if len(tokens) >= limit or _repeats(text) or no_speech > self.config.no_speech_threshold:
            log.debug("stt: the %.1f s window gave %r; the full window decides", context_s, text)
            return None
        return (
            TranscriptSegment(
                text=text,
                start_s=0.0,
                end_s=seconds,
                no_speech_prob=no_speech,
                avg_logprob=float(result.scores[0])
                * len(tokens)
                / (len(tokens) + 1),  # as faster-whisper
                compression_ratio=compression,
            ),
        )

    def _doubtful(self, segments: tuple[TranscriptSegment, ...]) -> bool:
        words = [s for s in segments if s.text]
        return bool(words) and min(s.avg_logprob for s in words) < self.config.language_check_below

    def _quick_language(self, audio: np.ndarray, pad_s: float = 0.0) -> tuple[str, float]:
        """The checker's language guess from the utterance (with ``pad_s`` of silence after it),
        without padding it to 30 s.

        Whisper pads every input to 30 s; for one decoder step of language identification the
        real length is enough and about ten times cheaper (~40 ms instead of ~450 ms for base on
        2 threads). It is less sure of itself, so only a clear answer is taken (see below). A lone
        word needs some silence after it: unpadded, "two" is Chinese to it at p=0.89; with 8 s
        it is English at 0.86 (about 200 ms).
        """
        import ctranslate2

        features = self._checker.feature_extractor(audio, padding=round(pad_s * SAMPLE_RATE_HZ))
        frames = features.shape[-1] - features.shape[-1] % 2
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :frames]))
        encoded = self._checker.model.encode(view, to_cpu=False)
        token, probability = self._checker.model.detect_language(encoded)[0][0]
        return token.strip("<|>"), float(probability)

    def _detect_language(self, audio: np.ndarray) -> str | None:
        """The language the multilingual checker hears, when it is sure enough; else None."""
        try:
            short = len(audio) < QUICK_CHECK_MIN_S * SAMPLE_RATE_HZ
            language, probability = self._quick_language(audio, QUICK_CHECK_PAD_S if short else 0)
            log.debug("stt: quick language check heard %s (p=%.2f)", language, probability)
            if not short and language != "en" and probability < QUICK_CHECK_SURE_PROB:
                # Unsure: ask again with the silence after it. On the recordings and test
                # voices this agrees with Whisper's full 30 s window at a quarter of its cost
                # (about 190 ms against 690 ms for base on 2 idle cores).
                language, probability = self._quick_language(audio, QUICK_CHECK_PAD_S)
        except (
            Exception
        ) as exc:  # the check is a safeguard: a failure keeps the transcript's verdict
            log.warning("stt: language check failed: %s", exc)
            return None
        log.debug("stt: language check heard %s (p=%.2f)", language, probability)
        if language != "en" and probability < LANGUAGE_CHECK_MIN_PROB:
            return None
        return str(language)

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._checker = None
