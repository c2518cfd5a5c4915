"""Checks of what a profile may hold, made when it is set rather than inside a later reply."""

from __future__ import annotations

import re

from .config import TTSConfig
from .errors import BackendUnavailable, ConfigError, UsageError
from .persona import LANGUAGES

# A language code, optionally with a region: en, en-US, pt_BR.
LANGUAGE_CODE = re.compile(r"^(?P<language>[A-Za-z]{2})(?:[-_][A-Za-z]{2})?$")


def check_language(code: str) -> str:
    """``code`` if the assistant knows the language (the prompt names it); UsageError listing
    the codes it knows otherwise."""
    match = LANGUAGE_CODE.match(code)
    if not match or match.group("language").lower() not in LANGUAGES:
        raise UsageError(
            f"--language {code!r}: not a language the assistant knows; valid choices:"
            f" {', '.join(sorted(LANGUAGES))} (a region may follow: en-US)"
        )
    return code


def check_voice(config: TTSConfig, voice_id: str) -> str:
    """``voice_id`` if the configured voice backend has it; UsageError listing its voices
    otherwise. A backend that cannot be asked offline (a server) is not checked here: the
    session says so if the voice is wrong."""
    from .tts import create_tts

    tts = create_tts(config)
    try:
        tts.resolve_voice(config.voice.model_copy(update={"voice_id": voice_id}))
    except ConfigError:
        voices = tts.list_voices()
        shown = ", ".join(voices[:40]) + (" ..." if len(voices) > 40 else "")
        raise UsageError(
            f"--voice {voice_id!r}: {tts.name} has no such voice; valid choices: {shown}"
        ) from None
    except BackendUnavailable:
        pass
    finally:
        tts.close()
    return voice_id
