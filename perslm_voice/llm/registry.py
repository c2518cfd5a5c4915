"""The LLM backends by name."""

from __future__ import annotations

from ..config import LLMConfig
from ..registry import Registry
from .base import LLM

registry = Registry("llm", "llm.backend")
registry.register(
    "llama_cpp",
    "perslm_voice.llm.llama_cpp:LlamaCppLLM",
    requires=("llama_cpp",),
    install="pip install llama-cpp-python",
)
registry.register(
    "openai",
    "perslm_voice.llm.openai:OpenAILLM",
    requires=("openai",),
    install="pip install openai",
)


def create_llm(config: LLMConfig) -> LLM:
    cls = registry.load(config.backend)
    llm: LLM = cls(config)
    return llm
