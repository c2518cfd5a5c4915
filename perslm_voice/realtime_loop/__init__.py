"""The session engine: one conversation, any front-end (see session.py).

``RealtimeLoop``, the terminal session of the PersLM real-time guide, is a front-end on it
(perslm_voice/ui/terminal.py, ``from perslm_voice import RealtimeLoop``);
``python -m perslm_voice.realtime_loop`` runs that terminal session.
"""

from __future__ import annotations

from .history import INTERRUPTED_DASH, INTERRUPTED_NOTE
from .models import Models
from .observers import ENTRY_POINT_GROUP, EventBus
from .session import Session

__all__ = [
    "ENTRY_POINT_GROUP",
    "INTERRUPTED_DASH",
    "INTERRUPTED_NOTE",
    "EventBus",
    "Models",
    "Session",
]
