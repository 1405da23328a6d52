"""The status line as Claude Code runs it: `sh -c "<the command install wrote>"` with the
statusLine JSON on stdin, every few seconds. The row must change at the first refresh after
another session starts, ends, is killed (kill -9) or takes or releases the end lock, and
after a checkout or an edit of sessionward.toml; and the refreshes in between must be the
shell fast path (the cached row, no Python).

Sessions here are real processes: each is a shell that runs the commands the test sends it
(`sessionward register`, `lock acquire end`, ...) as its own children, so it is their owner,
as a person's shell is; the watcher that registration starts is real, and so is the kill."""

import json
import os
import signal
import subprocess
import time

import pytest

from sessionward.install.settings import our_status_line

from helpers import SESSIONWARD, git, make_git_repo

REFRESH_S = 3.0  # what install sets: the row must be current within one refresh


LOOP = 'while read -r cmd; do eval "$cmd" >/dev/null 2>&1; echo "done $?"; done\n'


class Session:
    """A shell that runs one command per line of its stdin, as the owner of a session (a
    script, not `sh -c`: a `sh -c` wrapper is never an owner, its parent would be)."""

    def __init__(self, cwd, env, name):
        self.name = name
        loop = os.path.join(env["HOME"], "session-loop.sh")
        with open(loop, "w") as f:
            f.write(LOOP)
        self.proc = subprocess.Popen(["sh", loop], cwd=str(cwd), env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, command: str) -> int:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("done "), line
        return int(line.split()[1])

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def world(tmp_path):
    repo = make_git_repo(tmp_path / "proj")
    linked = tmp_path / "proj-feature"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "feature")
    env = dict(os.environ, PATH=f"{os.path.dirname(SESSIONWARD)}:{os.environ['PATH']}")
    sessions = []

    def start(cwd, name):
        session = Session(cwd, env, name)
        sessions.append(session)
        assert session.run(f"sessionward register --quiet --session {name}") == 0
        return session

    yield repo, linked, env, start
    for session in sessions:
        session.kill()


def installed_command() -> str:
    return our_status_line(SESSIONWARD)["command"]


def status(cwd, env, session_id="mine-0000-1111-2222-3333", raw=None):
    """One refresh, as Claude Code does it: the row, and whether the fast path answered (the
    cached row's file was not rewritten). `raw`: the statusLine JSON as sent, if not made here."""
    if raw is None:
        raw = json.dumps({"session_id": session_id, "transcript_path": "/nowhere.jsonl", "cwd": str(cwd),
                          "model": {"id": "m", "display_name": "M"},
                          "workspace": {"current_dir": str(cwd), "project_dir": str(cwd)}, "version": "2.1.331"},
                         separators=(",", ":"))
    cache = os.path.join(env["SESSIONWARD_HOME"], "sessionward", "status", session_id + ".row")
    before = _identity(cache)
    result = subprocess.run(["sh", "-c", installed_command()], input=raw, env=env, capture_output=True, text=True,
                            timeout=30)
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout.rstrip("\n"), before is not None and before == _identity(cache)


def _identity(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def settle(cwd, env, expected: str, within: float = REFRESH_S) -> None:
    """The row reads `expected` within one refresh interval, then comes from the cache."""
    deadline = time.monotonic() + within
    while True:
        row, _ = status(cwd, env)
        if row == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row == expected
    # Then the fast path. (A render that ran between a change and its stamp renewal, as a
    # waiter's joining the queue, cached the stamp before it: one more render, never a stale row.)
    refreshes = [status(cwd, env) for _ in range(3)]
    assert all(row == expected for row, _ in refreshes), refreshes
    assert refreshes[-1][1], "the refreshes after a render are the fast path"


def test_the_row_follows_sessions_locks_checkouts_and_config_at_the_next_refresh(world):
    repo, linked, env, start = world
    settle(repo, env, "sessionward: main · no other session on proj")

    b = start(repo, "bbbb1111-aaaa-bbbb-cccc-000000000001")
    # At once: the registration renewed the stamp before `register` returned.
    assert status(repo, env) == ("sessionward: main · 1 other session in this worktree (bbbb1111)", False)
    c = start(linked, "cccc2222-aaaa-bbbb-cccc-000000000002")
    assert status(repo, env)[0] == "sessionward: main · 1 other session in this worktree (bbbb1111) · 1 on proj elsewhere (cccc2222)"
    settle(repo, env, "sessionward: main · 1 other session in this worktree (bbbb1111) · 1 on proj elsewhere (cccc2222)")

    # Taken and released by a real process (c's shell runs the commands, as /end does).
    assert c.run("sessionward lock acquire end") == 0
    held = "sessionward: main · 1 other session in this worktree (bbbb1111) · 1 on proj elsewhere (cccc2222) · end held by cccc2222 for <1m"
    assert status(repo, env)[0] == held
    settle(repo, env, held)
    assert c.run("sessionward lock release end") == 0
    settle(repo, env, "sessionward: main · 1 other session in this worktree (bbbb1111) · 1 on proj elsewhere (cccc2222)")

    # Killed: nobody unregisters it; its watcher sees the owner die and renews the stamp.
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait()
    settle(repo, env, "sessionward: main · 1 on proj elsewhere (cccc2222)")

    # Ended the ordinary way.
    assert c.run("sessionward unregister") == 0
    assert status(repo, env)[0] == "sessionward: main · no other session on proj"

    # This worktree's branch now: nothing renews the stamp; HEAD's content is compared.
    git(repo, "checkout", "-q", "-b", "topic")
    assert status(repo, env)[0] == "sessionward: topic · no other session on proj"

    # A bad sessionward.toml is one short problem; fixed, it goes.
    config = os.path.join(env["HOME"], ".claude", "sessionward.toml")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, "w") as f:
        f.write('edit_policy = "sometimes"\n')
    row, fast = status(repo, env)
    assert not fast and row.startswith("sessionward: topic · no other session on proj · sessionward.toml: ")
    assert row.endswith(" (sessionward doctor)") and "edit_policy" in row
    with open(config, "w") as f:
        f.write('edit_policy = "ask"\n')
    assert status(repo, env)[0] == "sessionward: topic · no other session on proj"


