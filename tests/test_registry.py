"""The registry API: idempotent registration, the three conflict levels, sweeping."""

import os
import subprocess
import time

import pytest

from sessionward import registry
from sessionward.errors import BadInput, NotRegistered
from sessionward.identity import resolve_owner
from sessionward.store import open_store

from helpers import git, make_git_repo

pytestmark = pytest.mark.usefixtures("store_backend")  # registry semantics, on every store backend


@pytest.fixture
def checkouts(tmp_path):
    repo = make_git_repo(tmp_path / "webapp")
    feature = tmp_path / "webapp-feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(feature))
    other = make_git_repo(tmp_path / "notes")
    return str(repo), str(feature), str(other)


def test_register_is_idempotent_for_the_same_owner(owners, tmp_path):
    owner = owners()
    first = registry.register_session(str(tmp_path), "proj", owner=owner)
    second = registry.register_session(str(tmp_path), "proj", owner=owner)
    assert first.created and not second.created
    assert second.session["id"] == first.session["id"]
    assert second.session["started_at"] == first.session["started_at"]
    assert len(open_store().load_sessions()) == 1


def test_register_is_idempotent_for_the_same_session_id(owners, tmp_path):
    owner = owners()
    registry.register_session(str(tmp_path), session_id="abc-123", owner=owner)
    again = registry.register_session(str(tmp_path), session_id="abc-123", owner=owner)
    assert not again.created and again.session["id"] == "abc-123"
    assert list(open_store().load_sessions()) == ["abc-123"]


def test_same_session_id_in_two_processes_keeps_both(owners, tmp_path):
    one, two = owners(), owners()
    registry.register_session(str(tmp_path), session_id="resumed", owner=one)
    registry.register_session(str(tmp_path), session_id="resumed", owner=two)
    sessions = open_store().load_sessions()
    assert set(sessions) == {"resumed", f"resumed.{two.pid}"}
    assert all(rec["session_id"] == "resumed" for rec in sessions.values())


def test_record_fields(owners, checkouts):
    webapp, _, _ = checkouts
    owner = owners()
    rec = registry.register_session(webapp, owner=owner, now=1000.0).session
    assert rec["project"] == "webapp" and not rec["project_explicit"]
    assert rec["project_key"] == "git:" + os.path.join(webapp, ".git")
    assert (rec["worktree"], rec["branch"], rec["cwd"]) == (webapp, "main", webapp)
    assert rec["owner"]["pid"] == owner.pid and rec["owner"]["start_time"] == owner.start_time
    assert (rec["started_at"], rec["last_seen"], rec["holds"]) == (1000.0, 1000.0, [])
    assert rec["kind"] == "other"  # owner is `sleep`: neither claude nor a shell


def test_three_conflict_levels(owners, checkouts):
    webapp, feature, notes = checkouts
    me, same_tree, other_tree, other_project = owners(), owners(), owners(), owners()
    registry.register_session(webapp, owner=me)
    ids = {
        registry.register_session(webapp, owner=same_tree).session["id"]: registry.LEVEL_STRONG,
        registry.register_session(feature, owner=other_tree).session["id"]: registry.LEVEL_WARNING,
        registry.register_session(notes, owner=other_project).session["id"]: registry.LEVEL_INFO,
    }
    result = registry.find_conflicts(cwd=webapp, owner=me)
    assert {c.other["id"]: c.level for c in result.conflicts} == ids
    assert [c.level for c in result.conflicts] == ["strong", "warning", "info"]  # strongest first
    assert result.has_conflict and result.level == "strong"


def test_only_other_projects_is_no_conflict(owners, checkouts):
    webapp, _, notes = checkouts
    me, other = owners(), owners()
    registry.register_session(notes, owner=other)
    result = registry.find_conflicts(cwd=webapp, owner=me)
    assert [c.level for c in result.conflicts] == ["info"]
    assert not result.has_conflict


