"""The TTS backends: real offline engines, cloud APIs against fake servers on loopback, and
the real failures of an online backend on a machine without the internet."""

from __future__ import annotations

import io
import json
import socket
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from perslm_voice.config import TTSConfig, VoiceSettings
from perslm_voice.errors import BackendUnavailable, ConfigError, ModelError
from perslm_voice.tts import CachedTTS, TTSCache, create_tts, resolve_backend, split_sentences
from perslm_voice.tts.registry import registry

TEXT = "Hello there. The quick brown fox jumps over the lazy dog."
OFFLINE = [
    pytest.param(
        "piper",
        marks=pytest.mark.skipif(
            not registry.available("piper"), reason="piper extra not installed"
        ),
    ),
    "pyttsx3",
    "system",
]


def test_split_sentences():
    assert split_sentences("  One. Two!  Three? \"Four.\" Five") == [
        "One.", "Two!", "Three?", "\"Four.\"", "Five",
    ]  # fmt: skip
    assert split_sentences("Pi is 3.14 exactly.") == ["Pi is 3.14 exactly."]
    assert split_sentences("   ") == []


def test_auto_picks_piper_when_installed_and_says_so():
    expected = "piper" if registry.available("piper") else "pyttsx3"
    assert resolve_backend("auto") == expected
    assert create_tts(TTSConfig()).name == expected
    assert resolve_backend("system") == "system"


def test_a_missing_extra_names_the_install_line():
    registry.register(
        "absent", "perslm_voice.tts.absent:AbsentTTS", requires=("no_such_tts_module",),
        install="pip install 'perslm-voice[absent]'",
    )  # fmt: skip
    try:
        with pytest.raises(BackendUnavailable, match=r"pip install 'perslm-voice\[absent\]'"):
            registry.load("absent")
    finally:
        registry._entries.pop("absent")


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, Any]]:
    loaded: dict[str, Any] = {}
    yield loaded
    for tts in loaded.values():
        tts.close()


def engine(engines: dict[str, Any], name: str) -> Any:
    if name not in engines:
        tts = create_tts(TTSConfig(backend=name))
        tts.load()
        engines[name] = tts
    return engines[name]


@pytest.mark.parametrize("backend", OFFLINE)
def test_offline_backend_yields_a_chunk_per_sentence(engines, backend, capfd):
    tts = engine(engines, backend)
    chunks = list(tts.synthesize(TEXT, VoiceSettings()))
    assert [c.text for c in chunks] == split_sentences(TEXT)
    for chunk in chunks:
        assert chunk.samples.dtype == np.int16 and chunk.samples.ndim == 1
        assert 8000 <= chunk.sample_rate_hz <= 48000
        assert np.abs(chunk.samples).max() > 1000  # speech, not silence
    seconds = sum(len(c.samples) / c.sample_rate_hz for c in chunks)
    assert 2.0 < seconds < 8.0
    assert tts.name == backend and backend in tts.description
    assert capfd.readouterr().out == ""  # pyttsx3's "Audio saved to ..." never reaches stdout


# pyttsx3 2.99 hands the rate to espeak-ng through a command queue and, run after run, applies
# it only some of the time (measured here: the same length at rates 1.0 and 1.6 in most runs);
# the `system` backend drives espeak-ng directly and honours it. Known limit, in the README.
@pytest.mark.parametrize("backend", [b for b in OFFLINE if b != "pyttsx3"])
def test_rate_changes_the_length(engines, backend):
    tts = engine(engines, backend)

    def seconds(rate: float) -> float:
        chunks = tts.synthesize(
            "The quick brown fox jumps over the lazy dog.", VoiceSettings(rate=rate)
        )
        return sum(len(c.samples) / c.sample_rate_hz for c in chunks)

    assert seconds(1.6) < 0.85 * seconds(1.0)


@pytest.mark.parametrize("backend", OFFLINE)
def test_unknown_voice_lists_the_available_ones(engines, backend):
    tts = engine(engines, backend)
    voices = tts.list_voices()
    assert voices
    with pytest.raises(ConfigError, match=r"unknown .* voice 'no-such-voice'; available: ") as err:
        list(tts.synthesize("Hi.", VoiceSettings(voice_id="no-such-voice")))
    assert voices[0] in str(err.value)
    # Each listed voice is accepted.
    assert tts.resolve_voice(VoiceSettings(voice_id=voices[-1]))


