"""What a hostile user, model or file tries, through the real CLI on real files: each class of
attack from issue 16 (part A) has its test here. The property-based fuzzing is in test_fuzz.py."""

from __future__ import annotations

import json

import pytest

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


# --- configuration: bombs, floods, wrong kinds of path ------------------------------------------


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each level lists the one below ``width`` times (9**9 strings)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_without_expanding_it(run_cli, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    # Before: the merge and validation walked all 387 million strings (hours, gigabytes). The
    # timeout is a guard against that hang, not a measurement.
    result = run_cli("config", "show", "--config", str(bomb), timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        f"Error: {bomb}: expands to more than 10,000 values (nested YAML aliases?); a configuration"
        " has about 100: remove the anchors (&) and aliases (*)"
    ]


def test_an_alias_that_contains_itself_or_deep_nesting_is_refused(run_cli, tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("llm: &x\n  model: *x\n")
    result = run_cli("config", "show", "--config", str(loop), timeout=60)
    assert result.returncode == 2
    assert "a YAML alias refers to a node that contains it" in result.stderr.decode()
    deep = tmp_path / "deep.yaml"
    deep.write_text("llm: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_cli("config", "show", "--config", str(deep), timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        f"Error: {deep}: nested too deeply to be a configuration"
    ]


def test_thousands_of_unknown_keys_give_a_bounded_error(run_cli, tmp_path):
    flood = tmp_path / "flood.yaml"
    flood.write_text("llm:\n" + "".join(f"  key{i}: 1\n" for i in range(5000)))
    result = run_cli("config", "show", "--config", str(flood), timeout=120)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 21 and lines[-1] == "       ... and 4,980 more problems"
    assert lines[0].startswith("Error: llm.key0: unknown key")


def test_a_huge_value_is_quoted_short_in_the_error(run_cli, tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text(f"llm:\n  backend: {'x' * 1_000_000}\n")
    result = run_cli("config", "show", "--config", str(config))
    assert result.returncode == 2
    assert len(result.stderr) < 600 and "(1,000,002 characters)" in result.stderr.decode()


def test_a_user_config_path_that_is_a_folder_is_an_error(run_cli, isolated_home):
    (isolated_home / "config" / "config.yaml").mkdir(parents=True)
    result = run_cli("config", "show")
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        f"Error: {isolated_home / 'config' / 'config.yaml'}: is a directory, not a config file"
    )


def test_a_home_that_is_a_file_is_an_error_and_doctor_fails(run_cli, tmp_path):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    env = {"PERSLM_VOICE_HOME": str(home)}
    expected = (
        f"PERSLM_VOICE_HOME={home} is a file, not a folder: point it at a folder (it is created"
        " if missing) or unset it"
    )
    for args in (("config", "show"), ("memory", "history", "--user", "a")):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, args
        assert result.stderr.decode().splitlines() == [f"Error: {expected}"], args
    doctor = run_cli("doctor", "--json", env=env)
    assert doctor.returncode == 1
    assert json.loads(doctor.stdout)["checks"] == [
        {
            "name": "user files",
            "status": "fail",
            "detail": expected,
            "fix": "unset PERSLM_VOICE_HOME or point it at a folder",
        }
    ]


# --- clean errors instead of "unexpected ..." ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("memory", "history", "--limit", "100000000000000000000"),
        ("memory", "history", "--session", "100000000000000000000"),
        ("memory", "search", "x", "--limit", "100000000000000000000"),
        ("memory", "forget", "--fact", "100000000000000000000", "--yes"),
        ("stats", "--last", "100000000000000000000"),
    ],
)
def test_out_of_range_integers_are_usage_errors(run_cli, args):
    result = run_cli(*args, "--user", "a")
    assert result.returncode == 2, result.stderr
    err = result.stderr.decode()
    assert "100000000000000000000 is not in the range 1<=x<=9223372036854775807" in err
    assert "unexpected" not in err


def test_an_unwritable_log_file_is_a_usage_error(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("--log-file", str(blocker / "x.log"), "--input-mode", "text", input="")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        f"Error: logging.file / --log-file: cannot write {blocker / 'x.log'} (not a directory):"
        " choose a file in a folder you can write"
    ]


