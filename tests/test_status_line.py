"""The status line: one row saying who else works here, from whatever Claude Code sends."""

import json
import os
import signal
import time

import pytest

from sessionward import registry
from sessionward.hooks.status_line import status_row
from sessionward.identity import resolve_owner
from sessionward.locks import Holder, NamedLock

from helpers import git, hold_flock, make_git_repo, run_cli


@pytest.fixture
def repo(tmp_path):
    return make_git_repo(tmp_path / "proj")


@pytest.fixture
def plain(tmp_path, monkeypatch):
    """A directory outside git, made the current directory."""
    path = tmp_path / "somewhere"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def me():
    """The session this row is for: the test's parent process, named by CLAUDE_PID (an ancestor
    of the caller, so resolve_owner trusts it)."""
    return resolve_owner(os.getppid())


@pytest.fixture
def env(me):
    return {"CLAUDE_PID": str(me.pid)}


def payload(cwd, **extra) -> bytes:
    return json.dumps({"session_id": "x", "workspace": {"current_dir": str(cwd)}, **extra}).encode()


_names = iter(())


@pytest.fixture(autouse=True)
def _session_names():
    """Sessions registered without a session id get o1, o2, ... (short ids are shown whole)."""
    global _names
    _names = (f"o{n}" for n in range(1, 100))


def register(owner, cwd, session=None):
    return registry.register_session(str(cwd), owner=owner, session_id=session or next(_names))


# -- input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"", b"   \n", b"\xff\xfe garbage", b"{not json", b"[1, 2]", b'"text"', b"null",
    b"[" * 100_000 + b"]" * 100_000,  # too deep for the parser
    b'{"workspace": "x", "cwd": 5}',
    b'{"workspace": {"current_dir": "relative/dir"}}',
    b'{"workspace": {"current_dir": "/does/not/exist"}}',
    b'{"cwd": "/a\\u0000b"}',
], ids=["empty", "blank", "bytes", "broken", "list", "string", "null", "deep", "wrong types",
        "relative", "missing dir", "nul"])
def test_unusable_input_falls_back_to_the_current_directory(plain, env, raw):
    assert status_row(raw, env) == "sessionward: no other session on somewhere"


def test_workspace_current_dir_is_used(plain, repo, env):
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj"


def test_cwd_is_used_without_a_workspace(plain, repo, env):
    assert status_row(json.dumps({"cwd": str(repo)}).encode(), env) == "sessionward: main · no other session on proj"


def test_workspace_wins_over_cwd(plain, repo, env):
    raw = json.dumps({"cwd": str(plain), "workspace": {"current_dir": str(repo)}}).encode()
    assert status_row(raw, env) == "sessionward: main · no other session on proj"


# -- counts ------------------------------------------------------------------------------------


def test_counts_sessions_in_this_worktree_and_elsewhere_on_the_project(tmp_path, repo, env, owners):
    linked = tmp_path / "proj-feature"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "feature")
    unrelated = make_git_repo(tmp_path / "unrelated")
    register(owners(), repo)
    register(owners(), repo / ".")
    register(owners(), linked)
    register(owners(), unrelated)
    assert status_row(payload(repo), env) == "sessionward: main · 2 other sessions in this worktree (o1, o2) · 1 on proj elsewhere (o3)"
    assert status_row(payload(linked), env) == "sessionward: feature · 1 other session in this worktree (o3) · 2 on proj elsewhere (o1, o2)"
    assert status_row(payload(unrelated), env) == "sessionward: main · 1 other session in this worktree (o4)"


def test_ids_are_listed_only_when_few(repo, env, owners):
    for _ in range(3):
        register(owners(), repo)
    assert status_row(payload(repo), env) == "sessionward: main · 3 other sessions in this worktree (o1, o2, o3)"
    register(owners(), repo)
    assert status_row(payload(repo), env) == "sessionward: main · 4 other sessions in this worktree"


def test_long_session_ids_are_shown_short(repo, env, owners):
    register(owners(), repo, session="aaaa1111-2222-3333-4444-555566667777")
    assert status_row(payload(repo), env) == "sessionward: main · 1 other session in this worktree (aaaa1111)"


def test_only_elsewhere(tmp_path, repo, env, owners):
    linked = tmp_path / "proj-b"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "b")
    register(owners(), linked)
    register(owners(), linked)
    assert status_row(payload(repo), env) == "sessionward: main · 2 on proj elsewhere (o1, o2)"


def test_a_subdirectory_counts_as_its_worktree(repo, env, owners):
    (repo / "src").mkdir()
    register(owners(), repo)
    assert status_row(payload(repo / "src"), env) == "sessionward: main · 1 other session in this worktree (o1)"


def test_my_own_session_is_not_counted(repo, env, me, owners):
    register(me, repo, session="mine")
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj"
    register(owners(), repo)
    assert status_row(payload(repo), env) == "sessionward: main · 1 other session in this worktree (o1)"


def test_dead_sessions_are_not_counted_and_not_swept(repo, env, owners, state_dir):
    other = owners()
    register(other, repo)
    assert status_row(payload(repo), env) == "sessionward: main · 1 other session in this worktree (o1)"
    os.kill(other.pid, signal.SIGKILL)
    os.waitpid(other.pid, 0)
    before = (state_dir / "obsidian_sessions.json").read_bytes()
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj"
    assert (state_dir / "obsidian_sessions.json").read_bytes() == before  # read only: the next hook sweeps


