"""`perslm-voice tools list/call/allow/forbid/reset`, through the real CLI in a subprocess."""

from __future__ import annotations

import json

import pytest
import yaml
from servers import free_port
from tool_servers import HomeAssistant


def rows(done) -> dict:
    assert done.returncode == 0, done.stderr.decode()
    return {r["name"]: r for r in json.loads(done.stdout)["tools"]}


def test_list_shows_every_tool_its_source_and_whether_it_is_enabled(run_cli):
    listed = rows(run_cli("tools", "list", "--json", "--user", "ann"))
    assert {"get_time", "calculate", "set_timer", "get_weather", "send_email"} <= set(listed)
    assert listed["calculate"] == {
        **listed["calculate"],
        "source": "builtin",
        "side_effects": False,
        "enabled": True,
        "why_not": None,
    }
    assert listed["send_email"]["side_effects"] is True
    assert listed["get_weather"]["enabled"] is False
    assert listed["get_weather"]["why_not"].startswith("not set up: set tools.weather.location")
    human = run_cli("tools", "list", "--user", "ann")
    assert human.returncode == 0 and "calculate" in human.stdout.decode()


def test_call_runs_a_tool_by_hand(run_cli):
    done = run_cli("tools", "call", "calculate", "--args", '{"expression": "12 times 7"}')
    assert done.returncode == 0 and done.stdout.decode().strip() == "12 times 7 = 84"
    as_json = run_cli("tools", "call", "calculate", "--args", '{"expression": "2**8"}', "--json")
    assert json.loads(as_json.stdout)["data"] == {"value": 256}


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["calculate", "--args", "{nope"], 2, "Error: --args is not valid JSON"),
        (["calculate", "--args", "{}"], 1, "Error: calculate: missing argument expression"),
        (["fly"], 1, "Error: no tool called 'fly'; there are: calculate, cancel_timer"),
        (["calculate", "--args", '{"expression": "open(1)"}'], 1, "Error: calculate: only numbers"),
    ],
)
def test_call_errors_are_one_line(run_cli, args, code, message):
    done = run_cli("tools", "call", *args)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert err.startswith(message) and err.count("\n") == 1


def test_timers_set_by_hand_are_kept_per_user(run_cli):
    assert (
        run_cli(
            "tools", "call", "set_timer", "--args", '{"seconds": 600}', "--user", "ann"
        ).returncode
        == 0
    )
    ann = run_cli("tools", "call", "list_timers", "--json", "--user", "ann")
    assert [t["text"] for t in json.loads(ann.stdout)["data"]] == ["Your timer is done."]
    bob = run_cli("tools", "call", "list_timers", "--json", "--user", "bob")
    assert json.loads(bob.stdout)["data"] == []


def test_a_profile_can_forbid_and_allow_a_tool(run_cli, tmp_path):
    assert run_cli("tools", "forbid", "calculate", "--user", "ann").returncode == 0
    refused = run_cli(
        "tools", "call", "calculate", "--args", '{"expression": "1"}', "--user", "ann"
    )
    assert refused.returncode == 1
    assert "the tool calculate is off: forbidden in ann's profile" in refused.stderr.decode()
    assert (
        rows(run_cli("tools", "list", "--json", "--user", "ann"))["calculate"]["enabled"] is False
    )
    assert rows(run_cli("tools", "list", "--json", "--user", "bob"))["calculate"]["enabled"] is True
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"tools": {"disabled": ["get_time"]}}))
    run_cli("tools", "allow", "get_time", "--user", "ann", "--config", str(config))
    assert rows(run_cli("tools", "list", "--json", "--user", "ann", "--config", str(config)))[
        "get_time"
    ]["enabled"]
    run_cli("tools", "reset", "get_time", "--user", "ann", "--config", str(config))
    listed = rows(run_cli("tools", "list", "--json", "--user", "ann", "--config", str(config)))
    assert listed["get_time"]["why_not"] == "listed in tools.disabled"
    unknown = run_cli("tools", "forbid", "nope", "--user", "ann")
    assert unknown.returncode == 2 and "no tool called 'nope'" in unknown.stderr.decode()


def test_a_side_effect_waits_for_a_typed_yes_and_the_token_stays_secret(
    run_cli, tmp_path, isolated_home
):
    token = "ha-super-secret-31337"
    config = tmp_path / "c.yaml"
    args = '{"target": "kitchen light", "action": "on"}'
    with HomeAssistant(token) as ha:
        config.write_text(yaml.safe_dump({"tools": {"home_assistant": {"url": ha.url}}}))
        env = {"HOME_ASSISTANT_TOKEN": token}
        common = ["--config", str(config)]
        no = run_cli(
            "tools", "call", "control_device", "--args", args, *common, input="no\n", env=env
        )
        assert no.returncode == 1
        assert "Turn on the kitchen light? [y/N]" in no.stderr.decode()
        assert "not confirmed, nothing was done" in no.stderr.decode()
        assert ha.states["light.kitchen"]["state"] == "off"
        yes = run_cli(
            "tools", "call", "control_device", "--args", args, *common, input="yes\n", env=env
        )
        assert yes.returncode == 0, yes.stderr.decode()
        assert yes.stdout.decode().strip() == "Turned on Kitchen Light."
        assert ha.states["light.kitchen"]["state"] == "on"
        shown = run_cli("config", "show", "--config", str(config), env=env)
    for done in (no, yes, shown):
        assert token not in (done.stdout + done.stderr).decode()
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_an_unreachable_service_is_one_line(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    port = free_port()
    config.write_text(
        yaml.safe_dump(
            {
                "tools": {
                    "weather": {
                        "base_url": f"http://127.0.0.1:{port}",
                        "latitude": 1,
                        "longitude": 2,
                    }
                }
            }
        )
    )
    done = run_cli("tools", "call", "get_weather", "--config", str(config))
    assert done.returncode == 1
    assert done.stderr.decode().startswith(
        f"Error: cannot reach Open-Meteo at http://127.0.0.1:{port}"
    )


PLUGIN = """
from perslm_voice.tools import Tool, ToolResult


class Coin(Tool):
    name = "flip_coin"
    description = "Flip a coin."

    async def run(self, args):
        return ToolResult("Heads.")


def tools(context):
    return [Coin()]


def broken(context):
    raise RuntimeError("no coins left")
"""


def test_plugins_are_found_through_entry_points(run_cli, tmp_path):
    # A real installed distribution on the path: its dist-info declares the entry points.
    (tmp_path / "coin_plugin.py").write_text(PLUGIN)
    info = tmp_path / "coin_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: coin-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[perslm_voice.tools]\ncoin = coin_plugin:tools\nbad = coin_plugin:broken\n"
    )
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    listed = run_cli("tools", "list", "--json", env=env)
    data = json.loads(listed.stdout)
    coin = next(r for r in data["tools"] if r["name"] == "flip_coin")
    assert coin["source"] == "plugin:coin" and coin["enabled"]
    assert data["problems"] == ["tool plugin 'bad' failed to load: RuntimeError: no coins left"]
    called = run_cli("tools", "call", "flip_coin", env=env)
    assert called.returncode == 0 and called.stdout.decode().strip() == "Heads."
