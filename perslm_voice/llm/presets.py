"""Named OpenAI-compatible servers, so that users need not know URLs: ``--llm ollama``.

A preset only fills what the user left unset: a URL from the environment
(``PERSLM_VOICE_LLM__BASE_URL``), a file or a flag always wins over the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import LLMConfig
from ..errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Where a kind of server listens, which variable holds its key, how to start it."""

    name: str
    base_url: str
    api_key_env: str | None = None  # None: a local server that needs no key
    model: str | None = None  # None: ask the server (GET /models) for the model it serves
    start_hint: str = ""  # how to start the server, for the "cannot reach" message


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("ollama", "http://localhost:11434/v1", model="llama3.2", start_hint="ollama serve"),
        Preset(
            "llamacpp",
            "http://localhost:8080/v1",
            start_hint="python -m llama_cpp.server --model FILE.gguf --port 8080",
        ),
        Preset("vllm", "http://localhost:8000/v1", start_hint="vllm serve MODEL"),
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini"),
        Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "llama-3.1-8b-instant"),
        Preset("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "llama3.1-8b"),
    )
}

# `--llm` values that name a backend rather than a preset.
BACKEND_NAMES = {"embedded": "llama_cpp", "llama_cpp": "llama_cpp", "openai": "openai"}


def llm_flag_choices() -> list[str]:
    """Every value ``--llm`` accepts, for help texts and error messages."""
    return sorted(set(PRESETS) | set(BACKEND_NAMES))


def apply_llm_flag(value: str) -> dict[str, Any]:
    """Turn ``--llm VALUE`` into dotted config overrides; ConfigError lists the valid names.

    A preset name selects the openai backend with that preset; ``embedded``/``llama_cpp`` the
    in-process model. ``openai`` is the OpenAI preset too: api.openai.com unless ``llm.base_url``
    says otherwise, and always ``$OPENAI_API_KEY`` (a proxy or gateway in front of OpenAI wants
    the key as much as OpenAI does).
    """
    name = value.strip().lower().replace("-", "_")
    if name in ("llama_cpp", "embedded"):
        return {"llm.backend": "llama_cpp"}
    key = name.replace("_", "")
    if key in PRESETS:
        return {"llm.backend": "openai", "llm.preset": key}
    raise ConfigError(
        f"--llm: unknown server or backend {value!r}; valid choices: {', '.join(llm_flag_choices())}"
    )


def resolve(config: LLMConfig) -> LLMConfig:
    """The configuration with the preset's URL, key variable and model where the user set none."""
    if config.preset is None:
        if config.backend != "openai" or config.base_url is not None:
            return config
        # The openai backend with no URL at all means the OpenAI API itself.
        preset = PRESETS["openai"]
    else:
        preset = PRESETS[config.preset]
    updates: dict[str, Any] = {}
    if config.backend != "openai":
        updates["backend"] = "openai"
    if config.base_url is None:
        updates["base_url"] = preset.base_url
    if config.api_key_env is None and preset.api_key_env:
        updates["api_key_env"] = preset.api_key_env
    if config.model is None and preset.model:
        updates["model"] = preset.model
    return config.model_copy(update=updates) if updates else config


def start_hint(config: LLMConfig) -> str:
    """How to start the configured server, or "" when that is not ours to say (a cloud API)."""
    if config.preset is not None:
        return PRESETS[config.preset].start_hint
    return ""


LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"}


def is_local(url: str) -> bool:
    """Whether the URL points at this machine (such servers need no key)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost")
