"""Secrets masked wherever text may be shown: `config show`, errors, `doctor`, logs.

A secret reaches such text three ways: the value of a secret-named environment variable
(``OPENAI_API_KEY``) quoted back, the user-info of a URL (``https://me:sk-...@host/v1``), or a key
pasted where a name belongs (``llm.api_key_env: sk-...``, ``llm.model: gsk_...``). The first is
matched by value, the others by shape.
"""

from __future__ import annotations

import os
import re

MASK = "***"
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
# scheme://user:password@host, scheme://token@host: everything between :// and the last @ before
# the host goes.
URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/?#\s@]+@", re.I)
# The shapes of the API keys the presets use (OpenAI, Groq, Cerebras, ElevenLabs' sk_, xAI) and
# bearer tokens: long enough that ordinary words never match.
KEY_SHAPED = re.compile(
    r"\b(?:sk|gsk|csk|xai|sk_|pk)[-_][A-Za-z0-9_-]{16,}"
    r"|\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*",
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """The values of secret-named environment variables (4 characters or more), longest first.

    A name ending in ``_ENV`` (``PERSLM_VOICE_LLM__API_KEY_ENV``) holds the name of the variable
    with the key, not a key: masking it would hide which variable to fix."""
    environ = dict(os.environ) if environ is None else environ
    found = {
        v
        for k, v in environ.items()
        if SECRET_ENV.search(k) and not k.upper().endswith("_ENV") and len(v) >= 4
    }
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every secret replaced by ``***``: known secret values, URL user-info and
    key-shaped tokens."""
    for secret in env_secrets() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    text = URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return KEY_SHAPED.sub(MASK, text)


def not_an_env_name(value: str) -> bool:
    """True when a ``*_api_key_env`` setting holds something that cannot be a variable's name
    (most likely the key itself, pasted in the wrong place)."""
    return not ENV_NAME.match(value)
