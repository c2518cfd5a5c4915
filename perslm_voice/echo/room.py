"""The echo test room (``--echo-room DELAY_MS:GAIN[:NOISE_DB]``): a recording hears the assistant's
voice as it plays, delayed and attenuated, as a microphone near speakers would."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..audio.capture import FileSource
from ..audio.player import Player
from ..audio.resample import resample
from ..errors import UsageError
from ..events import SAMPLE_RATE_HZ, AudioChunk


@dataclass(frozen=True)
class EchoRoomSpec:
    """``--echo-room DELAY_MS:GAIN[:NOISE_DB]``: how the room returns the voice to the microphone."""

    delay_ms: float
    gain: float
    noise_dbfs: float | None = None

    @classmethod
    def parse(cls, text: str) -> EchoRoomSpec:
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            delay_ms, gain = float(parts[0]), float(parts[1])
            noise = float(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise UsageError(
                f"--echo-room {text!r}: expected DELAY_MS:GAIN[:NOISE_DB], e.g. 150:0.5:-50"
            ) from None
        if not 0 <= delay_ms <= 2000 or not 0 <= gain <= 4 or (noise is not None and noise > 0):
            raise UsageError(
                f"--echo-room {text!r}: the delay is 0-2000 ms, the gain 0-4, the noise <= 0 dBFS"
            )
        return cls(delay_ms, gain, noise)


class EchoRoom:
    """Plays the assistant's output back into a `FileSource`, as a room would into a microphone."""

    def __init__(self, spec: EchoRoomSpec, source: FileSource):
        self.spec = spec
        self.source = source
        if spec.noise_dbfs is not None:
            source.add_noise(32768.0 * 10 ** (spec.noise_dbfs / 20))

    @property
    def description(self) -> str:
        noise = f", noise {self.spec.noise_dbfs:g} dBFS" if self.spec.noise_dbfs is not None else ""
        return f"echo room: {self.spec.delay_ms:g} ms, gain {self.spec.gain:g}{noise}"

    def played(self, chunk: AudioChunk, t_start: float) -> None:
        samples = resample(chunk.samples, chunk.sample_rate_hz, SAMPLE_RATE_HZ)
        # The hook may come a little after the chunk started: the echo is due from t_start on.
        delay_s = self.spec.delay_ms / 1000 + (t_start - time.monotonic())
        skip = max(0, round(-delay_s * SAMPLE_RATE_HZ))
        self.source.add_echo(samples[skip:], max(0.0, delay_s), self.spec.gain)

    def silenced(self, t: float) -> None:
        self.source.cut_echoes(self.spec.delay_ms / 1000 + (t - time.monotonic()))

    def attach(self, player: Player) -> None:
        player.follow(self.played, self.silenced)
