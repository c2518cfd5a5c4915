"""`perslm-voice memory ...` and `profile ...` through the real CLI, on a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perslm_voice.memory import Store, default_store_path
from perslm_voice.memory.intents import handle_memory_intent

ROOT = Path(__file__).resolve().parents[1]


def out(result) -> str:
    return result.stdout.decode()


def err(result) -> str:
    return result.stderr.decode()


@pytest.fixture
def filled():
    """Alice and Bob, each with a past session, a fact and distinctive words."""
    with Store(default_store_path()) as store:
        for user, colour, pet in (("alice", "teal", "Rex"), ("bob", "crimson", "Felix")):
            session = store.start_session(user)
            said = f"Remember that my favourite colour is {colour}."
            turn = store.add_turn(session, user, "user", said, source="keyboard")
            reply = handle_memory_intent(store, user, said, turn_id=turn)
            store.add_turn(session, user, "assistant", reply or "", source="keyboard")
            store.add_turn(store.start_session(user), user, "user", f"My dog {pet} loves the beach")
    return default_store_path()


def test_no_command_shows_one_users_data_to_another(run_cli, filled):
    for user, mine, theirs in (("alice", "teal", "crimson"), ("bob", "crimson", "teal")):
        results = [
            run_cli("memory", "history", "--user", user, "--json"),
            run_cli("memory", "search", "favourite colour", "--user", user, "--json"),
            run_cli("memory", "recall", "what is my favourite colour", "--user", user, "--json"),
            run_cli("memory", "export", "--user", user),
            run_cli("memory", "export", "--user", user, "--format", "markdown"),
        ]
        for result in results:
            assert result.returncode == 0, err(result)
            assert mine in out(result).lower()
            assert theirs not in out(result).lower()


def test_recall_json_is_what_the_prompt_gets(run_cli, filled):
    result = run_cli("memory", "recall", "what is my favourite colour", "--user", "alice", "--json")
    data = json.loads(out(result))
    assert [f["text"] for f in data["facts"]] == ["My favourite colour is teal."]
    assert any("teal" in t["text"] for t in data["turns"])
    assert data["tokens"] <= data["budget_tokens"]
    nobody = json.loads(out(run_cli("memory", "recall", "favourite colour", "--user", "carol",
                                    "--json")))  # fmt: skip
    assert nobody["facts"] == [] and nobody["turns"] == []


def test_export_json_and_markdown(run_cli, filled):
    data = json.loads(out(run_cli("memory", "export", "--user", "alice", "--format", "json")))
    assert data["user"] == "alice"
    assert [f["text"] for f in data["facts"]] == ["My favourite colour is teal."]
    turns = [t["text"] for s in data["sessions"] for t in s["turns"]]
    assert turns[0] == "Remember that my favourite colour is teal."
    assert "My dog Rex loves the beach" in turns
    markdown = out(run_cli("memory", "export", "--user", "alice", "--format", "markdown"))
    assert markdown.startswith("# Memory of alice")
    assert "## Facts" in markdown and "- My favourite colour is teal." in markdown
    human = run_cli("memory", "history", "--user", "alice")
    assert human.returncode == 0 and "Rex" in out(human)


def test_forget_refuses_without_yes_off_a_terminal_then_forgets_everything(run_cli, filled):
    refused = run_cli("memory", "forget", "--all", "--user", "alice")
    assert refused.returncode == 2 and "--yes" in err(refused)
    assert "teal" in out(run_cli("memory", "search", "teal", "--user", "alice", "--json"))
    done = run_cli("memory", "forget", "--all", "--user", "alice", "--yes", "--json")
    assert done.returncode == 0, err(done)
    assert json.loads(out(done))["removed"] == {"sessions": 2, "turns": 3, "facts": 1}
    search = json.loads(out(run_cli("memory", "search", "teal", "--user", "alice", "--json")))
    assert search["results"] == []
    assert "crimson" in out(run_cli("memory", "search", "crimson", "--user", "bob", "--json"))
    with Store(default_store_path(), readonly=True) as store:
        assert store.query("PRAGMA freelist_count") == [(0,)]


def test_forget_one_fact_or_session_only_of_the_user(run_cli, filled):
    with Store(default_store_path(), readonly=True) as store:
        bob_fact = store.facts("bob")[0].id
        alice_fact = store.facts("alice")[0].id
        bob_session = store.sessions("bob")[0]["id"]
    other = run_cli("memory", "forget", "--fact", str(bob_fact), "--user", "alice", "--yes")
    assert other.returncode == 1 and err(other).startswith("Error:")
    other = run_cli("memory", "forget", "--session", str(bob_session), "--user", "alice", "--yes")
    assert other.returncode == 1
    both = run_cli("memory", "forget", "--fact", "1", "--all", "--user", "alice", "--yes")
    assert both.returncode == 2
    mine = run_cli("memory", "forget", "--fact", str(alice_fact), "--user", "alice", "--yes")
    assert mine.returncode == 0, err(mine)
    with Store(default_store_path(), readonly=True) as store:
        assert store.facts("alice") == []
        assert len(store.facts("bob")) == 1 and len(store.sessions("bob")) == 2


def test_forget_asks_on_a_terminal(filled):
    primary, secondary = os.openpty()
    os.write(primary, b"y\n")
    result = subprocess.run(
        [sys.executable, "-m", "perslm_voice", "memory", "forget", "--all", "--user", "alice"],
        stdin=secondary, capture_output=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    os.close(primary)
    os.close(secondary)
    assert result.returncode == 0, result.stderr.decode()
    assert "Forget every turn and fact of alice?" in result.stderr.decode()
    with Store(default_store_path(), readonly=True) as store:
        assert store.turns("alice") == [] and store.turns("bob")


def test_profile_commands(run_cli):
    created = run_cli("profile", "set", "carol", "--name", "Carol", "--language", "fr",
                      "--rate", "1.2", "--pref", "coffee=black", "--json")  # fmt: skip
    assert created.returncode == 0, err(created)
    assert json.loads(out(created))["display_name"] == "Carol"
    shown = run_cli("profile", "show", "carol")
    assert shown.returncode == 0 and "Carol" in out(shown) and "coffee=black" in out(shown)
    run_cli("profile", "set", "--user", "dave", "--address-as", "Dave", "--pref", "coffee=")
    listed = json.loads(out(run_cli("profile", "list", "--json")))
    assert [p["user_id"] for p in listed] == ["carol", "dave"]
    assert listed[0]["preferences"] == {"coffee": "black"} and listed[0]["speaking_rate"] == 1.2
    bad = run_cli("profile", "set", "carol", "--pref", "nonsense")
    assert bad.returncode == 2 and "KEY=VALUE" in err(bad)
    bad_user = run_cli("profile", "show", "../etc")
    assert bad_user.returncode == 2
    assert run_cli("profile", "delete", "carol").returncode == 2  # not a terminal, no --yes
    assert run_cli("profile", "delete", "carol", "--yes").returncode == 0
    gone = json.loads(out(run_cli("profile", "show", "carol", "--json")))
    assert gone["stored"] is False and gone["display_name"] is None
    assert run_cli("profile", "delete", "nobody", "--yes").returncode == 1


def test_a_corrupt_store_is_one_error_line_and_left_alone(run_cli):
    path = default_store_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all\n")
    for args in (
        ("memory", "history"),
        ("profile", "list"),
        ("memory", "forget", "--all", "--yes"),
    ):
        result = run_cli(*args, "--user", "alice") if args[0] == "memory" else run_cli(*args)
        assert result.returncode == 1
        lines = err(result).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and str(path) in lines[0]
    assert path.read_bytes() == b"not a database at all\n"


def test_memory_path_from_the_config_file(run_cli, tmp_path):
    store_file = tmp_path / "elsewhere.db"
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"memory:\n  path: {store_file}\n")
    result = run_cli("profile", "set", "erin", "--name", "Erin", "--config", str(config_file))
    assert result.returncode == 0, err(result)
    assert store_file.exists() and not default_store_path().exists()
