"""Lazy registries of backends: a name maps to "module:Class", imported only when chosen."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from .errors import BackendUnavailable, ConfigError


@dataclass(frozen=True)
class Entry:
    target: str  # "package.module:Class"
    requires: tuple[str, ...] = ()  # importable modules the backend needs
    install: str = ""  # the command that installs them


class Registry:
    """Backends of one kind (stt, tts, llm, vad), by name."""

    def __init__(self, kind: str, config_key: str):
        self.kind = kind
        self.config_key = config_key
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, target: str, *, requires: tuple[str, ...] = (), install: str = ""
    ) -> None:
        """Add a backend; third-party packages call this the same way the built-ins do."""
        self._entries[name] = Entry(target, requires, install)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def missing(self, name: str) -> list[str]:
        """The modules a backend needs that are not installed (checked without importing them)."""
        entry = self._entry(name)
        return [m for m in entry.requires if not _installed(m)]

    def available(self, name: str) -> bool:
        return not self.missing(name)

    def _entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"{self.config_key}: unknown {self.kind} backend {name!r};"
                f" valid choices: {', '.join(self.names())}"
            ) from None

    def load(self, name: str) -> Any:
        """Import and return the backend's class, or say exactly what to install."""
        entry = self._entry(name)
        missing = self.missing(name)
        if missing:
            fix = f": {entry.install}" if entry.install else ""
            raise BackendUnavailable(
                f"{self.kind} backend {name!r} needs {', '.join(missing)}, which is not installed{fix}"
            )
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            fix = f"; {entry.install}" if entry.install else ""
            raise BackendUnavailable(
                f"{self.kind} backend {name!r} cannot start: {exc}{fix}"
            ) from None
        except OSError as exc:  # a missing system library, e.g. libportaudio2
            raise BackendUnavailable(f"{self.kind} backend {name!r} cannot start: {exc}") from None
        return getattr(module, attr)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
