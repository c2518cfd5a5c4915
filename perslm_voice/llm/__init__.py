"""Language-model backends: a small abstract class and a lazy registry."""

from .base import LLM, Message, stream_async
from .registry import create_llm, registry

__all__ = ["LLM", "Message", "create_llm", "registry", "stream_async"]