def test_a_profile_voice_or_language_is_checked_when_set(run_cli):
    from perslm_voice.config import Config
    from perslm_voice.tts import create_tts

    voice = run_cli("profile", "set", "ann", "--voice", "nosuch")
    assert voice.returncode == 2
    (line,) = voice.stderr.decode().splitlines()
    assert line.startswith("Error: --voice 'nosuch': ") and "valid choices: " in line
    language = run_cli("profile", "set", "ann", "--language", "klingon")
    assert language.returncode == 2
    assert "valid choices: ar, de, en, es, fr," in language.stderr.decode()
    assert json.loads(run_cli("profile", "show", "ann", "--json").stdout)["stored"] is False

    tts = create_tts(Config().tts)
    real_voice = tts.list_voices()[0]
    ok = run_cli("profile", "set", "ann", "--voice", real_voice, "--language", "fr-CA", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["voice_id"] == real_voice


# --- secrets and file modes ---------------------------------------------------------------------

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"


def test_secrets_in_config_values_and_urls_are_masked_everywhere(run_cli, tmp_path, free_port):
    config = tmp_path / "c.yaml"
    config.write_text(
        "llm:\n"
        "  backend: openai\n"
        f"  base_url: http://bob:hunter2@127.0.0.1:{free_port}/v1\n"  # nothing listens there
        "  model: gsk_abcdefghijklmnopqrstuvwxyz\n"
        f"  api_key_env: {KEY}\n"  # the key pasted where its variable's name belongs
        "  timeout: 2\n"
    )
    env = {"MY_SERVICE_TOKEN": "tok-1234567"}
    shown = run_cli("config", "show", "--config", str(config), env=env | WIDE)
    as_json = run_cli("config", "show", "--config", str(config), "--json", env=env)
    doctor = run_cli("doctor", "--config", str(config), "--json", env=env)
    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr
    data = json.loads(as_json.stdout)
    assert data["llm.base_url"]["value"] == f"http://***@127.0.0.1:{free_port}/v1"
    assert data["llm.model"]["value"] == "***"
    assert data["llm.api_key_env"]["value"] == "*** (a key? name the variable that holds it)"
    assert f"http://***@127.0.0.1:{free_port}/v1" in shown.stdout.decode()
    llm_checks = [c for c in json.loads(doctor.stdout)["checks"] if "***@127.0.0.1" in c["detail"]]
    assert llm_checks, doctor.stdout  # the doctor names the server it tried, without the password
    # A value quoted back in an error, and a secret environment variable's value anywhere.
    config.write_text("llm:\n  preset: http://bob:hunter2@example.com/v1\n  model: tok-1234567\n")
    bad = run_cli("config", "show", "--config", str(config), env=env)
    assert bad.returncode == 2 and b"'http://***@example.com/v1'" in bad.stderr
    for out in (shown.stdout, as_json.stdout, doctor.stdout, doctor.stderr, bad.stderr):
        for secret in (b"hunter2", KEY.encode(), b"gsk_abcdefghijklmnop", b"tok-1234567"):
            assert secret not in out


@pytest.fixture
def free_port():
    from servers import free_port

    return free_port()


def test_a_log_file_is_private_and_holds_no_secret(tmp_path, monkeypatch):
    import logging
    import stat

    from perslm_voice import logs

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "new" / "deeper" / "debug.log"
    logs.setup("debug", path)
    try:
        logging.getLogger("perslm_voice.test").debug(
            "POST http://bob:hunter2@127.0.0.1/v1 with %s and Bearer %s",
            KEY,
            "abcdefghijklmnopqrstu",
        )
        logging.getLogger("perslm_voice.test").debug("prompt: %s", HOSTILE)
    finally:
        logs.setup("warning")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    text = path.read_text()
    assert "POST http://***@127.0.0.1/v1 with *** and ***" in text
    assert "hunter2" not in text and KEY not in text
    # A log is read on a terminal too: its control characters are visible escapes.
    assert "prompt: \\x1b]0;pwned\\x07" in text and "\x1b" not in text


def test_user_folders_are_private(run_cli, isolated_home):
    import stat

    assert run_cli("profile", "set", "ann", "--name", "Ann").returncode == 0
    for folder in (isolated_home / "data",):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    db = isolated_home / "data" / "perslm-voice.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_store_the_user_made_read_only_is_read_not_chmodded_or_called_damaged(
    run_cli, isolated_home
):
    import stat

    from perslm_voice.errors import StoreError

    db = isolated_home / "data" / "perslm-voice.db"
    with Store(db) as store:
        store.add_turn(store.start_session("ann"), "ann", "user", "my dog is Rex")
    db.chmod(0o400)

    with Store(db) as store:
        assert store.readonly and "is read-only (mode 400)" in (store.read_only_reason or "")
        assert [t.text for t in store.turns("ann")] == ["my dog is Rex"]
        with pytest.raises(StoreError, match=r"read-only \(mode 400\).*chmod u\+w"):
            store.add_fact("ann", "my cat is Tom")
    history = run_cli("memory", "history", "--user", "ann", "--json")
    assert [t["text"] for t in json.loads(history.stdout)["turns"]] == ["my dog is Rex"]
    forget = run_cli("memory", "forget", "--all", "--yes", "--user", "ann")
    assert forget.returncode == 1
    assert forget.stderr.decode().splitlines() == [
        f"Error: the store {db} is read-only (mode 400): memory is read, nothing is written;"
        f" chmod u+w {db} to let perslm-voice write it"
    ]
    doctor = json.loads(run_cli("doctor", "--json").stdout)
    (check,) = [c for c in doctor["checks"] if c["name"] == "memory store"]
    assert check["status"] == "warn" and "read-only" in check["detail"]
    assert stat.S_IMODE(db.stat().st_mode) == 0o400  # as the user left it


