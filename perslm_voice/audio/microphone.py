"""The microphone as an audio source, on sounddevice (PortAudio)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from ..config import AudioConfig
from ..errors import AudioError
from ..events import SAMPLE_RATE_HZ, AudioFrame
from .capture import FRAME_S, AudioSource, EndCallback, FrameCallback, FrameQueue
from .devices import import_sounddevice, list_devices, resolve_input_device
from .resample import FrameChunker, Resampler

log = logging.getLogger(__name__)


class MicrophoneSource(AudioSource):
    """An input device, opened at 16 kHz when it can be, otherwise at its own rate and resampled.

    The PortAudio callback only copies the block into a bounded FrameQueue (oldest dropped and counted
    on overflow); a delivery thread resamples, cuts 32 ms frames and calls ``on_frame``.
    """

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        queue_frames: int = 256,
    ):
        sd = import_sounddevice()
        info = resolve_input_device(list_devices(), device)
        self.device_index = info.index
        self.sample_rate_hz = sample_rate_hz
        try:
            sd.check_input_settings(
                device=info.index, channels=1, dtype="float32", samplerate=sample_rate_hz
            )
            rate = sample_rate_hz
        except Exception:  # the device cannot run at 16 kHz: open it at its own rate, resample
            rate = int(info.default_samplerate_hz)
        self.device_rate_hz = rate
        self.description = f"{info.name} (device {info.index}, {rate} Hz)"
        self._queue = FrameQueue(queue_frames)
        self._stopping = False
        self._on_end: EndCallback | None = None
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_drops = 0
        self.overflows = 0  # PortAudio's own input overflows (the OS buffer, before our queue)
        try:
            self._stream = sd.InputStream(
                device=info.index,
                channels=1,
                samplerate=rate,
                dtype="float32",
                blocksize=max(1, round(rate * FRAME_S)),
                callback=self._callback,
                finished_callback=self._finished,
            )
        except Exception as exc:  # busy, unplugged, or refused by the host API
            raise AudioError(f"no microphone: cannot open {info.name!r} ({exc})") from None

    @property
    def dropped_frames(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._queue.dropped

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and hand over, nothing else (no logging, no locks held for long).
        if status and status.input_overflow:
            self.overflows += 1
        self._queue.put((indata[:, 0].copy(), time.monotonic()))

    def _finished(self) -> None:
        # The stream stopped: by stop(), or because the device went away.
        if not self._stopping:
            self._queue.put(None)  # tells the delivery thread the device was lost

    def start(self, on_frame: FrameCallback, on_end: EndCallback) -> None:
        if self._thread is not None:
            raise AudioError(f"{self.description}: already started")
        self._on_end = on_end
        self._thread = threading.Thread(
            target=self._deliver, args=(on_frame,), name="perslm-microphone", daemon=True
        )
        self._thread.start()
        try:
            self._stream.start()
        except Exception as exc:
            self.stop()
            raise AudioError(f"no microphone: cannot start {self.description} ({exc})") from None

    def _deliver(self, on_frame: FrameCallback) -> None:
        resampler = Resampler(self.device_rate_hz, SAMPLE_RATE_HZ)
        chunker = FrameChunker()
        while True:
            item = self._queue.get()
            if item is None:
                break
            block, t_block = item
            for samples in chunker.push(resampler.process(block)):
                on_frame(AudioFrame(samples, t_block))
            if self._queue.dropped != self._logged_drops:
                self._logged_drops = self._queue.dropped
                log.debug(
                    "microphone: %d frames dropped so far (consumer too slow)", self._logged_drops
                )
        if not self._stopping and self._on_end is not None:
            self._on_end("microphone lost: the input device stopped delivering audio")

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        try:
            self._stream.abort(ignore_errors=True)
            self._stream.close(ignore_errors=True)
        except Exception as exc:  # the device may already be gone
            log.debug("microphone: closing the stream failed: %s", exc)
        self._queue.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def open_microphone(audio: AudioConfig, sample_rate_hz: int = SAMPLE_RATE_HZ) -> MicrophoneSource:
    """The configured input device (``audio.input_device``: index, name, or null for the default).

    Raises AudioError with one line: PortAudio missing, no input device, or the device cannot be opened.
    """
    return MicrophoneSource(audio.input_device, sample_rate_hz, audio.queue_frames)
