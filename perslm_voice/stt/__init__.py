"""Speech-to-text: a small abstract class, one module per backend, a lazy registry."""

from .base import STT
from .registry import create_stt, registry

__all__ = ["STT", "create_stt", "registry"]
