"""perslm-voice: a terminal voice assistant that runs on your own computer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .realtime_loop import RealtimeLoop

__all__ = ["RealtimeLoop", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `perslm-voice --version` must not load the audio stack.
    if name == "RealtimeLoop":
        from .realtime_loop import RealtimeLoop

        return RealtimeLoop
    raise AttributeError(name)
