"""Whisper on CTranslate2 (faster-whisper): the default speech-to-text, offline, int8 on the CPU."""

from __future__ import annotations

import logging
import math
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
from .base import STT, Verdict, english_only_reason, judge, rejected, whisper_input
from .language import (
    STRONG_EVIDENCE_PROB,
    WHISPER_LANGUAGES,
    LanguageView,
    base_code,
    decide,
)
from .models import resolve_model

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
FRAMES_PER_S = 100  # Whisper's log-Mel frames
FULL_WINDOW_S = 30.0
CONTEXT_MARGIN_S = 2.0  # silence after the utterance in a shortened window (see _decode_short)
MAX_TOKENS_PER_S = 8  # fast speech is about 4 tokens/s: more than twice that is a loop
QUICK_CHECK_MIN_S = 1.5  # shorter speech is padded with silence for the quick check...
QUICK_CHECK_PAD_S = 8.0  # ... this much: a lone word unpadded is often "zh" to it, and sure of it
MAX_PROMPT_TOKENS = 223  # as faster-whisper: half the decoder's 448 positions, less one
MAX_NEW_TOKENS = 448 - MAX_PROMPT_TOKENS - 5  # what is left after the longest prompt
# CTranslate2 runs Whisper's two input convolutions through oneDNN, which compiles and keeps one
# primitive per input length, up to 1024 by default, and never frees them: the window of an
# utterance over 8 s (its length + 2 s) and the language check's unpadded reading are a new length
# almost every time.
# Measured with scripts/mem_probe.py (0.5-10 s of real speech): tiny.en grew 105 MB over 600
# utterances, the base model's language check 327 MB over 300, a voice turn (both) 74 MB over
# 150, with no plateau; with 32 entries (least recently used first out) the last grew 18 MB over
# 600 and stayed flat after the first 100. A miss costs about 1 ms (two convolutions) against
# 150-250 ms a turn. Read once, at oneDNN's first convolution; a value set by the user wins.
ONEDNN_CACHE_ENTRIES = "32"


def _repeats(text: str, n: int = 3) -> bool:
    """True when some ``n`` words in a row occur twice in ``text``: Whisper looping."""
    words = re.findall(r"[\w']+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams)


def _load_model(path: Path, config: SpeechConfig) -> Any:
    from faster_whisper import WhisperModel

    threads = config.cpu_threads or os.cpu_count() or 1
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_ENTRIES)
    try:
        return WhisperModel(
            str(path), device="cpu", compute_type=config.compute_type, cpu_threads=threads
        )
    except ValueError as exc:  # e.g. an unknown compute_type
        raise ConfigError(f"speech.compute_type: {exc}") from None
    except Exception as exc:
        raise ModelError(f"cannot load Whisper model {path}: {exc}") from None


def _segment(piece: Any) -> TranscriptSegment:
    """faster-whisper's segment (and its words, when it has them) as ours."""
    words = tuple(
        TranscriptSegment(
            text=w.word,
            start_s=float(w.start),
            end_s=float(w.end),
            avg_logprob=math.log(max(float(w.probability), 1e-9)),
        )
        for w in piece.words or ()
    )
    return TranscriptSegment(
        text=piece.text.strip(),
        start_s=float(piece.start),
        end_s=float(piece.end),
        no_speech_prob=float(piece.no_speech_prob),
        avg_logprob=float(piece.avg_logprob),
        compression_ratio=float(piece.compression_ratio),
        words=words,
    )