def test_a_lock_held_by_a_dying_process_leaves_the_row_when_it_dies(world):
    repo, _, env, start = world
    holder = subprocess.Popen([SESSIONWARD, "lock", "run", "end", "--", "sleep", "600"], cwd=str(repo), env=env)
    try:
        deadline = time.monotonic() + 10
        while "end held by" not in status(repo, env)[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        # `lock run` was started by this test's process, the status line's session.
        assert status(repo, env)[0] == "sessionward: main · no other session on proj · end held by this session for <1m"
        # kill -9 both: `lock run` and its command (the PID in end.lock); nobody releases it.
        command = _child_of(holder.pid)
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(command, signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    settle(repo, env, "sessionward: main · no other session on proj")


def _child_of(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return int(f.read().split()[0])


def test_a_hand_made_removal_of_end_lock_is_seen(world, tmp_path):
    repo, _, env, start = world
    c = start(repo, "cccc2222-aaaa-bbbb-cccc-000000000002")
    assert c.run("sessionward lock acquire end") == 0
    settle(repo, env, "sessionward: main · 1 other session in this worktree (cccc2222) · end held by cccc2222 for <1m")
    os.unlink(os.path.join(env["SESSIONWARD_HOME"], "end.lock"))  # the guide's force removal
    assert status(repo, env)[0] == "sessionward: main · 1 other session in this worktree (cccc2222)"


def test_this_session_waiting_for_end_is_shown(world):
    repo, _, env, start = world
    c = start(repo, "cccc2222-aaaa-bbbb-cccc-000000000002")
    assert c.run("sessionward lock acquire end") == 0
    # The waiter descends from this session's owner (the status line's caller: this test's
    # process), as a `lock acquire end` run by the session's Bash tool does.
    me = subprocess.Popen([SESSIONWARD, "lock", "acquire", "end", "--timeout", "30"], cwd=str(repo), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        settle(repo, env, "sessionward: main · 1 other session in this worktree (cccc2222) · "
                          "waiting for end (held by cccc2222 for <1m)")
        assert c.run("sessionward lock release end") == 0
        assert me.wait(timeout=30) == 0
        settle(repo, env, "sessionward: main · 1 other session in this worktree (cccc2222) · end held by this session for <1m")
    finally:
        me.kill()
        me.wait()


def test_an_ask_is_shown_to_the_person_it_asks(world):
    repo, _, env, start = world
    start(repo, "bbbb1111-aaaa-bbbb-cccc-000000000001")
    settle(repo, env, "sessionward: main · 1 other session in this worktree (bbbb1111)")
    hook = {"session_id": "mine-0000-1111-2222-3333", "cwd": str(repo), "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": "git checkout -b x"}}
    answer = subprocess.run([SESSIONWARD, "hook", "PreToolUse"], input=json.dumps(hook), env=env, cwd=str(repo),
                            capture_output=True, text=True, check=True)
    assert '"ask"' in answer.stdout
    assert status(repo, env)[0] == ("sessionward: main · 1 other session in this worktree (bbbb1111) · "
                                    "asked <1m ago: git command (session bbbb1111)")


def test_the_fast_path_runs_no_program(world, tmp_path):
    """Once cached, the row comes from the shell alone: with nothing but sh on PATH and the
    launcher gone, the refresh still answers."""
    repo, _, env, _ = world
    settle(repo, env, "sessionward: main · no other session on proj")
    raw = json.dumps({"session_id": "mine-0000-1111-2222-3333",
                      "workspace": {"current_dir": str(repo)}}, separators=(",", ":"))
    command = our_status_line(str(tmp_path / "gone" / "sessionward"))["command"]
    only_sh = tmp_path / "only-sh"
    only_sh.mkdir()
    (only_sh / "sh").symlink_to("/bin/sh")
    result = subprocess.run(["/bin/sh", "-c", command], input=raw, env=dict(env, PATH=str(only_sh)),
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "sessionward: main · no other session on proj\n")


def test_without_the_stamp_the_cached_row_goes_stale(world):
    """The negative control: with the stamp's renewal switched off in every process, a new
    session stays unseen by the cached row (so the tests above can fail)."""
    repo, _, env, start = world
    env["SESSIONWARD_TEST_DISABLE_STATUS_STAMP"] = "1"
    settle(repo, env, "sessionward: main · no other session on proj")
    start(repo, "bbbb1111-aaaa-bbbb-cccc-000000000001")
    time.sleep(0.5)
    assert status(repo, env) == ("sessionward: main · no other session on proj", True)


def test_on_the_shared_store_another_hosts_session_shows_within_a_few_seconds(world, shared_redis, tmp_path):
    """Another host (its own state directory: it renews no stamp here) starts a session in
    this worktree: the cached row expires SHARED_RECHECK_S after it was made, so the row shows
    it within a few seconds; before that the refreshes were the fast path."""
    from sessionward.hooks.status_line import SHARED_RECHECK_S

    repo, _, env, _ = world
    with shared_redis.connect() as conn:
        conn.call("FLUSHDB")
    env["SESSIONWARD_STORE"] = shared_redis.url
    settle(repo, env, "sessionward: main · no other session on proj")
    other = tmp_path / "other-host"
    (other / "home").mkdir(parents=True)
    remote = Session(repo, dict(env, SESSIONWARD_HOME=str(other / "state"), HOME=str(other / "home")), "remote")
    try:
        assert remote.run("sessionward register --quiet --session dddd3333-aaaa-bbbb-cccc-000000000004") == 0
        registered = time.monotonic()
        expected = "sessionward: main · 1 other session in this worktree (dddd3333)"
        while (row := status(repo, env)[0]) != expected and time.monotonic() - registered < SHARED_RECHECK_S + 3:
            time.sleep(0.25)
        took = time.monotonic() - registered
        assert row == expected, f"after {took:.1f} s the row still reads {row!r}"
        assert took < SHARED_RECHECK_S + 1.5
    finally:
        remote.kill()


# -- the statusLine JSON as Claude Code really sends it ---------------------------------------

STATUSLINE_PAYLOADS = os.path.join(os.path.dirname(__file__), "hooks", "payloads")
CAPTURED_ROOT = "/tmp/rc/statusline"  # the captured paths, shortened; proj/ is the worktree


def captured_inputs():
    """(version, name) of every statusLine input captured from the real TUI (the exact bytes
    it wrote on the command's stdin, only the paths shortened)."""
    found = []
    for version in sorted(os.listdir(STATUSLINE_PAYLOADS)):
        directory = os.path.join(STATUSLINE_PAYLOADS, version, "statusline")
        if os.path.isdir(directory):
            found += [(version, name) for name in sorted(os.listdir(directory)) if name.endswith(".json")]
    return found


def test_there_are_captured_inputs_for_each_version():
    assert {version for version, _ in captured_inputs()} == {"2.1.331", "2.1.112"}


@pytest.mark.parametrize("version,name", captured_inputs())
def test_the_fast_path_answers_for_the_real_input(world, tmp_path, version, name):
    """Claude Code's own JSON (compact, "session_id" first, "current_dir" in "workspace"),
    byte for byte: after the first render every refresh comes from the cache."""
    repo, _, env, _ = world
    with open(os.path.join(STATUSLINE_PAYLOADS, version, "statusline", name)) as f:
        raw = f.read().replace(CAPTURED_ROOT, str(tmp_path))
    session_id = json.loads(raw)["session_id"]
    first = status(repo, env, session_id, raw=raw)
    assert first == ("sessionward: main · no other session on proj", False)
    assert [status(repo, env, session_id, raw=raw) for _ in range(3)] == [(first[0], True)] * 3


@pytest.mark.parametrize("layout", [{"indent": 2}, {"separators": (", ", ": ")}])
def test_the_fast_path_answers_for_spaced_and_pretty_printed_json(world, layout):
    repo, _, env, _ = world
    raw = json.dumps({"session_id": "mine-0000-1111-2222-3333", "cwd": str(repo),
                      "workspace": {"current_dir": str(repo), "project_dir": str(repo)}}, **layout)
    assert status(repo, env, raw=raw)[0] == "sessionward: main · no other session on proj"
    assert status(repo, env, raw=raw) == ("sessionward: main · no other session on proj", True)


def test_a_nested_session_id_before_the_top_level_one_never_shows_another_sessions_row(world):
    """The fast path keys the cache on the first "session_id"; one inside an earlier object
    (another session's) must not make it print that session's cached row."""
    repo, _, env, start = world
    other = "bbbb1111-aaaa-bbbb-cccc-000000000001"
    start(repo, other)
    # As b's own status line shows it (b is not counted among its others), cached under b's id.
    assert status(repo, env, other)[0] == "sessionward: main · no other session on proj"
    assert status(repo, env, other)[1]
    mine = json.dumps({"agent": {"session_id": other}, "session_id": "mine-0000-1111-2222-3333",
                       "workspace": {"current_dir": str(repo)}}, separators=(",", ":"))
    for _ in range(2):
        assert status(repo, env, raw=mine)[0] == "sessionward: main · 1 other session in this worktree (bbbb1111)"
