"""What a hostile user, model or file tries, through the real CLI on real files: each class of
attack from issue 16 (part A) has its test here. The property-based fuzzing is in test_fuzz.py."""

from __future__ import annotations

import json

from perslm_voice.memory import Store
from perslm_voice.safetext import visible

# A title change (OSC 0), a screen clear and cursor home (CSI), Rich markup, an OSC-8 link whose
# words hide its address, a one-byte C1 CSI (U+009B), a carriage return and a right-to-left override.
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b[H[bold red]x[/] \x1b]8;;http://evil.example/\x1b\\click"
    "\x1b]8;;\x1b\\ \x9b31m red\rover \u202eevil"
)
MARKUP = "[bold red]x[/]"
WIDE = {"COLUMNS": "400"}  # so that Rich does not fold a table cell mid-sequence


def acts_on_a_terminal(out: bytes) -> list[str]:
    """The bytes a terminal would act on: ESC, BEL, CR, C1 controls, bidi overrides."""
    text = out.decode("utf-8")
    return sorted({c for c in text if c in "\x1b\x07\r\u202e" or 0x80 <= ord(c) <= 0x9F})


# --- terminal and display safety ---------------------------------------------------------------


def test_visible_keeps_the_text_and_shows_every_control():
    shown = visible(HOSTILE)
    assert acts_on_a_terminal(shown.encode()) == []
    assert shown.startswith("\\x1b]0;pwned\\x07\\x1b[2J")
    assert MARKUP in shown and "\\x9b31m" in shown and "\\u202eevil" in shown
    assert visible("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert visible("two\nlines", one_line=True) == "two\\x0alines"


def test_stored_text_is_shown_as_typed_in_memory_and_profile(run_cli, isolated_home):
    with Store(isolated_home / "data" / "perslm-voice.db") as store:
        session = store.start_session("eve")
        store.add_turn(session, "eve", "user", f"hello {HOSTILE}")
        store.add_turn(session, "eve", "assistant", f"reply {HOSTILE}", interrupted=True)
        store.add_fact("eve", f"fact {HOSTILE}")
    assert (
        run_cli("profile", "set", "eve", "--persona", HOSTILE, "--pref", f"k={HOSTILE}").returncode
        == 0
    )

    for args in (
        ("memory", "history", "--user", "eve"),
        ("memory", "search", "pwned", "--user", "eve"),
        ("memory", "recall", "pwned click", "--user", "eve"),
        ("memory", "export", "--user", "eve", "--format", "markdown"),
        ("profile", "show", "eve"),
        ("profile", "list"),
    ):
        result = run_cli(*args, env=WIDE)
        assert result.returncode == 0, result.stderr
        assert acts_on_a_terminal(result.stdout) == [], args
        assert MARKUP in result.stdout.decode(), args  # shown as typed, not made bold red
        assert "\\x1b]8;;http://evil.example/" in result.stdout.decode(), args  # the link shows

    history = run_cli("memory", "history", "--user", "eve", env=WIDE).stdout.decode()
    assert "[interrupted]" in history  # our own mark still shows, after the stored text
    # JSON keeps the data exactly: a script reads back what was stored, the terminal acts on none.
    exported_raw = run_cli("memory", "export", "--user", "eve").stdout
    profile_raw = run_cli("profile", "show", "eve", "--json").stdout
    assert acts_on_a_terminal(exported_raw) == [] and acts_on_a_terminal(profile_raw) == []
    assert json.loads(profile_raw)["persona"] == HOSTILE
    fact = json.loads(exported_raw)["facts"][0]["text"]
    assert fact.startswith("fact \x1b]0;pwned\x07") and fact.endswith("\x9b31m red over \u202eevil")


def test_config_show_and_errors_show_values_as_typed(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"llm": {"system_prompt": HOSTILE}}))
    shown = run_cli("config", "show", "--config", str(config), env=WIDE)
    assert shown.returncode == 0, shown.stderr
    assert acts_on_a_terminal(shown.stdout) == [] and MARKUP in shown.stdout.decode()

    config.write_text(json.dumps({"llm": {"backend": HOSTILE}}))
    bad = run_cli("config", "show", "--config", str(config))
    assert bad.returncode == 2
    assert acts_on_a_terminal(bad.stderr) == [] and MARKUP in bad.stderr.decode()
