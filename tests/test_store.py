"""The store on real SQLite files: opening, migrations, refusals, durability, concurrency, incognito."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perslm_voice.errors import StoreError
from perslm_voice.memory import Store, default_store_path
from perslm_voice.memory import migrations as mig

ROOT = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_path_is_under_home_and_private(isolated_home):
    store = Store()
    store.close()
    path = default_store_path()
    assert path.is_relative_to(isolated_home)
    for name in (path, Path(f"{path}-wal")):
        if name.exists():
            assert stat.S_IMODE(name.stat().st_mode) & 0o077 == 0, name
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    numbers = [row[0] for row in db.execute("SELECT number FROM schema_migrations ORDER BY 1")]
    assert numbers == [number for number, _, _ in mig.MIGRATIONS]


def test_not_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    before = digest(path)
    with pytest.raises(StoreError, match=str(path)):
        Store(path)
    with pytest.raises(StoreError, match=str(path)):
        Store(path, readonly=True)
    assert digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_damaged_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "store.db"
    with Store(path) as store:
        store.add_turn(store.start_session("alice"), "alice", "user", "hello")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wipe the schema page, keep the header
    path.write_bytes(bytes(data))
    before = digest(path)
    with pytest.raises(StoreError, match=str(path)):
        Store(path)
    assert digest(path) == before


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    assert [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")] == [
        "invoices"
    ]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "store.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_migrations VALUES (999, 'm999_future', 0)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"newer than this perslm-voice knows.*upgrade"):
        Store(path)
    with pytest.raises(StoreError, match="newer"):
        Store(path, readonly=True)


def make_v1_store(path: Path) -> None:
    """A store as the first release wrote it: migration 1 only, with some turns."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE schema_migrations"
        " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for statement in mig._statements(mig.m001_users_sessions_turns()):
        db.execute(statement)
    db.execute("INSERT INTO schema_migrations VALUES (1, 'm001_users_sessions_turns', 0)")
    db.execute("INSERT INTO users VALUES ('alice', 0)")
    db.execute("INSERT INTO sessions (id, user_id, started_at) VALUES (1, 'alice', 0)")
    db.execute(
        "INSERT INTO turns (session_id, user_id, role, text, started_at, ended_at)"
        " VALUES (1, 'alice', 'user', 'My dog is called Rex', 0, 0)"
    )
    db.close()


def test_old_store_upgrades_in_place_and_indexes_old_turns(tmp_path):
    path = tmp_path / "store.db"
    make_v1_store(path)
    with Store(path) as store:
        assert [t.text for t in store.turns("alice")] == ["My dog is called Rex"]
        assert [r.text for r in store.recall("alice", "what is my dog called", 5)] == [
            "My dog is called Rex"
        ]
        assert store.get_profile("alice").user_id == "alice"
        assert store.add_fact("alice", "My cat is Tom.") > 0
    numbers = {r[0] for r in sqlite3.connect(path).execute("SELECT number FROM schema_migrations")}
    assert numbers == {number for number, _, _ in mig.MIGRATIONS}


def test_incognito_reads_an_old_store_without_writing_it(tmp_path):
    path = tmp_path / "store.db"
    make_v1_store(path)
    before = digest(path)
    with Store(path, readonly=True) as store:
        assert [r.text for r in store.recall("alice", "dog", 5)] == ["My dog is called Rex"]
    assert digest(path) == before


def test_incognito_writes_nothing(tmp_path):
    path = tmp_path / "store.db"
    with Store(path) as store:
        store.set_profile("alice", display_name="Alice", language="fr")
        store.add_fact("alice", "My favourite colour is teal.")
    before = digest(path)
    with Store(path, readonly=True) as store:
        assert store.readonly
        assert store.get_profile("alice").display_name == "Alice"
        assert store.get_profile("newcomer").user_id == "newcomer"  # defaults, not stored
        assert [f.text for f in store.facts("alice")] == ["My favourite colour is teal."]
        for write in (
            lambda: store.start_session("alice"),
            lambda: store.add_fact("alice", "secret"),
            lambda: store.set_profile("alice", language="de"),
            lambda: store.forget_all("alice"),
        ):
            with pytest.raises(StoreError, match="read-only"):
                write()
    assert digest(path) == before
    with Store(path) as store:
        assert store.users() == ["alice"]
        assert store.turns("alice") == []


def test_incognito_without_a_store_creates_no_file(tmp_path):
    path = tmp_path / "nowhere" / "store.db"
    with Store(path, readonly=True) as store:
        assert store.get_profile("alice").display_name is None
        assert store.recall("alice", "anything at all", 5) == []
    assert not path.parent.exists()


def test_profiles(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.list_profiles() == []
        default = store.get_profile("alice")
        assert (default.display_name, default.preferences) == (None, {})
        store.set_profile("alice", display_name="Alice", speaking_rate=1.2, preferences={"a": "1"})
        updated = store.set_profile("alice", address_as="Al", preferences={"b": "2", "a": None})
        assert updated.display_name == "Alice"
        assert updated.address_as == "Al"
        assert updated.speaking_rate == 1.2
        assert updated.preferences == {"b": "2"}
        assert updated.name_to_use == "Al"
        with pytest.raises(Exception, match="unknown profile field"):
            store.set_profile("alice", colour="teal")
        store.set_profile("bob", language="de")
        assert [p.user_id for p in store.list_profiles()] == ["alice", "bob"]


def test_delete_user_removes_all_their_data_only(tmp_path):
    with Store(tmp_path / "s.db") as store:
        for user in ("alice", "bob"):
            session = store.start_session(user)
            turn = store.add_turn(session, user, "user", f"{user} likes kayaking")
            store.add_fact(user, f"{user} likes kayaking", source_turn_id=turn)
        assert store.delete_user("alice")
        assert not store.delete_user("alice")
        assert store.users() == ["bob"]
        assert store.search("alice", "kayaking") == []
        assert [r.kind for r in store.search("bob", "kayaking")] == ["turn", "fact"]
        counts = store.query(
            "SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM facts),"
            " (SELECT count(*) FROM sessions), (SELECT count(*) FROM profiles)"
        )
        assert counts == [(1, 1, 1, 1)]


WRITER = textwrap.dedent(
    """
    import sys
    from perslm_voice.memory import Store
    store = Store(sys.argv[1])
    session = store.start_session(sys.argv[2])
    for i in range(int(sys.argv[3])):
        turn = store.add_turn(session, sys.argv[2], "user", f"turn number {i} " + "words " * 40)
        print(turn, flush=True)
    """
)


def test_kill_9_loses_nothing_committed(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "alice", "1000000"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    committed = []
    assert proc.stdout is not None
    for line in proc.stdout:
        committed.append(int(line))
        if len(committed) >= 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with Store(path) as store:
        assert store.query("PRAGMA integrity_check") == [("ok",)]
        stored = {t.id for t in store.turns("alice")}
        assert set(committed) <= stored
        assert store.query("INSERT INTO turns_fts(turns_fts) VALUES ('integrity-check')") == []


def test_two_sessions_of_one_user_write_at_once(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "alice", "300"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    with Store(path) as store:
        assert len(store.turns("alice")) == 600
        assert len(store.sessions("alice")) == 2
        assert store.query("PRAGMA integrity_check") == [("ok",)]
