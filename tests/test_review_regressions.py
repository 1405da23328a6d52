"""Regressions found in review: each test fails if its fix is undone."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from sessionward import registry
from sessionward._flock import flock_exclusive
from sessionward.identity import read_process, resolve_owner
from sessionward.store.local import LocalStore

from helpers import SESSIONWARD, cli_json, hold_flock, run_cli


def _forge(record_updates: dict, owner, tmp_path) -> str:
    """Register a session for `owner`, then edit its stored record; returns its id."""
    rid = registry.register_session(str(tmp_path), owner=owner).session["id"]

    def edit(sessions):
        rec = sessions[rid]
        for key, value in record_updates.items():
            if key.startswith("owner."):
                rec["owner"][key[6:]] = value
            else:
                rec[key] = value
        return None, True

    LocalStore().update_sessions(edit)
    return rid


# -- liveness through the registry ----------------------------------------------------------

def test_reused_pid_is_swept_by_the_registry(owners, tmp_path):
    owner = owners()
    rid = _forge({"owner.start_time": owner.start_time - 1}, owner, tmp_path)
    live, swept = registry.load_live_sessions()
    assert [d.record["id"] for d in swept] == [rid] and "was reused" in swept[0].reason


def test_zombie_owner_is_swept_by_the_registry(tmp_path):
    child = subprocess.Popen(["true"])
    while read_process(child.pid).state != "Z":
        time.sleep(0.01)
    info = read_process(child.pid)
    registry.register_session(str(tmp_path), owner=resolve_owner.__globals__["Owner"](info, "--pid"))
    swept = registry.load_live_sessions()[1]
    child.wait()
    assert len(swept) == 1 and "zombie" in swept[0].reason


def test_hostname_change_on_the_same_boot_keeps_a_live_session(owners, tmp_path):
    owner = owners()
    _forge({"owner.host": "old-hostname", "last_seen": time.time() - 10_000}, owner, tmp_path)
    live, swept = registry.load_live_sessions()
    assert swept == [] and len(live) == 1


def test_other_pid_namespace_without_a_watcher_is_unknown_never_swept_on_age(owners, tmp_path):
    owner = owners()
    fresh = _forge({"owner.pidns": 1, "owner.pid": 4000000, "owner.life": False}, owner, tmp_path)
    old = _forge({"owner.pidns": 1, "owner.pid": 4000000, "owner.life": False, "last_seen": time.time() - 10_000}, owners(), tmp_path)
    live, swept = registry.load_live_sessions()
    assert swept == [] and sorted(r["id"] for r in live) == sorted([fresh, old])


def test_other_kernel_is_unknown_never_swept_on_age(owners, tmp_path):
    owner = owners()
    _forge({"owner.host": "far", "owner.boot_id": "other-boot", "last_seen": time.time() - 10_000}, owner, tmp_path)
    live, swept = registry.load_live_sessions()
    assert swept == [] and len(live) == 1
    verdict = registry.session_liveness(live[0])
    assert not verdict.known and verdict.reason.startswith("unknown: on another kernel (far); last sign of life 2h46m ago")


def test_register_and_unregister_sweep_too(owners, tmp_path):
    for operation in (lambda o: registry.register_session(str(tmp_path), owner=o),
                      lambda o: registry.unregister_sessions(pid=1234567, owner=o)):
        doomed = subprocess.Popen(["sleep", "600"])
        registry.register_session(str(tmp_path), owner=resolve_owner(doomed.pid))
        doomed.kill()
        doomed.wait()
        result = operation(owners())
        assert len(result.swept) == 1 and result.swept[0].record["owner"]["pid"] == doomed.pid


# -- hostile registry values are salvaged, not crashes -----------------------------------------

@pytest.mark.parametrize("edit", [
    {"owner.pid": 99999999999}, {"owner.pid": 2147483648}, {"started_at": float("inf")},
    {"last_seen": float("-inf")}, {"cwd": "/tmp/\u0000x"}, {"owner.start_time": "12"},
])
def test_hostile_record_values_are_salvaged(edit, owners, tmp_path, registry_file):
    good = registry.register_session(str(tmp_path), owner=owners()).session["id"]
    bad_owner = owners()
    rid = registry.register_session(str(tmp_path), owner=bad_owner).session["id"]
    doc = json.loads(registry_file.read_text())
    for key, value in edit.items():
        if key.startswith("owner."):
            doc["sessions"][rid]["owner"][key[6:]] = value
        else:
            doc["sessions"][rid][key] = value
    registry_file.write_text(json.dumps(doc))  # json writes inf as Infinity: still ours to refuse
    result = run_cli("list", "--json")
    assert result.returncode == 3, result.stderr
    envelope = json.loads(result.stdout)
    assert [s["id"] for s in envelope["result"]["sessions"]] == [good]
    assert "1 malformed session record" in envelope["notices"][0] and result.stderr == ""


def test_odd_schema_version_is_corrupt_not_a_crash(registry_file, state_dir):
    state_dir.mkdir(mode=0o700)
    for schema in ("sessionward/²", "sessionward/" + "9" * 5000):
        registry_file.write_text(json.dumps({"schema": schema, "sessions": {}}))
        result = run_cli("list")
        assert result.returncode == 3 and "internal error" not in result.stderr, result.stderr


def test_crash_during_repair_loses_no_live_record(owners, tmp_path, registry_file, state_dir):
    live = registry.register_session(str(tmp_path), owner=owners()).session["id"]
    doc = json.loads(registry_file.read_text())
    doc["sessions"]["bad"] = {"id": "bad"}
    registry_file.write_text(json.dumps(doc))
    env = dict(os.environ, SESSIONWARD_TEST_CRASH_AT="temp-written")
    crashed = subprocess.run([SESSIONWARD, "list"], env=env, capture_output=True)
    assert crashed.returncode == 91
    assert live in json.loads(registry_file.read_text())["sessions"]  # still there, corrupt or not
    assert [s["id"] for s in cli_json("list")["result"]["sessions"]] == [live]
    kept = [p for p in os.listdir(state_dir) if ".corrupt-" in p]
    assert len(kept) == 2  # one per attempt; none overwritten


# -- sessions and owners --------------------------------------------------------------------

def test_unregister_by_session_id_spares_the_same_id_in_another_terminal(owners, tmp_path):
    a, b = owners(), owners()
    registry.register_session(str(tmp_path), session_id="resumed", owner=a)
    other = registry.register_session(str(tmp_path), session_id="resumed", owner=b).session["id"]
    assert other == f"resumed.{b.pid}"
    removed = registry.unregister_sessions(session_id="resumed", owner=a).removed
    assert [r["id"] for r in removed] == ["resumed"]
    assert [r["id"] for r in registry.load_live_sessions()[0]] == [other]
    assert run_cli("unregister", "--session", other).returncode == 0  # addressable


def test_register_is_idempotent_in_both_directions(owners, tmp_path):
    owner = owners()
    first = registry.register_session(str(tmp_path), owner=owner).session["id"]
    keyed = registry.register_session(str(tmp_path), session_id="abc-1", owner=owner).session
    assert keyed["id"] == "abc-1" and len(LocalStore().load_sessions()) == 1 and first != "abc-1"
    again = registry.register_session(str(tmp_path), owner=owner).session
    assert again["id"] == "abc-1" and again["session_id"] == "abc-1"
    assert len(LocalStore().load_sessions()) == 1


def test_a_caller_that_already_exited_is_refused_not_init(tmp_path):
    result = subprocess.run(
        ["bash", "-c", f"( sleep 0.3; {SESSIONWARD} register p {tmp_path} 2>{tmp_path}/err; echo $? > {tmp_path}/rc ) & exit 0"],
    )
    deadline = time.monotonic() + 10
    while not (tmp_path / "rc").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.05)
    assert (tmp_path / "rc").read_text().strip() == "2"
    assert "reparented to init" in (tmp_path / "err").read_text()
    assert result.returncode == 0


def test_deleted_current_directory_is_one_line_exit_2(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    result = subprocess.run(
        ["bash", "-c", f"cd {gone} && rmdir {gone} && {SESSIONWARD} register p; echo rc=$?; {SESSIONWARD} whoami; echo rc=$?"],
        capture_output=True, text=True)
    assert result.stdout.split() == ["rc=2", "rc=2"]
    assert result.stderr.count("the current directory no longer exists") == 2


def test_non_utf8_names_are_exit_2(tmp_path):
    odd = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    os.mkdir(odd)
    for argv in ([b"register", b"p", odd], [b"register", b"\xff", os.fsencode(str(tmp_path))], [b"check", b"--cwd", odd]):
        result = subprocess.run([os.fsencode(SESSIONWARD), *argv], capture_output=True)
        assert result.returncode == 2, (argv, result.stderr)
        assert b"is not valid UTF-8" in result.stderr and result.stderr.count(b"\n") == 1


@pytest.mark.parametrize("pid", ["4194305", "9999999999"])
def test_pid_beyond_pid_max_is_bad_input(pid):
    result = run_cli("whoami", "--pid", pid)
    assert result.returncode == 2 and "up to 4194304" in result.stderr


def test_huge_claude_pid_is_ignored(tmp_path):
    env = dict(os.environ, CLAUDE_PID="99999999999999999999")
    result = run_cli("whoami", "--json", env=env)
    assert result.returncode == 0 and json.loads(result.stdout)["result"]["resolved_via"] == "caller"


# -- the command line ------------------------------------------------------------------------

def test_a_closed_pipe_keeps_the_commands_exit_status(keeper, tmp_path):
    other = tmp_path / "o"
    other.mkdir()
    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), check=True)
    result = subprocess.run(["bash", "-c", f"{SESSIONWARD} check p --cwd {other} | true; echo ${{PIPESTATUS[0]}}"],
                            capture_output=True, text=True)
    assert result.stdout == "1\n"


def test_internal_error_with_json_is_an_envelope(monkeypatch, capsys, state_dir):
    from sessionward.cli import main as cli_main, sessions

    monkeypatch.setattr(sessions, "run_list", lambda values: 1 / 0)
    monkeypatch.delenv("SESSIONWARD_DEBUG", raising=False)
    assert cli_main.main(["list", "--json"]) == 3
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["ok"] is False and envelope["error"]["code"] == "internal_error"
    assert "ZeroDivisionError" in envelope["error"]["message"]


def test_private_dir_owned_by_another_user_is_refused(state_dir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    (state_dir / "sessionward").mkdir(parents=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    os.chown(state_dir / "sessionward", 65534, 65534)
    result = run_cli("register", "p", str(tmp_path))
    assert result.returncode == 3 and "it belongs to uid 65534" in result.stderr


def test_planted_registry_in_a_world_writable_dir_is_refused_on_read(state_dir):
    state_dir.mkdir()
    os.chmod(state_dir, 0o777)
    (state_dir / "obsidian_sessions.json").write_text('{"schema": "sessionward/1", "sessions": {}}')
    result = run_cli("list")
    assert result.returncode == 3 and "writable by group or others" in result.stderr


# -- the store under trouble -----------------------------------------------------------------

def test_reader_gets_the_live_view_when_the_sweep_cannot_be_written(owners, tmp_path):
    live = registry.register_session(str(tmp_path), owner=owners()).session["id"]
    doomed = subprocess.Popen(["sleep", "600"])
    registry.register_session(str(tmp_path), owner=resolve_owner(doomed.pid))
    doomed.kill()
    doomed.wait()
    store = LocalStore(lock_timeout_s=0.2)
    holder = hold_flock(store.lock_path)
    try:
        sessions, swept = registry.load_live_sessions(store)
    finally:
        holder.kill()
        holder.wait()
    assert [r["id"] for r in sessions] == [live] and swept == []
    assert "could not sweep 1 dead session(s) now" in store.notices[0]


def test_a_replaced_lock_file_is_not_trusted(owners, tmp_path, state_dir):
    """Holder A flocks registry.lock, then removes it; B creates a new one and holds it. An
    update waiting on A's inode must go on to wait for B's, not slip in beside B."""
    registry.register_session(str(tmp_path), owner=owners())
    store = LocalStore()
    released_at = tmp_path / "b-released"
    a = hold_flock(store.lock_path, then=(
        f"time.sleep(0.3); os.unlink({store.lock_path!r})\n"
        f"b = os.open({store.lock_path!r}, os.O_RDWR | os.O_CREAT)\nfcntl.flock(b, fcntl.LOCK_EX)\n"
        "os.close(fd)\ntime.sleep(0.5)\n"
        f"open({str(released_at)!r}, 'w').write(repr(time.monotonic()))\nos.close(b)\n"))
    try:
        store.update_sessions(lambda s: (None, True))
        done = time.monotonic()
    finally:
        a.kill()
        a.wait()
    assert released_at.exists() and done >= float(released_at.read_text())


def test_stray_temp_files_of_dead_writers_are_removed(owners, tmp_path, state_dir, keeper):
    registry.register_session(str(tmp_path), owner=owners())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stray = state_dir / f".obsidian_sessions.json.{dead.pid}.abcd1234.tmp"
    busy = state_dir / f".obsidian_sessions.json.{keeper}.abcd1234.tmp"
    stray.write_text("x")
    busy.write_text("x")
    registry.register_session(str(tmp_path), owner=owners())
    assert not stray.exists() and busy.exists()


# -- the flock wait -------------------------------------------------------------------------

def test_main_thread_waits_in_the_kernel_not_by_polling(tmp_path, monkeypatch):
    path = str(tmp_path / "k.lock")
    holder = hold_flock(path)
    threading.Timer(0.3, holder.kill).start()
    monkeypatch.setattr(time, "sleep", lambda s: (_ for _ in ()).throw(AssertionError("polled")))
    fd = os.open(path, os.O_RDWR)
    try:
        assert flock_exclusive(fd, 10) is True
    finally:
        os.close(fd)
        holder.wait()


def test_blocked_sigalrm_falls_back_to_polling_and_still_times_out(tmp_path):
    path = str(tmp_path / "b.lock")
    holder = hold_flock(path)
    code = (
        "import os, signal, time\nfrom sessionward._flock import flock_exclusive\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n"
        f"fd = os.open({path!r}, os.O_RDWR)\nstart = time.monotonic()\n"
        "print(flock_exclusive(fd, 0.3), round(time.monotonic() - start, 1))\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20).stdout.split()
    finally:
        holder.kill()
        holder.wait()
    assert out[0] == "False" and float(out[1]) < 5
