"""Smart Turn v3.2: how likely the audio of a turn so far ends a complete turn, from how it sounds.

Pipecat's end-of-turn model (BSD-2-Clause, Daily; the CPU ONNX export, 8.7 MB, is vendored in
``turn_model/`` with its licence, copied from the ``pipecat-ai`` 1.14.0 wheel): a Whisper-tiny
encoder with a classifier head, trained on speakers stopping mid-sentence and finishing. It reads
the last 8 s of 16 kHz audio as Whisper log-mel features and returns P(complete).

The features come from faster-whisper's numpy ``FeatureExtractor`` (already installed) with the
waveform normalised to zero mean and unit variance first, as ``transformers``'
``WhisperFeatureExtractor(do_normalize=True)`` does for this model: on vosk_test.wav the result is
within 3e-6 of pipecat's own extractor, and the model's output is the same to 8 digits.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..events import SAMPLE_RATE_HZ

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
WINDOW_S = 8  # the model was trained on the last 8 s of a turn, zero-padded in front
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE_HZ
NORM_EPS = 1e-7  # transformers' zero-mean unit-variance epsilon


def model_path() -> Path:
    """The vendored ONNX file, inside the installed package."""
    return Path(str(resources.files("perslm_voice.audio.turn_model").joinpath(MODEL_FILE)))


def check_model(path: Path) -> None:
    """A missing or damaged model file says how to get it back (it ships in the package)."""
    if not path.is_file():
        raise ModelError(
            f"the Smart Turn model {path} is missing; reinstall perslm-voice"
            " (pip install --force-reinstall perslm-voice), or set vad.turn_detection: silence"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(
            f"the Smart Turn model {path} is damaged (sha256 {digest[:12]}..., expected"
            f" {MODEL_SHA256[:12]}...); reinstall perslm-voice, or set vad.turn_detection: silence"
        )


def last_window(audio_int16: np.ndarray) -> np.ndarray:
    """The last 8 s as float32 in -1..1, zero-padded in front when shorter (as in training)."""
    audio = np.asarray(audio_int16, np.float32)[-WINDOW_SAMPLES:] / 32768.0
    if len(audio) < WINDOW_SAMPLES:
        audio = np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))
    return audio


class SmartTurnModel:
    """The loaded model; ``probability`` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: str | Path | None = None, threads: int = 1):
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        path = Path(path) if path else model_path()
        check_model(path)
        options = onnxruntime.SessionOptions()
        # One thread: a decision is 150-190 ms of one core here (features 35 ms, the rest the
        # encoder), and the other core is transcribing the same pause at that moment.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options
            )
        except Exception as exc:
            raise ModelError(f"cannot load the Smart Turn model {path}: {exc}") from None
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)

    def features(self, audio_int16: np.ndarray) -> np.ndarray:
        """(80, 800) log-mel features of the last 8 s, as the model was trained on."""
        audio = last_window(audio_int16)
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + NORM_EPS)
        # padding=0: 128000 samples give 801 frames and the extractor drops the last: 800.
        return np.asarray(self._features(audio, padding=0), np.float32)

    def probability(self, audio_int16: np.ndarray) -> float:
        """P(the turn is complete) for 16 kHz int16 audio that ends now (trailing pause included)."""
        features = self.features(audio_int16)[None]
        (out,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(out).reshape(-1)[0])
