"""Voice activity detection: how likely a 32 ms frame is speech. Silero (default) or webrtcvad."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..config import VADConfig
from ..errors import BackendUnavailable, ModelError
from ..events import FRAME_SAMPLES, SAMPLE_RATE_HZ
from ..registry import Registry


class VAD(ABC):
    """Speech probability per frame; keeps state across frames of one stream (``reset`` clears it)."""

    name: str = "vad"
    frame_samples: int = FRAME_SAMPLES

    @abstractmethod
    def speech_probability(self, frame_int16: np.ndarray) -> float:
        """0..1 for one frame of ``frame_samples`` int16 samples at 16 kHz."""

    def reset(self) -> None:
        """Forget the stream so far (a new stream begins)."""

    @property
    def description(self) -> str:
        return self.name


def silero_model_path() -> Path:
    """Silero VAD v6 as shipped inside faster-whisper's package data."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "vad backend 'silero' needs faster-whisper: pip install faster-whisper"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise BackendUnavailable(
            f"vad backend 'silero': {path} is missing; pip install --force-reinstall faster-whisper"
        )
    return path


class SileroVAD(VAD):
    """Silero VAD v6 on onnxruntime, one frame at a time, on one thread (a few % of one core)."""

    name = "silero"
    CONTEXT_SAMPLES = 64  # the model sees the last 64 samples of the previous frame too

    def __init__(self, model_path: str | Path | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: the frames are tiny, and the cores belong to Whisper and the LLM.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        path = Path(model_path) if model_path else silero_model_path()
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options
            )
        except Exception as exc:
            raise ModelError(f"cannot load the Silero VAD model {path}: {exc}") from None
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(self.CONTEXT_SAMPLES, np.float32)

    def speech_probability(self, frame_int16: np.ndarray) -> float:
        audio = np.asarray(frame_int16, np.float32) / 32768.0
        window = np.concatenate([self._context, audio])[None, :]
        out, self._h, self._c = self._session.run(
            None, {"input": window, "h": self._h, "c": self._c}
        )
        self._context = audio[-self.CONTEXT_SAMPLES :]
        return float(np.asarray(out).reshape(-1)[0])


class WebRTCVAD(VAD):
    """Google's WebRTC VAD: very cheap, but calls loud noise speech. Gives 0 or 1.

    It takes 10/20/30 ms frames, so a 32 ms frame is split into three 10 ms pieces (the last 2 ms are
    carried into the next frame) and the pieces vote.
    """

    name = "webrtcvad"
    PIECE_SAMPLES = 160  # 10 ms

    def __init__(self, aggressiveness: int = 2):
        import webrtcvad

        self._vad = webrtcvad.Vad(int(aggressiveness))
        self.aggressiveness = aggressiveness
        self.reset()

    @property
    def description(self) -> str:
        return f"webrtcvad (aggressiveness {self.aggressiveness})"

    def reset(self) -> None:
        self._carry = np.zeros(0, np.int16)

    def speech_probability(self, frame_int16: np.ndarray) -> float:
        data = np.concatenate([self._carry, np.asarray(frame_int16, np.int16)])
        count = len(data) // self.PIECE_SAMPLES
        self._carry = data[count * self.PIECE_SAMPLES :]
        if count == 0:
            return 0.0
        votes = sum(
            self._vad.is_speech(
                data[i * self.PIECE_SAMPLES : (i + 1) * self.PIECE_SAMPLES].tobytes(),
                SAMPLE_RATE_HZ,
            )
            for i in range(count)
        )
        return 1.0 if votes * 2 > count else 0.0


registry = Registry("vad", "vad.backend")
registry.register(
    "silero",
    "perslm_voice.audio.vad:SileroVAD",
    requires=("onnxruntime", "faster_whisper"),
    install="pip install faster-whisper onnxruntime",
)
registry.register(
    "webrtcvad",
    "perslm_voice.audio.vad:WebRTCVAD",
    requires=("webrtcvad",),
    install="pip install webrtcvad-wheels",
)


def create_vad(config: VADConfig) -> VAD:
    """The configured VAD, ready to use."""
    cls = registry.load(config.backend)
    if config.backend == "webrtcvad":
        return cls(config.aggressiveness)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]