def test_espeak_voices_follow_the_language(engines):
    tts = engine(engines, "pyttsx3")
    assert tts.resolve_voice(VoiceSettings(language="en-US")).lower() == "gmw/en-us"
    assert tts.resolve_voice(VoiceSettings(language="fr-FR")).lower().endswith("/fr")
    french = list(tts.synthesize("Bonjour à tous.", VoiceSettings(language="fr-FR")))
    assert french and len(french[0].samples) > 0


# --- edge-tts: online only; this machine (and CI) has no internet, which is the case tested ---


@pytest.mark.skipif(not registry.available("edge_tts"), reason="edge-tts extra not installed")
def test_edge_tts_offline_fails_in_one_clear_line_and_caches_nothing(tmp_path):
    tts = create_tts(TTSConfig(backend="edge_tts"))
    tts.load()
    cached = CachedTTS(tts, TTSCache(tmp_path / "cache", 1_000_000))
    with pytest.raises(BackendUnavailable) as err:
        list(cached.synthesize("Hello there.", VoiceSettings()))
    message = str(err.value)
    assert "\n" not in message
    assert "edge_tts" in message and "tts.backend: piper" in message
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(BackendUnavailable):
        tts.list_voices()
    with pytest.raises(ConfigError, match="en-US-AriaNeural"):
        list(tts.synthesize("Hi.", VoiceSettings(voice_id="nonsense")))


# --- cloud APIs against fake servers on loopback ---


def tone_pcm(seconds: float, rate_hz: int) -> bytes:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (np.sin(2 * np.pi * 300 * t) * 5000).astype("<i2").tobytes()


