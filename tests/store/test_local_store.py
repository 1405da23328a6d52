"""The local store: atomic replacement, private files, corrupt documents kept aside."""

import json
import os
import stat
import subprocess
import sys

import pytest

from sessionward._atomic import WRITE_STEPS
from sessionward.errors import RegistryLockTimeout, StateCorrupt, StateTooNew, UnsafeState
from sessionward.store.local import SCHEMA, LocalStore

from helpers import hold_flock, run_cli


def record(rid: str, pid: int, **extra) -> dict:
    rec = {
        "id": rid, "session_id": None, "kind": "shell", "project": "p", "project_key": "dir:/tmp",
        "project_explicit": True, "worktree": "/tmp", "branch": None, "cwd": "/tmp",
        "owner": {"pid": pid, "start_time": None, "host": None, "boot_id": None, "comm": "sleep"},
        "started_at": 1.0, "last_seen": 1.0, "holds": [],
    }
    rec.update(extra)
    return rec


def put(store: LocalStore, *records):
    def change(sessions):
        for rec in records:
            sessions[rec["id"]] = rec
        return None, True
    store.update_sessions(change)


def test_files_are_private_and_the_lock_file_is_permanent(state_dir, keeper):
    store = LocalStore()
    put(store, record("a", keeper))
    put(store, record("b", keeper))
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state_dir / "sessionward").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.registry_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.lock_path).st_mode) == 0o600
    doc = json.loads(open(store.registry_path).read())
    assert doc["schema"] == SCHEMA and set(doc["sessions"]) == {"a", "b"}
    assert sorted(os.listdir(state_dir)) == ["obsidian_sessions.json", "sessionward"]


def test_update_without_change_does_not_write(keeper):
    store = LocalStore()
    put(store, record("a", keeper))
    before = os.stat(store.registry_path).st_ino
    assert store.update_sessions(lambda s: ("same", False)) == "same"
    assert os.stat(store.registry_path).st_ino == before


@pytest.mark.parametrize("step", WRITE_STEPS)
def test_crash_at_each_write_step_leaves_old_or_new_document(step, keeper, state_dir):
    store = LocalStore()
    put(store, record("old", keeper))
    code = (
        "from sessionward.store.local import LocalStore\n"
        "import json\n"
        f"rec = json.loads({json.dumps(json.dumps(record('new', keeper)))})\n"
        "def change(s):\n    s[rec['id']] = rec\n    return None, True\n"
        "LocalStore().update_sessions(change)\n"
    )
    env = dict(os.environ, SESSIONWARD_TEST_CRASH_AT=step)
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 91
    ids = set(json.loads(open(store.registry_path).read())["sessions"])
    assert ids == ({"old"} if step.startswith("temp") else {"old", "new"})
    # the lock died with the process: the next update goes through
    put(store, record("after", keeper))


