"""What keeps the hooks inside their budget (docs/BENCHMARKS.md, sections 4 and 6), as
behaviour: a hook imports what its work needs and nothing more, and its process ends without
the interpreter's teardown once its answer is out. Timings themselves are the benchmark's."""

import os
import stat
import subprocess

import pytest

from helpers import run_cli
from store.redis_server import Monitor, tcp_redis_server  # noqa: F401 - a fixture

# README, "Architecture": nothing on a hook's path imports these.
HEAVY_STDLIB = {"re", "json", "argparse", "subprocess", "dataclasses", "enum"}
LOCK_MACHINERY = {"sessionward.locks", "sessionward._lockfile", "sessionward.store.local_locks"}


def imported(ran) -> set:
    """The modules a hook run with PYTHONPROFILEIMPORTTIME=1 imported (its stderr)."""
    assert ran.rc == 0, ran
    names = set()
    for line in ran.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    assert "sessionward.hooks" in names, ran.stderr  # the switch reached the hook
    return names


def test_a_session_without_locks_never_imports_the_lock_machinery(sessions, store_backend):
    # Every prompt and turn end runs UserPromptSubmit and Stop; a session alone, with no lock
    # held anywhere, has no use for sessionward.locks (it used to come with the registry). On
    # the shared store too: Stop reads the end lock's key in the MGET of the registry's
    # version (store.registry_version_and_lock).
    a = sessions(0)
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    runs = [a.start(**profile), a.prompt(**profile), a.stop(**profile)]
    if store_backend == "local":  # SessionEnd on the shared store still loads them (its lock release)
        runs.append(a.end(**profile))
    for ran in runs:
        names = imported(ran)
        assert not names & (LOCK_MACHINERY | {"sessionward.store.redis_locks"}), ran.stderr
        assert not names & HEAVY_STDLIB, names & HEAVY_STDLIB


def test_a_heartbeat_soon_after_a_whole_one_loads_nothing_of_the_registry(sessions, store_backend):
    # heartbeat_memo: a prompt or a turn's end within HEARTBEAT_REFRESH_S of a whole heartbeat
    # (or of the session's registration) by its owner, with the registry unchanged since, has
    # nothing to do. It asks the store for the registry's version (a stat, or one MGET) and
    # reads its memo: neither the registry nor the store's backend module is loaded, nobody is
    # judged alive or dead (identity/test_life.py: a killed watcher pair still starts again).
    a, b = sessions(0), sessions(1)
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}

    def skipped(ran) -> bool:
        names = imported(ran)
        assert "sessionward.identity.life" in names  # the owner's watcher pair checked all the same
        return not names & {"sessionward.registry", "sessionward.store.local", "sessionward.store.redis_registry"}

    a.start()
    assert skipped(a.prompt(**profile))  # the first prompt after a start (`claude -p`)
    b.start()  # another session registers: the registry changed
    assert not skipped(a.stop(**profile))  # whole again, and remembered
    assert skipped(a.prompt(**profile)) and skipped(a.stop(**profile))
    b.prompt()  # another session's heartbeat with nothing to write changes nothing...
    assert skipped(a.prompt(**profile))
    b.end()  # ...its end does
    assert not skipped(a.prompt(**profile))


def test_a_file_tool_outside_the_drafts_directory_does_not_load_the_drafts_module(sessions, project):
    # Every Write, Edit and Read asks whether its file is a draft (paths.is_in_drafts_dir);
    # only a draft needs sessionward.drafts (the Write into it makes its directory private).
    a = sessions(0)
    a.start()
    path = os.path.join(project, "plain.txt")
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    for ran in (a.pre_write(path, **profile), a.write(path, **profile)):
        names = imported(ran)
        assert "sessionward.claims" in names and "sessionward.drafts" not in names, sorted(names)


def test_a_permission_request_imports_only_what_noting_activity_needs(sessions, payloads):
    # It runs as a permission dialog opens, while the person waits for the dialog: one small
    # activity write, nothing of the registry, claims or locks.
    a = sessions(0)
    a.start()
    asked = dict(payloads.get("2.1.331", "permission", "04-PermissionRequest"), session_id=a.session_id, cwd=a.cwd)
    ran = a.hook("PermissionRequest", asked, env={"PYTHONPROFILEIMPORTTIME": "1"})
    names = imported(ran)
    assert "sessionward.activity" in names and "sessionward.hooks.permission_request" in names
    assert not names & HEAVY_STDLIB, names & HEAVY_STDLIB
    assert not names & (LOCK_MACHINERY | {"sessionward.registry", "sessionward.claims"}), sorted(names)