def tone_wav(seconds: float, rate_hz: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(tone_pcm(seconds, rate_hz))
    return out.getvalue()


class FakeServer:
    """An HTTP server on loopback that records requests and answers with ``respond``."""

    def __init__(self, respond):
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(raw) if raw else None,
                }
                server.requests.append(request)
                status, content_type, body = respond(request)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_error(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": {"message": message}}).encode()


def openai_speech(request: dict[str, Any]) -> tuple[int, str, bytes]:
    if request["headers"].get("authorization") != "Bearer sk-test-123":
        return json_error(401, "Incorrect API key provided")
    body = request["json"]
    if "fail" in body["input"]:
        return json_error(500, "the model fell over")
    if body["response_format"] == "wav":
        return 200, "audio/wav", tone_wav(0.5, 22050)
    return 200, "application/octet-stream", tone_pcm(0.5, 24000)


def test_openai_compatible_server(monkeypatch):
    monkeypatch.setenv("SPEECH_KEY", "sk-test-123")
    with FakeServer(openai_speech) as server:
        config = TTSConfig(
            backend="openai", base_url=server.url + "/v1", api_key_env="SPEECH_KEY", model="kokoro"
        )
        tts = create_tts(config)
        tts.load()
        chunks = list(tts.synthesize("One. Two.", VoiceSettings(voice_id="af_sky", rate=1.25)))
        assert [c.text for c in chunks] == ["One.", "Two."]
        assert chunks[0].sample_rate_hz == 22050 and len(chunks[0].samples) == 11025
        first = server.requests[0]
        assert first["method"] == "POST" and first["path"] == "/v1/audio/speech"
        assert first["json"] == {
            "model": "kokoro", "input": "One.", "voice": "af_sky",
            "response_format": "wav", "speed": 1.25,
        }  # fmt: skip
        with pytest.raises(ModelError, match="HTTP 500: the model fell over"):
            list(tts.synthesize("This will fail.", VoiceSettings()))
        monkeypatch.setenv("SPEECH_KEY", "sk-wrong-key")
        with pytest.raises(BackendUnavailable, match=r"refused the API key in \$SPEECH_KEY") as err:
            list(tts.synthesize("Hi.", VoiceSettings()))
        assert "sk-wrong-key" not in str(err.value)


def test_openai_pcm_is_24khz():
    # The official endpoint's "pcm" format; an official-looking backend pointed at the fake server.
    from perslm_voice.tts.openai import OpenAITTS

    with FakeServer(openai_speech) as server:
        tts = OpenAITTS(TTSConfig(backend="openai"))
        tts.base_url = server.url + "/v1"
        tts.official = True
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("OPENAI_API_KEY", "sk-test-123")
            (chunk,) = tts.synthesize("Hi.", VoiceSettings(voice_id="nova"))
            with pytest.raises(ConfigError, match="available: alloy, ash"):
                list(tts.synthesize("Hi.", VoiceSettings(voice_id="af_sky")))
        assert chunk.sample_rate_hz == 24000 and len(chunk.samples) == 12000
        assert server.requests[0]["json"]["response_format"] == "pcm"


def test_openai_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tts = create_tts(TTSConfig(backend="openai"))
    with pytest.raises(BackendUnavailable, match=r"export OPENAI_API_KEY=\.\.\."):
        tts.load()


def test_openai_offline_is_one_clear_line(monkeypatch):
    """With a key but no internet: the real DNS (or connection) failure, as one line."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    tts = create_tts(TTSConfig(backend="openai"))
    tts.load()
    with pytest.raises(BackendUnavailable) as err:
        list(tts.synthesize("Hello.", VoiceSettings()))
    assert "\n" not in str(err.value) and "sk-not-a-real-key" not in str(err.value)


def test_a_server_that_is_down(monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tts = create_tts(TTSConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(BackendUnavailable, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        list(tts.synthesize("Hello.", VoiceSettings()))


VOICES = {"voices": [{"voice_id": "AAAAAAAAAAAAAAAAAAAA", "name": "Ada"}]}


def elevenlabs_api(request: dict[str, Any]) -> tuple[int, str, bytes]:
    if request["headers"].get("xi-api-key") != "el-test-key":
        return 401, "application/json", b'{"detail": {"message": "Invalid API key"}}'
    if request["path"] == "/v1/voices":
        return 200, "application/json", json.dumps(VOICES).encode()
    path, _, query = request["path"].partition("?")
    if not path.startswith("/v1/text-to-speech/"):
        return 404, "application/json", b'{"detail": "not found"}'
    if path.rsplit("/", 1)[1] not in ("AAAAAAAAAAAAAAAAAAAA", "21m00Tcm4TlvDq8ikWAM"):
        return 404, "application/json", b'{"detail": {"message": "voice_not_found"}}'
    assert query == "output_format=pcm_16000"
    return 200, "audio/pcm", tone_pcm(0.25, 16000)


def test_elevenlabs_rest_api(monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "el-test-key")
    with FakeServer(elevenlabs_api) as server:
        tts = create_tts(TTSConfig(backend="elevenlabs", base_url=server.url))
        tts.load()
        assert tts.list_voices() == ["Ada"]
        chunks = list(tts.synthesize("One. Two.", VoiceSettings(voice_id="ada", rate=2.0)))
        assert [(c.text, c.sample_rate_hz, len(c.samples)) for c in chunks] == [
            ("One.", 16000, 4000), ("Two.", 16000, 4000),
        ]  # fmt: skip
        speech = server.requests[1]
        assert speech["path"].startswith("/v1/text-to-speech/AAAAAAAAAAAAAAAAAAAA?")
        assert speech["json"] == {
            "text": "One.", "model_id": "eleven_flash_v2_5", "voice_settings": {"speed": 1.2},
        }  # fmt: skip
        (default,) = tts.synthesize("Hi.", VoiceSettings())
        assert "21m00Tcm4TlvDq8ikWAM" in server.requests[-1]["path"]
        with pytest.raises(ConfigError, match="unknown elevenlabs voice 'Bob'; available: Ada"):
            list(tts.synthesize("Hi.", VoiceSettings(voice_id="Bob")))
        with pytest.raises(ConfigError, match="available: Ada"):
            list(tts.synthesize("Hi.", VoiceSettings(voice_id="ZZZZZZZZZZZZZZZZZZZZ")))
        monkeypatch.setenv("ELEVENLABS_API_KEY", "wrong")
        with pytest.raises(
            BackendUnavailable, match=r"ElevenLabs refused the API key in \$ELEVENLABS_API_KEY"
        ):
            list(tts.synthesize("Hi.", VoiceSettings()))


def test_elevenlabs_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(BackendUnavailable, match=r"export ELEVENLABS_API_KEY=\.\.\."):
        create_tts(TTSConfig(backend="elevenlabs")).load()
