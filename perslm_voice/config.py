"""The configuration schema, its layering and its validation.

Layers, lowest first: the schema's defaults (the same as config/default.yaml), the user's file
(<user config dir>/config.yaml), ``--config FILE``, environment variables
``PERSLM_VOICE_<SECTION>__<KEY>`` and command-line flags. Every problem is reported at once as
``path.to.key: message``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import paths
from .errors import ConfigError
from .redact import MASK, not_an_env_name, redact
from .schema import (  # noqa: F401  (the schema is part of this module's API)
    USER_ID,
    AudioConfig,
    AudioSettings,
    CalendarToolConfig,
    Config,
    EmailToolConfig,
    HomeAssistantToolConfig,
    InteractionConfig,
    LLMConfig,
    LoggingConfig,
    MCPServerConfig,
    MemoryConfig,
    Section,
    ServeConfig,
    SpeechConfig,
    ToolsConfig,
    TTSConfig,
    VADConfig,
    VoiceSettings,
    WeatherToolConfig,
)

ENV_PREFIX = "PERSLM_VOICE_"
DEFAULT = "default"
# The whole schema has about 90 values: a file that expands to far more is a mistake or an attack
# (a "billion laughs" of nested anchors loads as shared objects in microseconds, then takes hours
# and gigabytes to walk once merged and validated).
MAX_YAML_VALUES = 10_000
# 200,000 unknown keys once printed 12 MB of errors: the first problems say what is wrong.
MAX_PROBLEMS = 20
MAX_SHOWN_CHARS = 120


SECRET_KEY = re.compile(r"(api_?key|_token$|^tokens?$|password|secret)(?!_env)", re.I)
SECRET_MAPS = ("serve.tokens.",)  # mappings whose keys are secrets (token -> user)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, reporting a bad file with its path and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
        if isinstance(data, dict):
            _check_size(data, path)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and opened:
            problem += f" ({context} at line {opened.line + 1})"
        raise ConfigError(f"{path}: invalid YAML at {where}{problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _check_size(data: Any, path: Path) -> None:
    """Refuse YAML whose aliases repeat more than MAX_YAML_VALUES values, or that contains itself.

    Each shared (aliased) node's size is computed once and added each time it is used again, so a
    bomb is measured in time linear in its text, not in what it would expand to. A file that is
    merely long (each value written out) is not refused here: its size is its own.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    repeated = 0

    def size(node: Any) -> int:
        nonlocal repeated
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            repeated += sizes[key]
            if repeated > MAX_YAML_VALUES:
                raise ConfigError(
                    f"{path}: expands to more than {MAX_YAML_VALUES:,} values (nested YAML"
                    " aliases?); a configuration has about 100: remove the anchors (&) and aliases (*)"
                )
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{path}: a YAML alias refers to a node that contains it")
        open_nodes.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(data)


def env_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """PERSLM_VOICE_SECTION__KEY=value as a nested mapping; values are read as YAML scalars."""
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)):
            value = raw
        node = layer
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[keys[-1]] = value
    return layer


def _suggest(loc: tuple[Any, ...], key: str) -> str:
    if len(key) > 60:  # no key is that long; comparing it with each would only take time
        return ""
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _shown(value: Any) -> str:
    """repr(value), shortened: a problem line quotes what it got, not 10 MB of it."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[: MAX_SHOWN_CHARS - 20]}... ({len(text):,} characters)"


def _problems(exc: ValidationError, sources: Mapping[str, str]) -> list[str]:
    problems = []
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS]:
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        path = ".".join(str(p) if len(str(p)) <= 60 else _shown(str(p)) for p in loc)
        source = sources.get(dotted) or next(
            (s for p, s in sources.items() if p.startswith(dotted + ".")), None
        )
        where = f" [from {source}]" if source and source != DEFAULT else ""
        if err["type"] == "extra_forbidden":
            msg = f"unknown key{_suggest(loc[:-1], str(loc[-1]))}"
        elif err["type"] == "literal_error":
            choices = err.get("ctx", {}).get("expected", "")
            msg = f"invalid value {_shown(err['input'])}; valid choices: {choices.replace(' or ', ', ')}"
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], dict):
                msg += f" (got {_shown(err['input'])})"
        problems.append(f"{path}: {msg}{where}")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS:,} more problems")
    return problems


class Loaded:
    """A validated configuration and where each of its values came from."""

    def __init__(self, config: Config, sources: dict[str, str]):
        self.config = config
        self.sources = sources

    def source_of(self, path: str) -> str:
        return self.sources.get(path, DEFAULT)


def load_config(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    user_file: Path | None = None,
) -> Loaded:
    """Build the effective configuration from every layer; raise ConfigError listing all problems.

    ``overrides`` maps dotted keys (``"llm.model"``) to values, as flags give them.
    """
    merged: dict[str, Any] = Config().model_dump()
    sources: dict[str, str] = {}
    layers: list[tuple[str, dict[str, Any]]] = []
    user_file = paths.user_config_file() if user_file is None else user_file
    if user_file.exists() or user_file.is_symlink():
        # A folder or a dangling link there is reported, not skipped: the user meant a file.
        layers.append((str(user_file), read_yaml(user_file)))
    if config_file is not None:
        layers.append((str(config_file), read_yaml(Path(config_file))))
    env = env_layer(environ)
    if env:
        layers.append(("environment", env))
    if overrides:
        flags: dict[str, Any] = {}
        for dotted, value in overrides.items():
            node = flags
            *parents, last = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        layers.append(("command line", flags))
    for name, layer in layers:
        if name == "environment":
            label = {
                p: f"environment {ENV_PREFIX}{p.upper().replace('.', '__')}"
                for p in _flatten(layer)
            }
        else:
            label = {p: name for p in _flatten(layer)}
        sources.update(label)
        _merge(merged, layer)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, sources)) from None
    return Loaded(config, sources)


def is_secret(path: str) -> bool:
    return bool(SECRET_KEY.search(path.rsplit(".", 1)[-1]))


def shown_value(path: str, value: Any) -> Any:
    """A setting's value as it may be shown: a secret-named key's value masked whole; a key
    pasted into ``*api_key_env`` masked; in any other text, URL user-info and key-shaped
    tokens masked."""
    if value is None or not isinstance(value, str):
        return value
    if is_secret(path):
        return "********"
    if path.endswith("api_key_env") and not_an_env_name(value):
        return f"{MASK} (a key? name the variable that holds it)"
    return redact(value)


def effective_items(loaded: Loaded) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) for every setting; secrets are masked (see shown_value)."""
    rows = []
    for path, value in _flatten(loaded.config.model_dump()).items():
        source = loaded.source_of(path)
        secret_map = next((m for m in SECRET_MAPS if path.startswith(m)), None)
        if secret_map is not None:
            path = secret_map + "********"  # the key is the token: show whose it is, not it
        elif value not in (None, {}) and is_secret(path):
            value = "********"
        rows.append((path, shown_value(path, value), source))
    return rows
