"""`perslm-voice doctor` through the real CLI: one line per check, exit 1 only on a failure."""

from __future__ import annotations

import json
import os

from fault_server import closed_port_url
from servers import fault_server_fixture  # noqa: F401  (the fault_server fixture)

from perslm_voice.config import Config
from perslm_voice.doctor import CHECKS, Check, run_checks
from perslm_voice.memory.store import Store


def doctor_json(run_cli, env: dict[str, str] | None = None) -> tuple[int, dict[str, dict]]:
    result = run_cli("doctor", "--json", env=env)
    assert result.stderr.decode().strip() == ""  # no ALSA noise, no traceback
    data = json.loads(result.stdout)
    assert data["ok"] == (result.returncode == 0)
    return result.returncode, {c["name"]: c for c in data["checks"]}


def test_default_setup_has_no_failure(run_cli):
    code, checks = doctor_json(run_cli)
    assert code == 0
    for name in ("portaudio", "speech-to-text", "voice detection", "voice", "language model"):
        assert checks[name]["status"] in ("ok", "warn"), checks[name]
    assert checks["language model"]["detail"].startswith("llama.cpp SmolLM2-135M-Instruct")
    assert checks["voice detection"]["detail"] == "Silero v6 (silero_vad_v6.onnx)"
    if "microphone" in checks and checks["microphone"]["status"] == "warn":
        assert checks["microphone"]["detail"] == "no microphone: typed input only"


def test_human_output_is_one_line_per_check(run_cli):
    result = run_cli("doctor")
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 0
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in lines)
    assert any(line.split()[1] == "memory" for line in lines)


def test_server_reachable_and_model_present(run_cli, fault_server):
    env = {
        "PERSLM_VOICE_LLM__BACKEND": "openai",
        "PERSLM_VOICE_LLM__BASE_URL": fault_server.url,
        "PERSLM_VOICE_LLM__MODEL": "tiny-model",
    }
    code, checks = doctor_json(run_cli, env)
    assert code == 0
    assert checks["LLM server"] == {
        "name": "LLM server",
        "status": "ok",
        "detail": f"{fault_server.url} answers",
        "fix": "",
    }
    assert checks["LLM model"]["status"] == "ok"


def test_missing_model_fails_and_lists_the_served_ones(run_cli, fault_server):
    fault_server.models = ["llama3.2", "qwen3"]
    env = {
        "PERSLM_VOICE_LLM__PRESET": "ollama",
        "PERSLM_VOICE_LLM__BASE_URL": fault_server.url,
        "PERSLM_VOICE_LLM__MODEL": "mistral",
    }
    code, checks = doctor_json(run_cli, env)
    assert code == 1
    assert checks["LLM model"]["status"] == "fail"
    assert (
        checks["LLM model"]["detail"]
        == "the server has no model 'mistral'; it has: llama3.2, qwen3"
    )


def test_server_down_fails_with_the_start_hint(run_cli):
    url = closed_port_url()
    env = {"PERSLM_VOICE_LLM__PRESET": "ollama", "PERSLM_VOICE_LLM__BASE_URL": url}
    code, checks = doctor_json(run_cli, env)
    assert code == 1
    assert checks["LLM server"]["detail"] == (
        f"cannot reach the LLM server at {url}: is it running? (start it with: ollama serve)"
    )


def test_refused_key_names_the_variable(run_cli, fault_server):
    fault_server.models = []  # unused: /models is reached first
    env = {
        "PERSLM_VOICE_LLM__BACKEND": "openai",
        "PERSLM_VOICE_LLM__BASE_URL": fault_server.url,
        "PERSLM_VOICE_LLM__API_KEY_ENV": "MY_LLM_KEY",
        "MY_LLM_KEY": "secret-123",
    }
    result = run_cli("doctor", "--json", env=env)
    # The fault server accepts any key on /models; this checks the key is named, never shown.
    assert b"secret-123" not in result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["LLM server"]["detail"].endswith("answers, key $MY_LLM_KEY accepted")


def test_store_readable_by_others_is_a_warning(run_cli, isolated_home):
    store = Store()
    store.close()
    os.chmod(store.path, 0o644)
    code, checks = doctor_json(run_cli)
    assert code == 0
    assert checks["memory store"]["status"] == "warn"
    assert checks["memory store"]["fix"] == f"chmod 600 {store.path}"
    os.chmod(store.path, 0o600)
    _, checks = doctor_json(run_cli)
    assert checks["memory store"]["detail"] == f"{store.path} (integrity ok, mode 600)"


def test_a_crashing_check_is_reported_not_raised():
    def check_broken(config: Config) -> Check:
        raise RuntimeError("boom")

    results = run_checks(Config(), [check_broken])
    assert results == [Check("broken", "fail", "the check crashed: RuntimeError: boom")]
    assert check_broken not in CHECKS
