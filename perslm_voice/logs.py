"""Logging: stage timings at debug level, to stderr or a file, with secrets masked."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import ConfigError
from .paths import make_private_dir
from .redact import env_secrets, redact
from .safetext import visible

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
    """Replaces secrets with '***': the value of every secret-looking environment variable, the
    secrets given to add_secrets (the server's tokens), the user-info of URLs and key-shaped
    tokens (see redact.py). Control characters in a message (a prompt quoting a reply that holds
    escape sequences) are written as visible escapes: a log is read on a terminal too."""

    def __init__(self) -> None:
        super().__init__()
        self.refresh()

    def refresh(self) -> None:
        self.secrets = sorted(set(env_secrets()) | _CONFIG_SECRETS, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = visible(redact(message, self.secrets))
        if masked != message:
            record.msg, record.args = masked, None
        return True


def open_log_file(file: str | Path) -> logging.FileHandler:
    """A handler appending to ``file``, created 0600 in a 0700 folder when new (a debug log holds
    whole prompts). ConfigError (exit 2) naming the fix when it cannot be written."""
    path = Path(file).expanduser()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        make_private_dir(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        return logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"logging.file / --log-file: cannot write {path} ({reason.lower()}):"
            " choose a file in a folder you can write"
        ) from None


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
        handler = open_log_file(file)
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