def test_an_orphaned_lock_is_still_cleaned_at_session_start(sessions, state_dir):
    # The shortcut above is taken only when no NAME.lock (nor a temp of one) exists: an
    # orphaned end.lock and the temp a dead acquire left are still removed at SessionStart.
    # (Stop's release of a forgotten end lock: test_payloads.py.)
    a = sessions(0)
    a.start()
    dead = _dead_pid()
    (state_dir / "end.lock").write_text(f"{dead}\n")
    temp = state_dir / f".end.lock.{dead}.0badc0de.tmp"
    temp.write_text(f"{dead}\n")
    ran = a.start(source="resume", PYTHONPROFILEIMPORTTIME="1")
    assert LOCK_MACHINERY <= imported(ran)
    assert not (state_dir / "end.lock").exists() and not temp.exists()


def test_a_hook_process_ends_without_the_interpreters_teardown(sessions, tmp_path):
    # An atexit handler (installed through a sitecustomize on PYTHONPATH) runs at an ordinary
    # interpreter exit; a hook, once its answer is flushed, leaves with os._exit: the
    # teardown (freeing every module, a few milliseconds) is time Claude Code waits for.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, os\n"
        "atexit.register(lambda: open(os.environ['SWB_TORN_DOWN'], 'a').write('torn down\\n'))\n"
    )
    hook_mark, command_mark = tmp_path / "hook-exit", tmp_path / "command-exit"
    a, b = sessions(0), sessions(1)
    a.start()
    ran = b.start(PYTHONPATH=str(site), SWB_TORN_DOWN=str(hook_mark))
    assert ran.rc == 0 and ran.json["hookSpecificOutput"]["additionalContext"], ran  # the answer is out whole
    assert not hook_mark.exists()

    listed = run_cli("list", env=dict(os.environ, PYTHONPATH=str(site), SWB_TORN_DOWN=str(command_mark)))
    assert listed.returncode == 0, listed.stderr
    assert command_mark.read_text() == "torn down\n"  # the control: the handler runs at a normal exit


def test_a_hook_process_runs_without_the_cyclic_garbage_collector(sessions, tmp_path):
    # A gc callback (installed through a sitecustomize) notes every collection. The imports of
    # a hook alone trigger a few (about 0.7 ms, docs/BENCHMARKS.md): a hook disables the
    # collector before them; a command keeps it (`watch` and `lock run` live long).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import gc, os\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and open(os.environ['SWB_GC'], 'a').write('gc\\n'))\n"
    )
    hook_mark, command_mark = tmp_path / "hook-gc", tmp_path / "command-gc"
    a = sessions(0)
    env = {"PYTHONPATH": str(site), "SWB_GC": str(hook_mark)}
    for ran in (a.start(**env), a.prompt(**env), a.stop(**env)):
        assert ran.rc == 0, ran
    assert not hook_mark.exists()
    listed = run_cli("list", env=dict(os.environ, PYTHONPATH=str(site), SWB_GC=str(command_mark)))
    assert listed.returncode == 0, listed.stderr
    assert command_mark.exists()  # the control: a command's imports do collect


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_lock_files_present_sees_lock_files_and_their_temps_only(tmp_path):
    from sessionward import paths

    top = tmp_path / "top"
    assert not paths.lock_files_present(str(top))  # no state directory yet: nothing held
    top.mkdir(mode=0o700)
    (top / "obsidian_sessions.json").write_text("{}")
    (top / ".obsidian_sessions.json.12.abcd.tmp").write_text("{}")
    (top / "sessionward").mkdir()
    assert not paths.lock_files_present(str(top))
    (top / ".end.lock.12.abcd.tmp").write_text("12\n")
    assert paths.lock_files_present(str(top))
    os.unlink(top / ".end.lock.12.abcd.tmp")
    (top / "vim.lock").write_text("x")  # another tool's: the cleanup then looks, and leaves it
    assert paths.lock_files_present(str(top))
    os.chmod(top, 0)
    try:
        if not os.access(top, os.R_OK):  # root reads it anyway
            assert paths.lock_files_present(str(top))  # cannot tell: let the cleanup look
    finally:
        os.chmod(top, stat.S_IRWXU)


