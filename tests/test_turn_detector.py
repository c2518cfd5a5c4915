"""End of turn: the decision from the words so far, the Smart Turn model on real speech, and the
endpointer ending an utterance early when told the turn is complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perslm_voice.audio import Endpointer, FileSource, create_vad
from perslm_voice.audio.smart_turn import WINDOW_SAMPLES, SmartTurnModel, check_model, last_window
from perslm_voice.audio.turn_detector import (
    UNFINISHED_UNLESS_QUESTION,
    UNFINISHED_WORDS,
    Detection,
    decide,
    unfinished,
)
from perslm_voice.config import AudioSettings, VADConfig
from perslm_voice.errors import ConfigError, ModelError
from perslm_voice.events import AudioFrame, SpeechEnded, SpeechStarted

FRAME_S = 0.032
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
sentences = st.lists(words, min_size=1, max_size=12).map(" ".join)


# -- the words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "that take no account of.",  # the fragments, as Whisper writes them
        "... could be implemented in the",
        "I'd like a coffee and",
        "I'd like a coffee, um",
        "Can you tell me,",
        "the first one is milk;",
        "because",
        "What about the weather in",  # a preposition that is not a question yet
    ],
)
def test_fragments_are_unfinished(text):
    assert unfinished(text)
    decision = decide(Detection.WORDS, text)
    assert not decision.complete and decision.reason == "unfinished_words"


@pytest.mark.parametrize(
    "text",
    [
        "What time is it?",
        "Thank you.",
        "So do I.",
        "Where are you from?",  # a preposition that ends a question
        "Remember that I take my coffee black.",
        "One, two, three.",
    ],
)
def test_complete_sentences_end_the_turn_on_words(text):
    assert not unfinished(text)
    decision = decide(Detection.WORDS, text)
    assert decision.complete and decision.reason == "words"


@given(sentences, st.sampled_from(sorted(UNFINISHED_WORDS)), st.sampled_from(["", ".", "?", "!"]))
def test_a_turn_that_stops_on_a_conjunction_or_article_always_waits(head, word, stop):
    text = f"{head} {word}{stop}"
    assert unfinished(text)
    for detection in (Detection.WORDS, Detection.SMART_TURN):
        # Even a model certain that the turn is over does not answer "... and the".
        assert not decide(detection, text, probability=1.0).complete


@given(sentences, st.sampled_from(sorted(UNFINISHED_UNLESS_QUESTION)))
def test_a_preposition_waits_unless_it_ends_a_question(head, word):
    assert unfinished(f"{head} {word}.")
    assert not unfinished(f"{head} {word}?")


@given(sentences, st.floats(0.0, 1.0))
def test_smart_turn_follows_the_model_when_the_words_allow(text, p):
    if unfinished(text):
        return
    decision = decide(Detection.SMART_TURN, text, probability=p)
    assert decision.complete == (p >= 0.5)
    assert decision.reason == ("smart_turn" if p >= 0.5 else "smart_turn_unsure")
    assert decision.probability == p
    assert decision.reason in decision.describe()


def test_no_words_never_ends_a_turn_early():
    for detection in (Detection.WORDS, Detection.SMART_TURN):
        decision = decide(detection, "  ", probability=0.99)
        assert not decision.complete and decision.reason == "no_words"


def test_silence_makes_no_early_decision_and_smart_turn_needs_the_model():
    with pytest.raises(ValueError):
        decide(Detection.SILENCE, "Hello.")
    with pytest.raises(ValueError):
        decide(Detection.SMART_TURN, "Hello.")


def test_config_names_the_detectors():
    assert VADConfig().turn_detection == "silence"  # today's behaviour until measured better
    with pytest.raises(Exception) as info:
        VADConfig(turn_detection="smart")
    assert "silence" in str(info.value) and "smart_turn" in str(info.value)
    from perslm_voice.config import load_config

    with pytest.raises(ConfigError) as info:
        load_config(overrides={"vad": {"turn_detection": "smrt_turn"}})
    assert "vad.turn_detection" in str(info.value)


# -- the model on real speech ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return SmartTurnModel()


def recording(audio_dir, name: str) -> np.ndarray:
    return np.concatenate(list(FileSource(audio_dir / name, speed="fast").frames()))


def test_a_complete_count_is_complete_and_the_same_count_cut_before_its_last_word_is_not(
    model, audio_dir
):
    """english.wav is "One, two, three." (real speech); cut in the pause before "three" (1.9 s),
    with the same 0.2 s pause after each as the listener hears, the same voice is mid-list."""
    audio = recording(audio_dir, "english.wav")
    pause = np.zeros(int(0.2 * 16000), np.int16)
    complete = model.probability(np.concatenate([audio, pause]))
    cut = model.probability(audio[: int(1.9 * 16000)])
    assert complete >= 0.5, complete
    assert cut < 0.5, cut
    assert decide(Detection.SMART_TURN, "One, two, three.", complete).complete
    # Whisper's words for the cut would stop on a comma: both kinds of evidence say wait.
    assert not decide(Detection.SMART_TURN, "One, two,", cut).complete


def test_the_model_reads_the_last_eight_seconds_padded_in_front(model, audio_dir):
    long = recording(audio_dir, "vosk_test.wav")  # 8.3 s: its first 0.3 s are not read
    assert len(long) > WINDOW_SAMPLES
    assert np.array_equal(last_window(long), long[-WINDOW_SAMPLES:] / np.float32(32768.0))
    short = recording(audio_dir, "english.wav")  # 2.7 s: zeros in front
    window = last_window(short)
    assert len(window) == WINDOW_SAMPLES
    assert np.allclose(window[-len(short) :], short / 32768.0)
    assert not window[: WINDOW_SAMPLES - len(short)].any()
    assert model.features(short).shape == (80, 800)
    # Digital silence before the turn changes nothing: the window is padded with it anyway.
    longer = np.concatenate([np.zeros(16000, np.int16), short])
    assert model.probability(longer) == pytest.approx(model.probability(short), abs=1e-5)


def test_a_damaged_model_file_names_the_fix(tmp_path):
    bad = tmp_path / "smart-turn.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="reinstall perslm-voice"):
        check_model(bad)
    with pytest.raises(ModelError, match="turn_detection: silence"):
        check_model(tmp_path / "missing.onnx")


# -- the endpointer ending a turn early ------------------------------------------------------------


def feed(endpointer: Endpointer, frames, start: int = 0):
    events = []
    for i, samples in enumerate(frames, start=start + 1):
        events.append(endpointer.process(AudioFrame(samples, i * FRAME_S)))
    return events


def test_end_now_ends_the_utterance_inside_its_pause_with_the_pause_t_end(audio_dir):
    audio = recording(audio_dir, "english.wav")
    silence = [np.zeros(512, np.int16)] * 60  # 1.9 s
    frames = [audio[i : i + 512] for i in range(0, len(audio) - 511, 512)] + silence
    vad_config = VADConfig(turn_detection="words", turn_pause_s=0.2, turn_max_wait_s=1.5)
    endpointer = Endpointer(create_vad(vad_config), AudioSettings(), vad_config)
    paused_at = ended_at = None
    later: list[SpeechEnded] = []
    for i, samples in enumerate(frames, start=1):
        for event in endpointer.process(AudioFrame(samples, i * FRAME_S)):
            if type(event).__name__ == "SpeechPaused" and paused_at is None:
                paused_at, paused = i, event
                # Told "complete" at once: the utterance ends here, not 1.5 s later.
                ended = endpointer.end_now()
                assert [type(e) for e in ended] == [SpeechEnded]
                assert ended[0].t_end == paused.t_end  # the speculative transcript stands
                ended_at = i
            elif isinstance(event, SpeechEnded):
                later.append(event)  # "two, three." after "One," ended: a turn of its own
    assert paused_at is not None and ended_at == paused_at
    assert later and all(e.t_start > paused.t_end for e in later)
    assert not endpointer.in_speech
    assert endpointer.end_now() == []  # nothing in progress: nothing to end


def end_frame(endpointer: Endpointer, frames) -> int:
    """The index of the frame that ended the (one) utterance."""
    ends = [
        i
        for i, batch in enumerate(feed(endpointer, frames))
        if any(isinstance(e, SpeechEnded) for e in batch)
    ]
    assert len(ends) == 1, ends
    return ends[0]


def test_a_wait_lets_the_silence_run_to_the_maximum(audio_dir):
    audio = recording(audio_dir, "english.wav")[: int(0.9 * 16000)]  # "One,"
    frames = [audio[i : i + 512] for i in range(0, len(audio) - 511, 512)]
    frames += [np.zeros(512, np.int16)] * 60
    audio_settings = AudioSettings(silence_duration=0.5)
    by_silence = Endpointer(create_vad(VADConfig()), audio_settings, VADConfig())
    early = VADConfig(turn_detection="smart_turn", turn_pause_s=0.2, turn_max_wait_s=1.0)
    waited = Endpointer(create_vad(early), audio_settings, early)
    # Nobody calls end_now (every decision said "wait"): 1.0 s of silence ends it, not 0.5 s.
    assert end_frame(waited, frames) - end_frame(by_silence, frames) == round(0.5 / FRAME_S)


def test_speech_after_the_pause_makes_end_now_stale(audio_dir):
    audio = recording(audio_dir, "english.wav")
    speech = [audio[i : i + 512] for i in range(0, len(audio) - 511, 512)]
    vad_config = VADConfig(turn_detection="words", turn_pause_s=0.2, turn_max_wait_s=1.5)
    endpointer = Endpointer(create_vad(vad_config), AudioSettings(), vad_config)
    # "One, two," and a pause (SpeechPaused), then "three": a decision that arrives after the
    # user went on must not cut the turn.
    cut = int(1.9 * 16000) // 512
    pause = [np.zeros(512, np.int16)] * 8
    events = [e for batch in feed(endpointer, speech[:cut] + pause) for e in batch]
    judged = [e for e in events if type(e).__name__ == "SpeechPaused"][-1]
    events = [e for batch in feed(endpointer, speech[cut:], start=cut + 8) for e in batch]
    assert any(type(e).__name__ == "SpeechResumed" for e in events)
    assert endpointer.in_speech
    # Stale also when the user has paused again since (the speculative pause comes after 50 ms).
    assert endpointer.end_now(judged.t_end) == []
    assert endpointer.in_speech
    assert not any(isinstance(e, SpeechStarted | SpeechEnded) for e in events)


def test_doctor_names_the_end_of_turn_and_checks_the_model(run_cli):
    result = run_cli("doctor", "--json", env={"PERSLM_VOICE_VAD__TURN_DETECTION": "smart_turn"})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["end of turn"]["status"] == "ok", checks["end of turn"]
    assert "Smart Turn v3.2" in checks["end of turn"]["detail"]
    result = run_cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["end of turn"] == {
        "name": "end of turn",
        "status": "ok",
        "detail": "0.5 s of silence",
        "fix": "",
    }