class FasterWhisperSTT(STT):
    """faster-whisper with greedy decoding and no temperature fallback (fast and predictable).

    faster-whisper's own silence and confidence filters are off; ``judge`` applies the same signals and
    says why it rejects. An English-only model turns other languages into fluent English that was
    never said ("Thank you very much."), so when such a transcript is doubtful (average log-probability
    below ``speech.language_check_below``) a multilingual model, when installed, identifies the
    language; the user's language is the prior, and another one wins only on strong, consistent
    evidence (see ``language.py``). Clear English never pays for that check, and unclear English
    that the check does not place elsewhere is kept: misheard beats ignored.
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
        self._decode(quiet, None if self.multilingual else "en", None, False)
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

    def transcribe(
        self,
        audio_int16_16k: np.ndarray,
        language: str | None = None,
        *,
        user_language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
    ) -> Transcript:
        return self._transcribe(
            audio_int16_16k,
            language,
            check_language=True,
            user_language=user_language,
            prompt=prompt,
            words=words,
        )

    def transcribe_words(
        self, audio_int16_16k: np.ndarray, language: str | None = None
    ) -> Transcript:
        """Without the language check: a barge-in needs to know that someone talks, not in
        which language (the check costs 0.2-1 s while the reply is being written and spoken)."""
        return self._transcribe(audio_int16_16k, language, check_language=False)

    def _transcribe(
        self,
        audio_int16_16k: np.ndarray,
        language: str | None,
        *,
        check_language: bool,
        user_language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
    ) -> Transcript:
        self.load()
        forced = language or self.config.language
        prepared = whisper_input(
            audio_int16_16k, forced, multilingual=self.multilingual, model_label=self.model_label
        )
        if isinstance(prepared, Transcript):
            return prepared
        audio, language = prepared
        expected = base_code(user_language) or base_code(self.config.language)
        if expected not in WHISPER_LANGUAGES:  # a profile may name one Whisper does not know
            expected = None
        with self._lock:
            segments, detected, sure = self._decode(audio, language, prompt, words)
            if language is None and expected and detected != expected:
                if sure < STRONG_EVIDENCE_PROB:  # a lean, not evidence: the user's language
                    log.debug("stt: heard %s (p=%.2f), read as %s", detected, sure, expected)
                    segments, detected, _ = self._decode(audio, expected, prompt, words)
            verdict = judge(segments, self.config)
            doubtful = verdict is None or verdict.kind == "low confidence"
            if check_language and self._checker is not None and doubtful:
                if self._doubtful(segments):
                    other = self._other_language(audio, expected)
                    if other is not None:
                        detected = other.language
                        reason = english_only_reason(self.model_label, other.language)
                        verdict = Verdict("language", str(reason))
                    elif verdict is not None:
                        # Whisper's silence rule did not fire (noise does: see judge), and no
                        # other language is in evidence: a person said something in the user's
                        # language that was hard to hear. Misheard beats ignored.
                        log.info("stt: unclear but kept (%s): %r", verdict.reason, segments)
                        verdict = None
        text = " ".join(s.text for s in segments if s.text).strip()
        return rejected(Transcript(text, detected, segments), verdict)

    def _decode(
        self, audio: np.ndarray, language: str | None, prompt: str | None, words: bool
    ) -> tuple[tuple[TranscriptSegment, ...], str, float]:
        """The segments, their language and how sure the model is of it (1.0 when given)."""
        try:
            short = None
            if language is not None and not words:  # word times come from the full path
                short = self._decode_short(audio, language, prompt)
            if short is not None:
                return short, language, 1.0
            pieces, info = self._model.transcribe(
                audio,
                language=language,
                beam_size=self.config.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                initial_prompt=prompt or None,
                # A loop ("1, 0, 0, 0, ..." on 0.7 s of digits) otherwise runs to the decoder's
                # 448 positions: about a second of tiny.en for nothing.
                max_new_tokens=min(
                    round(MAX_TOKENS_PER_S * len(audio) / SAMPLE_RATE_HZ) + 10, MAX_NEW_TOKENS
                ),
                # An utterance is short: one segment, fewer tokens. A window of several, with
                # their words, is read as Whisper reads long speech: segment by segment, and a
                # segment that its silence rule calls silence is skipped (without that, the
                # silence after the last word became "Thank you." on english.wav).
                without_timestamps=not words,
                word_timestamps=words,
                vad_filter=False,  # the endpointer already cut the speech out
                no_speech_threshold=self.config.no_speech_threshold if words else None,
                log_prob_threshold=self.config.log_prob_threshold if words else None,
                compression_ratio_threshold=None,
            )
            segments = tuple(_segment(p) for p in pieces)
        except Exception as exc:
            raise ModelError(f"speech-to-text failed: {exc}") from None
        if not self.multilingual:
            return segments, "en", 1.0
        return segments, info.language, float(info.language_probability)

    def _decode_short(
        self, audio: np.ndarray, language: str, prompt: str | None = None
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
        previous = tokenizer.encode(" " + prompt.strip())[-MAX_PROMPT_TOKENS:] if prompt else []
        tokens_in = model.get_prompt(tokenizer, previous, without_timestamps=True)
        limit = round(MAX_TOKENS_PER_S * seconds) + 10
        encoded = model.encode(padded)
        result = model.model.generate(
            encoded,
            [tokens_in],
            beam_size=self.config.beam_size,
            max_length=len(tokens_in) + limit,
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

    def _other_language(self, audio: np.ndarray, expected: str | None) -> LanguageView | None:
        """The other language the checker hears, on strong and consistent evidence; else None.

        A short utterance (under 1.5 s) is read once, with 8 s of silence after it; a longer one
        first as it is (~40 ms for base on 2 threads), and only if that reading already names
        another language strongly, again with the silence after it (~200 ms): both must agree
        (``language.decide``). Clear English never gets here; real English that does mostly
        stops after the first reading."""
        views: list[LanguageView] = []
        try:
            if len(audio) >= QUICK_CHECK_MIN_S * SAMPLE_RATE_HZ:
                views.append(LanguageView(*self._quick_language(audio), "as heard"))
                if decide(views, "en", expected) is None:
                    log.debug("stt: language check: %s, not another language", views)
                    return None
            padded = self._quick_language(audio, QUICK_CHECK_PAD_S)
            views.append(LanguageView(*padded, f"with {QUICK_CHECK_PAD_S:.0f} s of silence after"))
        except Exception as exc:  # the check is a safeguard: a failure keeps the transcript
            log.warning("stt: language check failed: %s", exc)
            return None
        other = decide(views, "en", expected)
        log.debug("stt: language check: %s -> %s", views, other.language if other else "en")
        return other

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._checker = None
