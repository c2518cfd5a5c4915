"""The configuration's schema: every section, key, default and bound (pydantic models with
``extra="forbid"``). config.py layers and validates files, the environment and flags into it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


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
    # 0.1: 50 ms into the silence. On 2 cores the reply is ready later than the 500 ms window
    # closes (speech-to-text, the first clause and its voice come one after another), so the
    # draft starting sooner is heard sooner: 0.3 -> 0.1 moved end of speech -> first audio p50 /
    # p95 from 644 / 1023 to 583 / 820, 629 / 851 to 619 / 879 and 659 / 956 to 649 / 781 ms in
    # three runs of scripts/bench_latency.py (the median 10-60 ms sooner). A pause that was not
    # the end costs a transcription and a draft, both dropped when the user speaks again.
    speculative_stt: float = Field(
        0.1,
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
    smart_turn_threshold: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="smart_turn: the model's P(complete) that ends a turn at once (the model's"
        " own cut-off is 0.5; 0.7 halves the timer's false cut-offs in scripts/bench_turns.py)",
    )
    turn_max_wait_s: float = Field(
        1.0,
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
        description="webrtc: take the assistant's own voice out of the microphone's sound (WebRTC"
        " AEC3; pip install 'perslm-voice[aec]') before the VAD hears it; the server leaves it to"
        " the browser",
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
