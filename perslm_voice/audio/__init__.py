"""Audio in: sources (microphone, file), resampling, voice activity detection and endpointing.

sounddevice (PortAudio) is imported only when a microphone or the device list is asked for.
"""

from .capture import AudioSource, FileSource, FrameQueue
from .devices import DeviceInfo, DeviceReport, list_devices
from .endpointer import Endpointer, SpeechPaused, SpeechResumed
from .microphone import MicrophoneSource, open_microphone
from .vad import VAD, SileroVAD, WebRTCVAD, create_vad

__all__ = [
    "VAD",
    "AudioSource",
    "DeviceInfo",
    "DeviceReport",
    "Endpointer",
    "FileSource",
    "FrameQueue",
    "MicrophoneSource",
    "SileroVAD",
    "SpeechPaused",
    "SpeechResumed",
    "WebRTCVAD",
    "create_vad",
    "list_devices",
    "open_microphone",
]
