"""The configuration: layering, sources, validation messages, and the documented defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from perslm_voice.config import Config, effective_items, load_config
from perslm_voice.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_default_yaml_documents_exactly_the_schema_defaults():
    documented = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    assert documented == Config().model_dump()
    text = (ROOT / "config" / "default.yaml").read_text()
    assert "# one of: faster_whisper" in text  # enums list their choices


def test_layers_in_order_with_sources(tmp_path, isolated_home):
    write(isolated_home / "config" / "config.yaml", "llm:\n  max_tokens: 100\n  temperature: 0.1\n")
    given = write(tmp_path / "given.yaml", "llm:\n  temperature: 0.2\n  n_ctx: 1024\n")
    env = {"PERSLM_VOICE_LLM__N_CTX": "4096", "PERSLM_VOICE_SPEECH__AUDIO__SILENCE_DURATION": "0.7"}
    loaded = load_config(given, {"llm.n_ctx": 512}, environ=env)
    c = loaded.config
    assert (c.llm.max_tokens, c.llm.temperature, c.llm.n_ctx) == (100, 0.2, 512)
    assert c.speech.audio.silence_duration == 0.7
    assert loaded.source_of("llm.max_tokens").endswith("config/config.yaml")
    assert loaded.source_of("llm.temperature") == str(given)
    assert loaded.source_of("llm.n_ctx") == "command line"
    assert loaded.source_of("speech.audio.silence_duration") == (
        "environment PERSLM_VOICE_SPEECH__AUDIO__SILENCE_DURATION"
    )
    assert loaded.source_of("vad.backend") == "default"


def test_every_problem_reported_at_once_with_suggestions(tmp_path):
    bad = write(
        tmp_path / "bad.yaml",
        "speech:\n  backend: nosuch\nspeach:\n  model_name: base\nvad:\n  treshold: 0.5\n"
        "llm:\n  max_tokens: -3\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    problems = "\n".join(info.value.problems)
    assert len(info.value.problems) == 4
    assert "speech.backend: invalid value 'nosuch'; valid choices: 'faster_whisper'" in problems
    assert "speach: unknown key (did you mean 'speech'?)" in problems
    assert "vad.treshold: unknown key (did you mean 'threshold'?)" in problems
    assert "llm.max_tokens: Input should be greater than or equal to 1 (got -3)" in problems


def test_malformed_yaml_names_the_line(tmp_path):
    broken = write(tmp_path / "broken.yaml", "llm:\n  model: ok\nspeech:\n  backend: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert str(broken) in str(info.value) and "line 4" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("- a\n- b\n", "must be a mapping"), ("\xff\xfe", "not UTF-8")],
)
def test_odd_files(tmp_path, text, expected):
    path = tmp_path / "odd.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_missing_and_directory_config(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_secret_looking_values_are_masked():
    loaded = load_config(environ={"PERSLM_VOICE_TTS__API_KEY_ENV": "MY_KEY"})
    rows = {k: v for k, v, _ in effective_items(loaded)}
    assert rows["tts.api_key_env"] == "MY_KEY"  # the variable's name is not a secret


def test_cli_bad_config_exit_2_names_everything(tmp_path, run_cli):
    bad = write(tmp_path / "bad.yaml", "speech:\n  backend: nosuch\nspeach:\n  model_name: base\n")
    result = run_cli("--config", str(bad), "--user", "x", input="")
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "speech.backend" in err and "faster_whisper" in err
    assert "speach: unknown key (did you mean 'speech'?)" in err
    assert "Traceback" not in err
    assert not (Path(tmp_path) / "home" / "data").exists()  # nothing written


def test_cli_config_show_json_with_sources(tmp_path, run_cli):
    given = write(tmp_path / "c.yaml", "interaction:\n  timeout: 30\n")
    result = run_cli(
        "config", "show", "--json", "--config", str(given), env={"PERSLM_VOICE_LLM__MODEL": "qwen"}
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["interaction.timeout"] == {"value": 30.0, "source": str(given)}
    assert data["llm.model"]["source"] == "environment PERSLM_VOICE_LLM__MODEL"
    assert data["vad.backend"] == {"value": "silero", "source": "default"}