CORRUPTIONS = {
    "truncated": lambda good: good[: len(good) // 2],
    "garbage": lambda good: b"\x00\xffnot json at all",
    "wrong-schema": lambda good: json.dumps({"schema": "other/1", "sessions": {}}).encode(),
    "empty": lambda good: b"",
    "array": lambda good: b"[1, 2, 3]",
    "sessions-not-object": lambda good: json.dumps({"schema": SCHEMA, "sessions": [1]}).encode(),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_registry_is_kept_aside_reported_and_replaced(kind, keeper, state_dir):
    store = LocalStore()
    put(store, record("a", keeper))
    bad = CORRUPTIONS[kind](open(store.registry_path, "rb").read())
    with open(store.registry_path, "wb") as f:
        f.write(bad)

    fresh = LocalStore()
    assert fresh.load_sessions() == {}
    [notice] = fresh.notices
    assert isinstance(notice, StateCorrupt)
    assert open(notice.kept_as, "rb").read() == bad  # kept, byte for byte
    assert os.path.dirname(notice.kept_as) == str(state_dir)
    assert stat.S_IMODE(os.stat(notice.kept_as).st_mode) == 0o600
    # a fresh, valid registry is in place and works
    put(fresh, record("b", keeper))
    assert set(LocalStore().load_sessions()) == {"b"}


def test_malformed_records_are_salvaged_around(keeper, state_dir, registry_file):
    state_dir.mkdir(mode=0o700)
    store = LocalStore()
    good = record("good", keeper)
    doc = {"schema": SCHEMA, "sessions": {"good": good, "bad": {"id": "bad", "owner": "nope"}}}
    registry_file.write_text(json.dumps(doc))
    assert set(store.load_sessions()) == {"good"}
    [notice] = store.notices
    assert notice.salvaged == 1 and "1 malformed session record" in notice.why
    assert json.loads(open(notice.kept_as).read()) == doc


@pytest.mark.parametrize("odd", ["\\ud800", "\\uDC80"])
def test_a_record_with_a_lone_surrogate_escape_is_salvaged_around(odd, keeper, state_dir, registry_file):
    # Found by tests/torture/test_hostile_input.py: such a record decoded fine but could never
    # be written back as UTF-8, so every later write failed with an internal error.
    state_dir.mkdir(mode=0o700)
    good = record("good", keeper)
    text = json.dumps({"schema": SCHEMA, "sessions": {"good": good, "odd": record("odd", keeper, project="ODD")}})
    text = text.replace('"ODD"', f'"x{odd}"')
    registry_file.write_text(text)
    store = LocalStore()
    assert set(store.load_sessions()) == {"good"}
    [notice] = store.notices
    assert notice.salvaged == 1 and "1 malformed session record" in notice.why
    assert open(notice.kept_as).read() == text
    put(store, record("new", keeper))  # writes work again
    assert set(store.load_sessions()) == {"good", "new"}
    pair = text.replace(odd, "\\ud83d\\ude00")  # a surrogate pair is one character: a good record
    registry_file.write_text(pair)
    assert set(LocalStore().load_sessions()) == {"good", "odd"}


def test_corrupt_registry_through_the_cli_is_one_line_and_exit_3(registry_file, state_dir):
    state_dir.mkdir(mode=0o700)
    registry_file.write_bytes(b'{"schema": "sessionward/1", "sess')
    result = run_cli("list")
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith(f"sessionward: {registry_file} was corrupt (invalid JSON")
    assert "kept as" in line and "started a fresh one" in line
    assert result.stdout == "no live sessions\n"
    assert run_cli("list").returncode == 0  # reported once; the fresh registry is fine


def test_newer_schema_is_refused_untouched(registry_file, state_dir):
    state_dir.mkdir(mode=0o700)
    newer = b'{"schema": "sessionward/7", "sessions": {}}'
    registry_file.write_bytes(newer)
    with pytest.raises(StateTooNew):
        LocalStore().load_sessions()
    result = run_cli("list")
    assert result.returncode == 3
    assert "newer than this sessionward understands" in result.stderr
    assert registry_file.read_bytes() == newer
    assert [p for p in os.listdir(state_dir) if "corrupt" in p] == []


def test_registry_that_is_a_directory_is_refused(registry_file, state_dir):
    registry_file.mkdir(parents=True)
    result = run_cli("list")
    assert result.returncode == 3
    assert result.stderr == f"sessionward: refusing state path {registry_file}: it is not a regular file; move it away: mv {registry_file} {registry_file}.bad\n"
    assert registry_file.is_dir()


def test_registry_that_is_a_symlink_is_refused_and_its_target_untouched(registry_file, state_dir, tmp_path):
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text("precious")
    registry_file.symlink_to(target)
    for args in (["list"], ["register", "p", str(tmp_path)]):
        result = run_cli(*args)
        assert result.returncode == 3, args
        assert "it is a symlink" in result.stderr
    assert target.read_text() == "precious" and registry_file.is_symlink()


def test_fifo_at_the_registry_path_does_not_hang(registry_file, state_dir):
    state_dir.mkdir(mode=0o700)
    os.mkfifo(registry_file)
    result = run_cli("list")
    assert result.returncode == 3 and "not a regular file" in result.stderr


def test_symlinked_private_dir_is_refused(state_dir, tmp_path):
    state_dir.mkdir(mode=0o700)
    (tmp_path / "other").mkdir(mode=0o700)
    (state_dir / "sessionward").symlink_to(tmp_path / "other")
    result = run_cli("register", "p", str(tmp_path))
    assert result.returncode == 3 and "it is a symlink" in result.stderr
    assert os.listdir(tmp_path / "other") == []


def test_group_writable_state_dir_is_refused(state_dir, tmp_path):
    state_dir.mkdir()
    os.chmod(state_dir, 0o777)
    result = run_cli("register", "p", str(tmp_path))
    assert result.returncode == 3
    assert "writable by group or others" in result.stderr and "chmod 700" in result.stderr


def test_origin_unversioned_registry_is_upgraded(registry_file, state_dir, keeper):
    state_dir.mkdir(mode=0o700)
    legacy = {"sessions": [{"pid": keeper, "project": "windsurf-project", "cwd": "/tmp", "started": 1700000000}]}
    registry_file.write_text(json.dumps(legacy))
    sessions = LocalStore().load_sessions()
    [rec] = sessions.values()
    assert (rec["project"], rec["owner"]["pid"], rec["started_at"]) == ("windsurf-project", keeper, 1700000000.0)
    put(LocalStore(), record("x", keeper))
    doc = json.loads(registry_file.read_text())
    assert doc["schema"] == SCHEMA and set(doc["sessions"]) == {f"legacy-{keeper}", "x"}


def test_lock_timeout_names_the_file(state_dir, keeper):
    store = LocalStore(lock_timeout_s=0.2)
    put(store, record("a", keeper))
    holder = hold_flock(store.lock_path)
    try:
        with pytest.raises(RegistryLockTimeout) as info:
            put(store, record("b", keeper))
        assert store.lock_path in str(info.value)
        assert isinstance(info.value, TimeoutError)
    finally:
        holder.kill()
        holder.wait()
    put(store, record("b", keeper))  # the holder's death released it


def test_symlink_at_lock_path_is_refused(state_dir, tmp_path, keeper):
    (state_dir / "sessionward").mkdir(parents=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    (state_dir / "sessionward" / "registry.lock").symlink_to(tmp_path / "x")
    with pytest.raises(UnsafeState):
        put(LocalStore(), record("a", keeper))
    assert not (tmp_path / "x").exists()


def test_oversized_registry_is_kept_aside(registry_file, state_dir, monkeypatch):
    import sessionward._atomic as atomic

    state_dir.mkdir(mode=0o700)
    registry_file.write_bytes(b" " * 2048)
    monkeypatch.setattr(atomic, "MAX_STATE_FILE_BYTES", 1024)
    store = LocalStore()
    assert store.load_sessions() == {}
    [notice] = store.notices
    assert "larger than any state file" in notice.why
    assert os.path.getsize(notice.kept_as) == 2048


def test_state_dir_that_is_a_file_names_it_for_readers_too(tmp_path, monkeypatch):
    plant = tmp_path / "plant"
    plant.write_text("x")
    monkeypatch.setenv("SESSIONWARD_HOME", str(plant))
    for args in (["list"], ["lock", "status"]):
        result = run_cli(*args)
        assert result.returncode == 3
        assert result.stderr == (f"sessionward: refusing state path {plant}: it is not a directory; "
                                 "move it away or set SESSIONWARD_HOME\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_registry_owned_by_another_user_is_refused_untouched(registry_file, state_dir, keeper):
    put(LocalStore(), record("a", keeper))
    before = registry_file.read_bytes()
    os.chown(registry_file, 65534, 65534)
    with pytest.raises(UnsafeState, match="belongs to uid 65534"):
        LocalStore().load_sessions()
    with pytest.raises(UnsafeState, match="belongs to uid 65534"):
        put(LocalStore(), record("b", keeper))
    assert registry_file.read_bytes() == before and os.stat(registry_file).st_uid == 65534


def test_a_child_forked_inside_a_transaction_does_not_commit(state_dir, keeper):
    from sessionward.store.local import StoreForked

    store = LocalStore()

    def change(sessions):
        sessions["a"] = record("a", keeper)
        child = os.fork()
        if child == 0:
            return None, True
        statuses.append(os.waitpid(child, 0)[1])
        return None, False

    statuses = []
    # The child of the fork returns into update_sessions: it must refuse to write and leave.
    parent = os.getpid()
    try:
        store.update_sessions(change)
    except StoreForked:
        assert os.getpid() != parent
        os._exit(0)
    if os.getpid() != parent:
        os._exit(1)  # the child committed
    assert statuses == [0] and not (state_dir / "obsidian_sessions.json").exists()
