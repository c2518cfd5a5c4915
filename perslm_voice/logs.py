"""Logging: stage timings at debug level, to stderr or a file, with secrets masked."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_CONFIG_SECRETS: set[str] = set()


def add_secrets(*values: str | None) -> None:
    """Mask these values too (secrets from the configuration: the server's tokens), in every
    handler set up before or after."""
    _CONFIG_SECRETS.update(v for v in values if v and len(v) >= 4)
    for handler in logging.getLogger("perslm_voice").handlers:
        for filt in handler.filters:
            if isinstance(filt, RedactSecrets):
                filt.refresh()


class RedactSecrets(logging.Filter):
    """Replaces the value of every secret-looking environment variable (and of the secrets
    given to add_secrets) with '***'."""

    def __init__(self) -> None:
        super().__init__()
        self.refresh()

    def refresh(self) -> None:
        self.secrets = sorted(
            {v for k, v in os.environ.items() if SECRET_ENV.search(k) and len(v) >= 4}
            | _CONFIG_SECRETS,
            key=len,
            reverse=True,
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup(level: str = "warning", file: str | Path | None = None) -> None:
    """Configure the package's logger once per process (a later call replaces the handlers)."""
    logger = logging.getLogger("perslm_voice")
    logger.setLevel(LEVELS.get(level, logging.WARNING))
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler: logging.Handler
    if file:
        path = Path(file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        # A private duplicate of stderr: llama.cpp silences descriptor 2 while loading a model.
        from .ui.console import private_stream

        handler = logging.StreamHandler(private_stream(2))
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"
        )
    )
    handler.addFilter(RedactSecrets())
    logger.addHandler(handler)


def debug_enabled() -> bool:
    return logging.getLogger("perslm_voice").isEnabledFor(logging.DEBUG)
