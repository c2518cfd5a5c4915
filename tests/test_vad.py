"""VAD and endpointing on real speech: utterance boundaries, pre-roll, max duration, no turns from noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perslm_voice.audio import (
    Endpointer,
    FileSource,
    SileroVAD,
    SpeechPaused,
    WebRTCVAD,
    create_vad,
)
from perslm_voice.audio.vad import registry
from perslm_voice.config import AudioSettings, VADConfig
from perslm_voice.errors import ConfigError
from perslm_voice.events import AudioFrame, SpeechEnded, SpeechStarted

FRAME_S = 0.032


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    n = len(samples) // 512
    return [samples[i * 512 : (i + 1) * 512] for i in range(n)]


def run(frames, audio: AudioSettings | None = None, vad_config: VADConfig | None = None, vad=None):
    vad_config = vad_config or VADConfig()
    endpointer = Endpointer(vad or create_vad(vad_config), audio or AudioSettings(), vad_config)
    events = []
    for i, samples in enumerate(frames, start=1):
        events += endpointer.process(AudioFrame(samples, i * FRAME_S))
    return events + endpointer.flush(), endpointer


def utterances(events):
    return [e for e in events if isinstance(e, SpeechEnded)]


@pytest.fixture(scope="module")
def vosk_frames():
    path = Path(__file__).resolve().parent / "audio" / "vosk_test.wav"
    return list(FileSource(path, speed="fast").frames())


def test_silero_streaming_matches_faster_whispers_batch_model(vosk_frames):
    from faster_whisper.vad import SileroVADModel

    from perslm_voice.audio.vad import silero_model_path

    vad = SileroVAD()
    streamed = np.array([vad.speech_probability(f) for f in vosk_frames])
    batch = SileroVADModel(str(silero_model_path()))(
        np.concatenate(vosk_frames).astype(np.float32) / 32768.0
    ).reshape(-1)
    assert np.abs(streamed - batch).max() < 1e-3
    assert streamed[:20].max() < 0.3 and streamed.max() > 0.9  # leading silence, then speech
    vad.reset()
    assert vad.speech_probability(vosk_frames[40]) == pytest.approx(streamed[40], abs=0.2)


def test_webrtcvad_votes_on_10ms_pieces(vosk_frames):
    vad = WebRTCVAD(3)
    probs = [vad.speech_probability(f) for f in vosk_frames]
    assert set(probs) <= {0.0, 1.0} and 0.2 < np.mean(probs) < 0.9


def test_registry_names_and_unknown_backend():
    assert registry.names() == ["silero", "webrtcvad"]
    assert isinstance(create_vad(VADConfig(backend="webrtcvad", aggressiveness=1)), WebRTCVAD)
    with pytest.raises(ConfigError, match="valid choices: silero, webrtcvad"):
        registry.load("nope")


@pytest.mark.parametrize("backend", ["silero", "webrtcvad"])
def test_digit_groups_are_three_utterances_with_capture_times(vosk_frames, backend):
    events, _ = run(vosk_frames, vad_config=VADConfig(backend=backend, aggressiveness=3))
    ended = utterances(events)
    assert len(ended) == 3
    # the groups are spoken at about 0.9-2.6 s, 4.0-4.9 s and 6.3-7.9 s
    for event, (start, end) in zip(ended, [(0.9, 2.6), (4.0, 4.9), (6.3, 7.9)], strict=True):
        assert event.t_start == pytest.approx(start, abs=0.25)
        assert event.t_end == pytest.approx(end, abs=0.25)
        assert not event.truncated
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert [s.t_start for s in starts] == [e.t_start for e in ended]


def test_pre_roll_and_trailing_silence_are_in_the_audio(vosk_frames):
    audio = AudioSettings(pre_roll=0.3, silence_duration=0.5)
    first = utterances(run(vosk_frames, audio)[0])[0]
    seconds = len(first.audio) / 16000
    expected = 0.3 + (first.t_end - first.t_start) + 0.5
    assert seconds == pytest.approx(expected, abs=0.07)


def test_a_longer_silence_joins_the_counted_words(audio_dir):
    frames = list(FileSource(audio_dir / "english.wav", speed="fast").frames())
    assert len(utterances(run(frames, AudioSettings(silence_duration=0.5))[0])) == 3
    assert len(utterances(run(frames, AudioSettings(silence_duration=1.0))[0])) == 1


def test_max_duration_cuts_a_monologue_into_pieces_and_loses_nothing(vosk_frames):
    audio = AudioSettings(silence_duration=2.0, max_duration=2.0, pre_roll=0.0)
    events, _ = run(vosk_frames, audio)
    pieces = utterances(events)
    assert len(pieces) >= 3 and all(p.truncated for p in pieces[:-1]) and not pieces[-1].truncated
    assert all(len(p.audio) / 16000 <= 2.0 + 0.04 for p in pieces)
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert b.t_start == pytest.approx(a.t_end)  # contiguous: no audio lost between pieces
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(starts) == len(pieces)


def test_speculative_pause_comes_before_the_end_with_the_same_speech_end(vosk_frames):
    events, _ = run(vosk_frames, AudioSettings(speculative_stt=0.6))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechStarted", "SpeechPaused", "SpeechEnded"] * 3
    for paused, ended in zip(events[1::3], events[2::3], strict=True):
        assert isinstance(paused, SpeechPaused) and paused.t_end == ended.t_end
        assert len(paused.audio) < len(ended.audio)
    events, _ = run(vosk_frames, AudioSettings(speculative_stt=0.0))
    assert not any(isinstance(e, SpeechPaused) for e in events)


def test_silence_noise_and_clicks_start_no_turn():
    rng = np.random.default_rng(1)
    silence = np.zeros(16000 * 3, np.int16)
    noise = (np.clip(rng.normal(0, 0.3, 16000 * 5), -1, 1) * 32767).astype(np.int16)
    clicks = np.zeros(16000 * 3, np.int16)
    clicks[8000:8080] = 30000  # 5 ms clicks, twice
    clicks[30000:30080] = -30000
    for samples in (silence, noise, clicks):
        events, endpointer = run(frames_of(samples))
        assert events == [] and not endpointer.in_speech


def test_assistant_speaking_uses_the_stricter_barge_in_settings(vosk_frames):
    vad_config = VADConfig(threshold=0.5, speaking_threshold=0.8, speaking_min_speech_duration=2.0)
    endpointer = Endpointer(create_vad(vad_config), AudioSettings(), vad_config)
    assert (endpointer.threshold, endpointer.min_speech_s) == (0.5, 0.25)
    endpointer.assistant_speaking = True
    assert (endpointer.threshold, endpointer.min_speech_s) == (0.8, 2.0)
    events = []
    for i, samples in enumerate(vosk_frames, start=1):
        events += endpointer.process(AudioFrame(samples, i * FRAME_S))
    events += endpointer.flush()
    # only the groups that last two seconds of voiced speech count as barge-in: none here
    assert utterances(events) == [] and endpointer.dropped_short == 3