def test_the_git_guard_runs_git_only_for_a_sweep(sessions, project):
    # A whole-tree move in a shared worktree asks without a git process (no subprocess import);
    # a sweep there runs one `git status` to learn whose files it would take.
    a, b = sessions(0), sessions(1)
    a.start()
    b.start()
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    ran = b.pre_bash("git checkout -b topic", **profile)
    assert ran.json["hookSpecificOutput"]["permissionDecision"] == "ask"
    assert not imported(ran) & HEAVY_STDLIB - {"json"}, imported(ran) & HEAVY_STDLIB
    assert "subprocess" in imported(b.pre_bash("git add -A", **profile))


def test_a_heartbeat_imports_neither_the_configuration_nor_the_event_log(sessions):
    # Every prompt and turn end: with no sessionward.toml, the store setting is the default
    # without importing sessionward.config, and a heartbeat that swept nobody logs nothing
    # (so sessionward.eventlog is not loaded), nor formats a path (the end lock is free).
    a = sessions(0)
    a.start()
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    for ran in (a.prompt(**profile), a.stop(**profile)):
        names = imported(ran)
        assert not names & {"sessionward.config", "sessionward.eventlog", "sessionward._humanize"}, names


def test_no_hook_loads_a_hash_module_it_has_no_use_for(sessions, project, store_backend):
    # A hook that reads or writes the shared store sends its scripts whole (resp.Script: no
    # SHA-1 to compute) and compares a claim record by its bytes, not its SHA-1: no hash
    # module loaded, about 0.1 ms each. Only a file's digest (a claim's state: _blake2) needs one.
    a = sessions(0)
    path = os.path.join(project, "hashed.txt")
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    for ran in (a.start(**profile), a.prompt(**profile), a.pre_write(path, **profile), a.write(path, **profile),
                a.stop(**profile)):
        names = imported(ran)
        assert not names & {"_sha1", "_sha256", "_md5", "hashlib", "_hashlib"}, sorted(names)


def test_on_the_shared_store_no_hook_loads_the_local_files_store(sessions, project, store_backend):
    # The records' rules both backends share live in store.records: a hook on the shared
    # store loads nothing of the local files' store (store.local, store.local_claims), about
    # 0.15 ms. Locally they are what the registering, claiming and guarding hooks work with.
    local_files = {"sessionward.store.local", "sessionward.store.local_claims"}
    a, b = sessions(0), sessions(1)
    path = os.path.join(project, "remote.txt")
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    ran = [a.start(**profile), b.start(**profile), a.prompt(**profile), a.pre_write(path, **profile),
           a.write(path, **profile), b.pre_write(path, **profile), a.stop(**profile)]
    loaded = set().union(*(imported(each) & local_files for each in ran))
    assert loaded == (local_files if store_backend == "local" else set()), sorted(loaded)


@pytest.fixture
def tcp_store(tcp_redis_server, monkeypatch):  # noqa: F811 - the fixture
    """A redis-server of the test's own on 127.0.0.1, as the store of the hooks started after it."""
    monkeypatch.setenv("SESSIONWARD_STORE", tcp_redis_server.tcp_url)
    return tcp_redis_server


def test_on_the_shared_store_a_session_start_beside_another_asks_the_server_twice(sessions, tcp_store):
    # One read and one write. Whether a lock is held, which the answer naming the other session
    # needs, comes with the read (redis_registry, shared.LOCKS_HELD_LUA); it was a call of its
    # own, two once any lock had ever been taken. Each is a wait on the server, and on a busy
    # machine each wait pays a scheduling delay: SessionStart on the shared store sat at the
    # edge of its budget inside Claude Code (docs/BENCHMARKS.md, section 6).
    a, b = sessions(0), sessions(1)
    assert a.start().rc == 0
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    run_cli("lock", "release", "end", "--pid", str(a.pid), check=True)  # "end" is a known name now
    with Monitor(tcp_store) as seen:
        ran = b.start()
    assert ran.rc == 0 and "1 other session in this worktree" in ran.stdout, ran
    assert seen.by_client_of(":registry:guard") == ["EVAL", "EVAL"], seen.sent


def test_on_the_shared_store_a_turns_end_asks_the_server_once(sessions, tcp_store):
    # Stop at every turn's end: the registry's version (is the heartbeat due?) and whether the
    # end lock is held (a forgotten release?) in one MGET; it was an MGET, then an EXISTS.
    a = sessions(0)
    assert a.start().rc == 0 and a.prompt().rc == 0
    with Monitor(tcp_store) as seen:
        assert a.stop().rc == 0
    assert seen.by_client_of(":registry:version") == ["MGET"], seen.sent
