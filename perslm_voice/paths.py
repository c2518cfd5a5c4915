"""Where user files live: the platform's directories, or everything under $PERSLM_VOICE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from .errors import ConfigError

APP_NAME = "perslm-voice"
# Memories, prompts in a debug log and cached speech are private: folders we create are the
# owner's only (as ~/.ssh), whatever the umask.
PRIVATE_DIR_MODE = 0o700


def home_problem() -> str | None:
    """Why $PERSLM_VOICE_HOME cannot hold the user files (it is a file, say), or None."""
    value = os.environ.get("PERSLM_VOICE_HOME")
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return (
            f"PERSLM_VOICE_HOME={value} is a file, not a folder:"
            " point it at a folder (it is created if missing) or unset it"
        )
    return None


def _home() -> Path | None:
    problem = home_problem()
    if problem:
        raise ConfigError(problem)
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


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700 (an existing folder is left as
    the user set it). Returns ``path``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        folder.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    return path
