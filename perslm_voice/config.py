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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import paths
from .errors import ConfigError

ENV_PREFIX = "PERSLM_VOICE_"
DEFAULT = "default"


class Section(BaseModel):
    """A block of settings: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AudioSettings(Section):
    sample_rate: int = Field(
        16000, ge=8000, le=48000, description="Hz of the audio the models hear"
    )
    silence_threshold: float = Field(
        0.03, ge=0.0, le=1.0, description="RMS (0-1) below which a frame is silent"
    )
    silence_duration: float = Field(
        0.5, ge=0.1, le=5.0, description="seconds of silence that end an utterance"
    )
    max_duration: float = Field(
        30.0, ge=1.0, le=300.0, description="seconds after which a long utterance is cut"
    )
    pre_roll: float = Field(0.3, ge=0.0, le=2.0, description="seconds kept from before speech")
    min_speech_duration: float = Field(
        0.25, ge=0.0, le=5.0, description="seconds of speech below which an utterance is dropped"
    )
    speculative_stt: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="fraction of silence_duration after which speech-to-text may start early; 0: never",
    )


class SpeechConfig(Section):
    backend: Literal["faster_whisper", "whisper_local", "openai_whisper", "openai"] = (
        "faster_whisper"
    )
    model_name: str = Field("tiny.en", min_length=1, description="tiny.en, base, or a path")
    language: str | None = Field(None, description="a language code, or null to auto-detect")
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1, le=10)
    context_s: float = Field(
        10.0,
        ge=1.0,
        le=30.0,
        description="faster-whisper: seconds of audio context Whisper reads (at least the utterance"
        " + 2 s) instead of its full 30 s window, about 3x faster; 30: always the full window",
    )
    cpu_threads: int = Field(0, ge=0, le=256, description="0: as many as the machine has")
    base_url: str | None = Field(None, description="openai backend: the server's /v1 URL")
    api_key_env: str = "OPENAI_API_KEY"
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    log_prob_threshold: float = Field(-1.0, ge=-10.0, le=0.0)
    compression_ratio_threshold: float = Field(2.4, ge=1.0, le=10.0)
    language_check_model: str | None = Field(
        "base",
        description="multilingual model that checks the language of doubtful utterances heard by an"
        " English-only model (used when installed); null: no check",
    )
    language_check_below: float = Field(
        -0.5,
        ge=-10.0,
        le=0.0,
        description="average log-probability below which an English-only transcript is doubtful",
    )
    audio: AudioSettings = AudioSettings()


class VADConfig(Section):
    backend: Literal["silero", "webrtcvad"] = "silero"
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="silero speech probability")
    aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode")
    speaking_threshold: float = Field(
        0.8, ge=0.0, le=1.0, description="threshold while the assistant speaks (barge-in)"
    )
    speaking_min_speech_duration: float = Field(
        0.4, ge=0.0, le=5.0, description="seconds of speech that count as barge-in"
    )
    turn_detection: Literal["silence", "words", "smart_turn"] = Field(
        "silence",
        description="what ends a turn: silence (speech.audio.silence_duration of it), words (after"
        " turn_pause_s, unless the words so far stop on 'and', 'the', a comma...), smart_turn (the"
        " same, and the Smart Turn model must hear a finished turn)",
    )
    turn_pause_s: float = Field(
        0.2, ge=0.05, le=2.0, description="words/smart_turn: seconds of silence before deciding"
    )
    turn_max_wait_s: float = Field(
        1.5,
        ge=0.1,
        le=10.0,
        description="words/smart_turn: seconds of silence that end a turn judged unfinished",
    )


class AudioConfig(Section):
    input_device: str | None = Field(None, description="index or name; null: the default")
    output_device: str | None = Field(None, description="name; null: the default")
    input_speed: Literal["realtime", "fast"] = "realtime"
    queue_frames: int = Field(256, ge=8, le=100000, description="frames buffered before dropping")
    playback_buffer: int = Field(512, ge=64, le=8192, description="mixer buffer in samples")
    echo_cancellation: Literal["none", "webrtc"] = Field(
        "none",
        description="webrtc: remove the assistant's own voice from the microphone (AEC3, needs"
        " livekit; it also mutes a user talking over the reply)",
    )
    echo_check: bool = Field(
        True,
        description="speech heard while or just after the assistant talks that is mostly its own"
        " words, or whose sound is what it played, is its echo: not a turn, not a barge-in",
    )


class VoiceSettings(Section):
    voice_id: str = "default"
    language: str = "en-US"
    rate: float = Field(1.0, ge=0.25, le=4.0)


class TTSConfig(Section):
    backend: Literal["auto", "piper", "pyttsx3", "system", "edge_tts", "openai", "elevenlabs"] = (
        "auto"
    )
    voice: VoiceSettings = VoiceSettings()
    enable_cache: bool = True
    cache_dir: str | None = Field(None, description="null: <user cache dir>/tts")
    cache_max_mb: float = Field(100.0, ge=0.0, le=100000.0)
    base_url: str | None = Field(None, description="openai/elevenlabs backend URL")
    api_key_env: str | None = Field(None, description="null: OPENAI_API_KEY / ELEVENLABS_API_KEY")
    model: str | None = None


class InteractionConfig(Section):
    input_mode: Literal["text", "voice", "hybrid"] = "hybrid"
    output_mode: Literal["text", "voice", "hybrid"] = "hybrid"
    streaming: bool = True
    speculative_reply: bool = Field(
        True,
        description="start the reply inside the end-of-speech window on the early transcript; it"
        " is heard only once the user is done, and thrown away if they go on (LLM work that a paid"
        " API would bill)",
    )
    interruption_enabled: bool = True
    timeout: float | None = Field(
        None, gt=0, description="seconds without a turn that end the session"
    )
    show_timings: bool = False


class LLMConfig(Section):
    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    preset: Literal["ollama", "llamacpp", "vllm", "openai", "groq", "cerebras"] | None = None
    model_path: str | None = Field(None, description="llama_cpp GGUF; null: SmolLM2-135M")
    n_ctx: int = Field(2048, ge=256, le=131072)
    n_threads: int = Field(
        0, ge=0, le=256, description="0: all cores but one (speech runs beside it), at least 1"
    )
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    max_tokens: int = Field(160, ge=1, le=32768, description="the longest reply, in tokens")
    timeout: float = Field(30.0, gt=0, le=3600.0)
    fallback: Literal["none", "embedded"] = "none"
    system_prompt: str = (
        "You are a friendly voice assistant running on the user's own computer. "
        "Answer in one to three short spoken sentences."
    )


class MemoryConfig(Section):
    enabled: bool = True
    path: str | None = Field(None, description="null: <user data dir>/perslm-voice.db")
    recall_limit: int = Field(5, ge=0, le=100)
    recent_turns: int = Field(8, ge=0, le=200)
    prompt_token_budget: int = Field(1200, ge=64, le=1000000)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "warning"
    file: str | None = None


class Config(Section):
    """The whole configuration."""

    speech: SpeechConfig = SpeechConfig()
    vad: VADConfig = VADConfig()
    audio: AudioConfig = AudioConfig()
    tts: TTSConfig = TTSConfig()
    interaction: InteractionConfig = InteractionConfig()
    llm: LLMConfig = LLMConfig()
    memory: MemoryConfig = MemoryConfig()
    logging: LoggingConfig = LoggingConfig()


SECRET_KEY = re.compile(r"(api_?key|_token$|^token$|password|secret)(?!_env)", re.I)


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
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _problems(exc: ValidationError, sources: Mapping[str, str]) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc)
        source = sources.get(path) or next(
            (s for p, s in sources.items() if p.startswith(path + ".")), None
        )
        where = f" [from {source}]" if source and source != DEFAULT else ""
        if err["type"] == "extra_forbidden":
            msg = f"unknown key{_suggest(loc[:-1], str(loc[-1]))}"
        elif err["type"] == "literal_error":
            choices = err.get("ctx", {}).get("expected", "")
            msg = f"invalid value {err['input']!r}; valid choices: {choices.replace(' or ', ', ')}"
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], dict):
                msg += f" (got {err['input']!r})"
        problems.append(f"{path}: {msg}{where}")
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
    if user_file.is_file():
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


def effective_items(loaded: Loaded) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) for every setting; secret-looking values are masked."""
    rows = []
    for path, value in _flatten(loaded.config.model_dump()).items():
        if value is not None and is_secret(path):
            value = "********"
        rows.append((path, value, loaded.source_of(path)))
    return rows