def test_explicit_project_name_matches_by_name(owners, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    me, other = owners(), owners()
    registry.register_session(str(b), "windsurf-project", owner=other)
    result = registry.find_conflicts("windsurf-project", str(a), owner=me)
    assert [c.level for c in result.conflicts] == ["warning"]
    assert [c.level for c in registry.find_conflicts("elsewhere", str(a), owner=me).conflicts] == ["info"]


def test_unrelated_repos_with_the_same_directory_name_are_not_one_project(owners, tmp_path):
    one = make_git_repo(tmp_path / "work" / "app")
    two = make_git_repo(tmp_path / "oss" / "app")
    me, other = owners(), owners()
    registry.register_session(str(two), owner=other)
    assert [c.level for c in registry.find_conflicts(cwd=str(one), owner=me).conflicts] == ["info"]


def test_caller_own_session_is_not_a_conflict(owners, tmp_path):
    me = owners()
    registry.register_session(str(tmp_path), owner=me)
    assert registry.find_conflicts(cwd=str(tmp_path), owner=me).conflicts == []


def test_dead_owner_is_swept_by_every_operation(owners, tmp_path):
    me = owners()
    doomed_proc = subprocess.Popen(["sleep", "600"])
    doomed = resolve_owner(doomed_proc.pid)
    rid = registry.register_session(str(tmp_path), owner=doomed).session["id"]
    doomed_proc.kill()
    doomed_proc.wait()
    assert [d.record["id"] for d in registry.find_dead_sessions()] == [rid]
    assert rid in open_store().load_sessions()  # find_dead_sessions changed nothing
    live, swept = registry.load_live_sessions()
    assert live == [] and [d.record["id"] for d in swept] == [rid]
    assert swept[0].reason == f"process {doomed.pid} is gone"
    assert open_store().load_sessions() == {}
    registry.register_session(str(tmp_path), owner=me)


def test_live_owner_is_never_swept_however_old(owners, tmp_path):
    owner = owners()
    registry.register_session(str(tmp_path), owner=owner, now=time.time() - 30 * 86400)
    assert registry.prune_dead_sessions() == []
    assert len(registry.load_live_sessions()[0]) == 1


def test_unregister_by_pid_session_and_self(owners, tmp_path):
    a, b, c = owners(), owners(), owners()
    registry.register_session(str(tmp_path), owner=a)
    registry.register_session(str(tmp_path), session_id="sess-b", owner=b)
    rc = registry.register_session(str(tmp_path), owner=c).session["id"]
    assert [r["owner"]["pid"] for r in registry.unregister_sessions(pid=a.pid).removed] == [a.pid]
    assert [r["id"] for r in registry.unregister_sessions(session_id="sess-b").removed] == ["sess-b"]
    assert [r["id"] for r in registry.unregister_sessions(owner=c).removed] == [rc]
    assert registry.unregister_sessions(pid=a.pid).removed == []
    assert open_store().load_sessions() == {}


def test_unregister_by_pid_leaves_the_same_pid_on_another_machine(owners, tmp_path, store_backend):
    """`unregister PID` names a process of this machine; with a shared store another
    machine's session may have the same PID (and PID namespace inode): it stays."""
    here = owners()
    elsewhere = registry.resolve_owner(here.pid)
    elsewhere.boot_id, elsewhere.hostname = "0badb007-0000-4000-8000-00000000beef", "devbox"
    if store_backend == "redis":  # alive there: its watcher (on devbox) would renew its lease
        from sessionward.identity.life import life_key
        from sessionward.store import redis_lives, shared, shared_url

        key = life_key(elsewhere.boot_id, elsewhere.pidns, elsewhere.pid, elsewhere.start_time)
        redis_lives.renew(shared.connection(shared_url()), shared.prefix(), key, 60000)
    registry.register_session(str(tmp_path), session_id="there", owner=elsewhere)
    registry.register_session(str(tmp_path), session_id="here", owner=here)
    assert [r["id"] for r in registry.unregister_sessions(pid=here.pid).removed] == ["here"]
    assert list(open_store().load_sessions()) == ["there"]


def test_heartbeat(owners, tmp_path):
    owner, stranger = owners(), owners()
    registry.register_session(str(tmp_path), owner=owner, now=100.0)
    [rec] = registry.heartbeat(owner=owner, now=200.0)
    assert rec["last_seen"] == 200.0 and rec["started_at"] == 100.0
    with pytest.raises(NotRegistered):
        registry.heartbeat(owner=stranger)


@pytest.mark.parametrize("name", ["", "   ", "a" * 129, "bad\x07name", "with/slash", "back\\slash", "..", "tab\tname", "nl\nname", "c1\x85"])
def test_bad_project_names(name):
    with pytest.raises(BadInput):
        registry.validate_project_name(name)


def test_project_name_limits_are_inclusive():
    assert registry.validate_project_name("a" * 128) == "a" * 128
    assert registry.validate_project_name("Projet été") == "Projet été"


@pytest.mark.parametrize("cwd", ["", "relative/dir", "/definitely/not/here", "/etc/hostname", "/tmp/\0x"])
def test_bad_cwd(cwd):
    with pytest.raises(BadInput):
        registry.validate_cwd(cwd)


def test_check_without_cwd_stands_where_the_caller_registered(owners, checkouts, monkeypatch, tmp_path):
    webapp, feature, _ = checkouts
    me, other = owners(), owners()
    registry.register_session(webapp, owner=me)
    registry.register_session(feature, owner=other)
    monkeypatch.chdir(tmp_path)  # somewhere unrelated
    result = registry.find_conflicts(owner=me)
    assert result.context.worktree == webapp
    assert [c.level for c in result.conflicts] == ["warning"]
    # a caller with no session stands in the current directory
    stranger = owners()
    assert registry.find_conflicts(owner=stranger).context.worktree == str(tmp_path)


def test_without_session_id_the_owners_keyed_record_is_refreshed(owners, tmp_path):
    # A hook registered the Claude session by its id; `register` from a shell of the same
    # Claude process (old Claude Code: no CLAUDE_CODE_SESSION_ID) must not add a second one.
    claude = owners()
    registry.register_session(str(tmp_path), session_id="abc", owner=claude)
    again = registry.register_session(str(tmp_path), owner=claude)
    assert not again.created and again.session["id"] == "abc"
    assert list(open_store().load_sessions()) == ["abc"]


def test_a_stopped_owner_is_alive_and_shown_stopped(tmp_path, keeper):
    import signal

    from sessionward.identity import read_process

    from helpers import run_cli

    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), check=True)
    os.kill(keeper, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while read_process(keeper).state not in "Tt":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        listed = run_cli("list", check=True).stdout.splitlines()
        assert len(listed) == 2 and listed[1].split("\t")[4] == f"{keeper} (stopped)", listed
        checked = run_cli("check", "--cwd", str(tmp_path)).stdout
        assert f"pid {keeper} (stopped)" in checked, checked
    finally:
        os.kill(keeper, signal.SIGCONT)
