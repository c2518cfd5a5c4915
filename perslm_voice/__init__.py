"""perslm-voice: a terminal voice assistant that runs on your own computer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .realtime_loop import Session
    from .ui.terminal import RealtimeLoop

__all__ = ["RealtimeLoop", "Session", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `perslm-voice --version` must not load the audio stack.
    if name == "RealtimeLoop":
        from .ui.terminal import RealtimeLoop

        return RealtimeLoop
    if name == "Session":
        from .realtime_loop import Session

        return Session
    raise AttributeError(name)
