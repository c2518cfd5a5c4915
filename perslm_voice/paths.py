"""Where user files live: the platform's directories, or everything under $PERSLM_VOICE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "perslm-voice"


def _home() -> Path | None:
    value = os.environ.get("PERSLM_VOICE_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else platformdirs.user_config_path(APP_NAME)


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else platformdirs.user_data_path(APP_NAME)


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else platformdirs.user_cache_path(APP_NAME)


def log_dir() -> Path:
    home = _home()
    return home / "logs" if home else platformdirs.user_log_path(APP_NAME)


def user_config_file() -> Path:
    return config_dir() / "config.yaml"
