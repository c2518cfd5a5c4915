"""Property-based fuzzing (hypothesis) of what a hostile user controls: configuration files,
the memory commands' arguments, audio files and text shown on a terminal. Each property is
what must hold for any input: a clean error of the project's own kind, never a crash or a hang.

Bounded for CI: a few dozen examples each, no shrinking budget beyond hypothesis' default.
"""

from __future__ import annotations

import io
import json
import re
import wave

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perslm_voice.audio import FileSource
from perslm_voice.config import load_config
from perslm_voice.errors import AudioFileError, ConfigError
from perslm_voice.safetext import visible

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SECTIONS = ["speech", "vad", "audio", "tts", "interaction", "llm", "memory", "logging", "nosuch"]
KEYS = ["backend", "model", "max_tokens", "timeout", "voice", "rate", "path", "level", "x" * 70]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
configs = st.dictionaries(
    st.sampled_from(SECTIONS),
    st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=5)),
    max_size=5,
)


@FAST
@given(configs)
def test_any_configuration_loads_or_is_a_config_error(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems and all(p and len(p) < 1000 for p in exc.problems)
        assert len(exc.problems) <= 21


@FAST
@given(st.text(max_size=300))
def test_any_text_as_a_config_file_loads_or_is_a_config_error(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems


def _cli(args: list[str]):
    from perslm_voice.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


ids = st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str), st.text(max_size=12))
memory_args = st.one_of(
    st.tuples(st.just("history"), st.sampled_from(["--limit", "--session"]), ids),
    st.tuples(st.just("search"), st.text(max_size=60), st.just("--limit"), ids),
    st.tuples(st.just("recall"), st.text(max_size=60)),
    st.tuples(st.just("forget"), st.sampled_from(["--fact", "--session"]), ids, st.just("--yes")),
    st.tuples(st.just("export"), st.just("--format"), st.text(max_size=10)),
)


@FAST
@given(args=memory_args, user=st.one_of(st.just("ann"), st.text(max_size=70)))
def test_any_memory_command_arguments_give_an_answer_or_a_clean_error(isolated_home, args, user):
    args = [a for a in args if "\x00" not in a]  # argv cannot hold NUL
    result = _cli(["memory", *args, "--user", user.replace("\x00", "") or "ann"])
    assert result.exit_code in (0, 1, 2), result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output


def _wav(samples: bytes, rate_hz: int, channels: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(samples)
    return out.getvalue()


audio_files = st.one_of(
    st.binary(max_size=4000),
    st.builds(
        _wav,
        st.binary(max_size=8000).map(lambda b: b[: len(b) // 4 * 4]),
        st.sampled_from([8000, 16000, 44100, 48000]),
        st.sampled_from([1, 2]),
    ),
    # A real header whose data was cut short, or followed by garbage.
    st.builds(
        lambda n, tail: _wav(np.zeros(1600, np.int16).tobytes(), 16000, 1)[:n] + tail,
        st.integers(0, 3244),
        st.binary(max_size=200),
    ),
)


@FAST
@given(audio_files)
def test_any_audio_file_decodes_to_frames_or_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(content)
    try:
        frames = list(FileSource(path, speed="fast").frames())
    except AudioFileError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
        return
    assert frames and all(f.dtype == np.int16 and f.shape == (512,) for f in frames)


ACTS_ON_A_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_visible_text_holds_nothing_a_terminal_acts_on(text):
    shown = visible(text)
    assert not ACTS_ON_A_TERMINAL.search(shown)
    assert not ACTS_ON_A_TERMINAL.search(visible(text, one_line=True).replace("\n", "x"))
    assert "\n" not in visible(text, one_line=True)
    if not ACTS_ON_A_TERMINAL.search(text):
        assert shown == text  # ordinary text, newlines and tabs included, is left alone


@pytest.mark.parametrize("text", ["\x1b[2J", "\x9b2J", "a\u202eb"])
def test_json_output_escapes_what_json_dumps_leaves_raw(text):
    from perslm_voice.safetext import json_safe

    dumped = json_safe(json.dumps({"t": text}, ensure_ascii=False))
    assert json.loads(dumped) == {"t": text} and not ACTS_ON_A_TERMINAL.search(dumped)