# --- the store: forgetting while a session runs -------------------------------------------------


def test_forget_all_while_a_session_runs_keeps_the_sessions_later_turns(run_cli, isolated_home):
    db = isolated_home / "data" / "perslm-voice.db"
    with Store(db) as session_store:  # the running session's connection
        session = session_store.start_session("ann")
        session_store.add_turn(session, "ann", "user", "before the forgetting")
        forget = run_cli("memory", "forget", "--all", "--yes", "--user", "ann")
        assert forget.returncode == 0, forget.stderr
        # Another user's new session must not take the forgotten session's id meanwhile.
        other = session_store.start_session("bob")
        assert other != session
        session_store.add_turn(session, "ann", "user", "after the forgetting")
        session_store.add_turn(session, "ann", "assistant", "still heard")
        session_store.add_turn(other, "bob", "user", "bob's own turn")
    history = json.loads(run_cli("memory", "history", "--user", "ann", "--json").stdout)
    assert [(t["session_id"], t["text"]) for t in history["turns"]] == [
        (session, "after the forgetting"),
        (session, "still heard"),
    ]
    bob = json.loads(run_cli("memory", "history", "--user", "bob", "--json").stdout)
    assert [t["text"] for t in bob["turns"]] == ["bob's own turn"]


# --- unreadable audio files ---------------------------------------------------------------------


def unreadable_files(folder):
    import wave

    files = {
        "empty.wav": b"",
        "text.wav": b"these are my notes, renamed to look like audio\n" * 20,
        "random.wav": bytes(range(256)) * 40,
        "random.mp3": __import__("numpy").random.default_rng(0).bytes(30000),
        # A WAV header with a rate of 0 that FFmpeg opens and "decodes" to nothing (found by
        # tests/test_fuzz.py).
        "broken-header.wav": b"RIFF\x00\x00\x00\x00WAVEfmt \x0f\x00\x00\x00\x01\x00\x01\x00"
        b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00data\x00\x00\x00\x00\x00",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with wave.open(str(folder / "no-samples.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    return sorted(folder.glob("*"))


def test_an_unreadable_audio_file_is_refused_when_opened(tmp_path, run_cli):
    from perslm_voice.audio import FileSource
    from perslm_voice.errors import AudioFileError

    folder = tmp_path / "audio"
    folder.mkdir()
    for path in unreadable_files(folder):
        with pytest.raises(AudioFileError, match=f"^{path}: (the file|not a readable audio file)"):
            FileSource(path)
    for name in ("text.wav", "random.mp3"):  # one line: no decoder's notes on stderr before it
        result = run_cli("transcribe", str(folder / name))
        assert result.returncode == 1
        assert result.stderr.decode().splitlines() == [
            f"Error: {folder / name}: not a readable audio file (supported: WAV, FLAC, AIFF,"
            " MP3, OGG and what FFmpeg reads)"
        ]
