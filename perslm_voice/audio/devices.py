"""What audio hardware there is: PortAudio's devices, the defaults, and why there are none."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from ..errors import AudioError

NO_PORTAUDIO = "no microphone: PortAudio is not installed (apt install libportaudio2)"


def import_sounddevice() -> ModuleType:
    """The sounddevice module, or AudioError when the PortAudio library cannot be loaded."""
    try:
        import sounddevice
    except OSError:  # sounddevice raises OSError when libportaudio cannot be found or loaded
        raise AudioError(NO_PORTAUDIO) from None
    except ImportError:
        raise AudioError(
            "no microphone: sounddevice is not installed (pip install sounddevice)"
        ) from None
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate_hz: float


@dataclass(frozen=True)
class DeviceReport:
    """Every device, the default input and output (indexes), and the reason when there is no input."""

    devices: tuple[DeviceInfo, ...] = ()
    default_input: int | None = None
    default_output: int | None = None
    problem: str | None = None
    portaudio_version: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def inputs(self) -> list[DeviceInfo]:
        return [d for d in self.devices if d.max_input_channels > 0]

    @property
    def outputs(self) -> list[DeviceInfo]:
        return [d for d in self.devices if d.max_output_channels > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "portaudio": self.portaudio_version,
            "inputs": [asdict(d) for d in self.inputs],
            "outputs": [asdict(d) for d in self.outputs],
            "default_input": self.default_input,
            "default_output": self.default_output,
            "problem": self.problem,
        }


def _no_device_reason() -> str:
    """Why PortAudio sees no input: no sound card, or no permission to open it."""
    snd = "/dev/snd"
    if os.path.isdir(snd) and not os.access(snd, os.R_OK | os.W_OK):
        return "no microphone: permission denied on /dev/snd (add your user to the 'audio' group)"
    if not os.path.exists(snd) and not os.environ.get("PULSE_SERVER"):
        return "no microphone: no audio input device found (this machine has no sound card: /dev/snd is absent)"
    return "no microphone: no audio input device found"


def list_devices() -> DeviceReport:
    """Query PortAudio; never raises for a missing library or missing devices (they are the report)."""
    try:
        sd = import_sounddevice()
    except AudioError as exc:
        return DeviceReport(problem=str(exc))
    try:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudio failed to initialise
        return DeviceReport(problem=f"no microphone: PortAudio cannot list devices ({exc})")
    devices = tuple(
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]) if d["hostapi"] < len(hostapis) else "",
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate_hz=float(d["default_samplerate"]),
        )
        for d in raw
    )
    default_in, default_out = (int(i) for i in sd.default.device)
    has_input = any(d.max_input_channels > 0 for d in devices)
    return DeviceReport(
        devices=devices,
        default_input=default_in if default_in >= 0 else None,
        default_output=default_out if default_out >= 0 else None,
        problem=None if has_input else _no_device_reason(),
        portaudio_version=str(sd.get_portaudio_version()[1]),
    )


def resolve_input_device(report: DeviceReport, device: str | int | None) -> DeviceInfo:
    """The input device to open: by index, by (part of its) name, or the default one."""
    if report.problem and not report.inputs:
        raise AudioError(report.problem)
    inputs = report.inputs
    if device is None or device == "":
        index = report.default_input if report.default_input is not None else inputs[0].index
        matches = [d for d in inputs if d.index == index] or inputs[:1]
        return matches[0]
    if isinstance(device, int) or str(device).strip().isdigit():
        index = int(device)
        for d in inputs:
            if d.index == index:
                return d
        raise AudioError(
            f"no microphone: no input device with index {index} (see 'perslm-voice devices')"
        )
    wanted = str(device).lower()
    matches = [d for d in inputs if wanted in d.name.lower()]
    if not matches:
        raise AudioError(
            f"no microphone: no input device named {device!r} (see 'perslm-voice devices')"
        )
    return matches[0]
