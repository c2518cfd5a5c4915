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
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from . import paths
from .errors import ConfigError
from .redact import MASK, not_an_env_name, redact

ENV_PREFIX = "PERSLM_VOICE_"
DEFAULT = "default"
# The whole schema has about 90 values: a file that expands to far more is a mistake or an attack
# (a "billion laughs" of nested anchors loads as shared objects in microseconds, then takes hours
# and gigabytes to walk once merged and validated).
MAX_YAML_VALUES = 10_000
# 200,000 unknown keys once printed 12 MB of errors: the first problems say what is wrong.
MAX_PROBLEMS = 20
MAX_SHOWN_CHARS = 120


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
    partial_interval_s: float | None = Field(
        None,
        ge=0.0,
        le=10.0,
        description="seconds of speech between partial transcripts while the user speaks (one at a"
        " time, only while no other transcription runs); 0: none; null: 0.5 when serving, none in"
        " the terminal",
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


class WeatherToolConfig(Section):
    base_url: str = Field(
        "https://api.open-meteo.com/v1", description="Open-Meteo forecast API (no key needed)"
    )
    geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1",
        description="Open-Meteo geocoding API, for a place named in the question",
    )
    location: str | None = Field(None, description="the place to report on; null: none set")
    latitude: float | None = Field(None, ge=-90.0, le=90.0, description="overrides location")
    longitude: float | None = Field(None, ge=-180.0, le=180.0)
    units: Literal["metric", "imperial"] = "metric"


class CalendarToolConfig(Section):
    ics_files: list[str] = Field([], description="local .ics files to read events from")
    caldav_url: str | None = Field(None, description="a CalDAV calendar collection's URL")
    caldav_username: str | None = None
    caldav_password_env: str = Field(
        "PERSLM_VOICE_CALDAV_PASSWORD", description="the variable that holds the CalDAV password"
    )


class HomeAssistantToolConfig(Section):
    url: str | None = Field(None, description="e.g. http://homeassistant.local:8123; null: off")
    token_env: str = Field(
        "HOME_ASSISTANT_TOKEN", description="the variable that holds a long-lived access token"
    )


class EmailToolConfig(Section):
    smtp_host: str | None = Field(None, description="null: email is off")
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="none only for a server on this machine"
    )
    username: str | None = None
    password_env: str = Field(
        "PERSLM_VOICE_SMTP_PASSWORD", description="the variable that holds the SMTP password"
    )
    from_address: str | None = None
    contacts: dict[str, str] = Field(
        {}, description="names the user says -> email addresses, e.g. {Ann: ann@example.org}"
    )


class MCPServerConfig(Section):
    command: str | None = Field(None, description="stdio: the program to start")
    args: list[str] = []
    pass_env: list[str] = Field(
        [], description="stdio: names of this process's variables the program also gets (tokens)"
    )
    url: str | None = Field(None, description="streamable HTTP: the server's URL")
    headers_env: dict[str, str] = Field(
        {}, description="HTTP header -> the variable that holds its value (e.g. a bearer token)"
    )
    trust_read_only: bool = Field(
        False,
        description="believe the server's readOnlyHint (its tools that claim to be read-only then"
        " run without asking); false: every tool of this server asks first",
    )
    timeout_s: float = Field(20.0, gt=0, le=600.0)


class ToolsConfig(Section):
    enabled: bool = Field(True, description="false: the assistant only talks")
    disabled: list[str] = Field([], description="tool names switched off for everyone")
    timeout_s: float = Field(10.0, gt=0, le=600.0, description="the longest one tool call may take")
    timezone: str | None = Field(
        None, description="IANA name, e.g. Europe/Paris; null: the system's"
    )
    router: Literal["auto", "on", "off"] = Field(
        "auto",
        description="match common phrasings to built-in tools without the model; auto: on for the"
        " embedded model, which cannot pick tools itself",
    )
    acknowledgement: str = Field(
        "One moment.", description="said while a tool runs, so the silence stays short"
    )
    max_rounds: int = Field(3, ge=1, le=10, description="tool calls in a row within one reply")
    weather: WeatherToolConfig = WeatherToolConfig()
    calendar: CalendarToolConfig = CalendarToolConfig()
    home_assistant: HomeAssistantToolConfig = HomeAssistantToolConfig()
    email: EmailToolConfig = EmailToolConfig()
    mcp_servers: dict[str, MCPServerConfig] = Field(
        {}, description="name -> an MCP server (command + args for stdio, or url)"
    )


USER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ServeConfig(Section):
    host: str = Field("127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(8765, ge=0, le=65535, description="0: any free port")
    token: str | None = Field(
        None,
        description="the token every connection must give; null: a random one, printed with the URL",
    )
    tokens: dict[str, Annotated[str, StringConstraints(pattern=USER_ID)]] = Field(
        default_factory=dict,
        description="token -> user: a connection with one of these tokens is that user, and only"
        " that user",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins allowed besides the server's own (e.g. https://example.org);"
        " '*': any",
    )
    max_sessions: int = Field(8, ge=1, le=10000, description="connections at once")
    idle_timeout_s: float = Field(
        600.0, gt=0, le=86400.0, description="seconds without a message that close a connection"
    )
    max_message_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024, description="the largest message a client may send"
    )
    max_messages_per_s: float = Field(
        200.0,
        gt=0,
        le=100000.0,
        description="messages a client may send per second (audio at 20 ms frames is 50)",
    )


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
    tools: ToolsConfig = ToolsConfig()
    serve: ServeConfig = ServeConfig()
    logging: LoggingConfig = LoggingConfig()


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