def test_without_a_resolvable_owner_everyone_is_counted(repo, owners, monkeypatch):
    import sessionward.identity as identity

    register(owners(), repo)

    def fail(**kwargs):
        raise RuntimeError("no owner")

    monkeypatch.setattr(identity, "resolve_owner", fail)
    assert status_row(payload(repo), {}) == "sessionward: main · 1 other session in this worktree (o1)"


def test_the_registry_lock_is_never_waited_for(repo, env, owners, state_dir):
    register(owners(), repo)
    holder = hold_flock(state_dir / "sessionward" / "registry.lock")
    try:
        started = time.monotonic()
        assert status_row(payload(repo), env) == "sessionward: main · 1 other session in this worktree (o1)"
        assert time.monotonic() - started < 1.0
    finally:
        holder.kill()
        holder.wait()


# -- the end lock ------------------------------------------------------------------------------


def test_end_lock_holder_is_shown_by_short_session_id(repo, env, owners):
    other = owners()
    NamedLock("end", holder=Holder.session_owner(other), owner=other, session_id="bbbbbbbb-1111-2222-3333",
              cwd=str(repo)).acquire(timeout=1)
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj · end held by bbbbbbbb for <1m"


def test_end_lock_holder_short_id_is_shown_whole(repo, env, owners):
    other = owners()
    NamedLock("end", holder=Holder.session_owner(other), owner=other, session_id="s-1234", cwd=str(repo)).acquire(timeout=1)
    register(other, repo)
    assert status_row(payload(repo), env) == "sessionward: main · 1 other session in this worktree (o1) · end held by s-1234 for <1m"


def test_end_lock_holder_without_session_is_shown_by_pid(repo, env, owners):
    other = owners()
    NamedLock("end", holder=Holder.session_owner(other), owner=other, cwd=str(repo)).acquire(timeout=1)
    assert status_row(payload(repo), env) == f"sessionward: main · no other session on proj · end held by pid {other.pid} for <1m"


def test_end_lock_written_by_the_origins_scripts_is_shown_by_pid(repo, env, owners, state_dir):
    other = owners()
    state_dir.mkdir(mode=0o700, exist_ok=True)
    (state_dir / "end.lock").write_text(f"{other.pid}\n")  # no holder annex
    assert status_row(payload(repo), env) == f"sessionward: main · no other session on proj · end held by pid {other.pid} for <1m"


def test_end_lock_held_by_me_says_this_session(repo, env, me):
    NamedLock("end", holder=Holder.session_owner(me), owner=me, session_id="mine-123456789", cwd=str(repo)).acquire(timeout=1)
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj · end held by this session for <1m"


def test_end_lock_held_by_a_command_of_my_session_says_this_session(repo, env, me, owners):
    command = owners()  # `lock run`: the command's PID is in end.lock, the session is mine
    NamedLock("end", holder=Holder(command, reentrant=False), owner=me, session_id="mine-123456789",
              cwd=str(repo)).acquire(timeout=1)
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj · end held by this session for <1m"


def test_an_orphaned_end_lock_is_not_shown(repo, env, owners):
    other = owners()
    NamedLock("end", holder=Holder.session_owner(other), owner=other, cwd=str(repo)).acquire(timeout=1)
    os.kill(other.pid, signal.SIGKILL)
    os.waitpid(other.pid, 0)
    assert status_row(payload(repo), env) == "sessionward: main · no other session on proj"


# -- the command -------------------------------------------------------------------------------


def test_the_status_line_command_prints_the_row(repo, owners):
    register(owners(), repo)
    result = run_cli("status-line", input=payload(repo).decode(), cwd=str(repo))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "sessionward: main · 1 other session in this worktree (o1)\n"


def test_a_shared_store_that_does_not_answer_is_the_row_and_exit_0(repo, tmp_path, monkeypatch):
    """Claude Code shows nothing of a status line command that exits non-zero: the row that
    says the store is down (so the guards are not guarding) must come with exit 0."""
    monkeypatch.setenv("SESSIONWARD_STORE", f"unix://{tmp_path}/no-server.sock")
    result = run_cli("status-line", input=payload(repo).decode(), cwd=str(repo))
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout == (f"sessionward: not guarding: shared store unix://{tmp_path}/no-server.sock unavailable "
                             f"(no socket file {tmp_path}/no-server.sock)\n")


def test_a_store_setting_it_cannot_use_is_the_row_not_a_traceback(repo, tmp_path, monkeypatch):
    """A problem sessionward knows (here a store it has no backend for: every hook fails open
    with it) is said in the row, as the hooks say it, not "status line failed" with a
    traceback logged."""
    monkeypatch.setenv("SESSIONWARD_STORE", "redis:/one-slash")
    result = run_cli("status-line", input=payload(repo).decode(), cwd=str(repo))
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout == ("sessionward: not guarding: SESSIONWARD_STORE='redis:/one-slash': "
                             "expected 'local' or a redis://, rediss:// or unix:// URL\n")
    assert not os.path.exists(os.path.join(os.environ["SESSIONWARD_HOME"], "sessionward", "errors.log"))
