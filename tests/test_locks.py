"""Named locks: files as the origin's guide expects, holders, orphans, refusals, forged files."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from sessionward.errors import UnsafeState
from sessionward.identity import read_process, resolve_owner
from sessionward.identity.process import REAP_GRACE_S
from sessionward.locks import Holder, LockRefused, LockTimeout, NamedLock, cleanup_orphans

from helpers import SESSIONWARD, hold_flock, kill_watcher_pair, run_cli

pytestmark = pytest.mark.usefixtures("store_backend")  # every lock test, on every store backend


@pytest.fixture
def lock_file(state_dir, store_backend):
    """~/.claude/end.lock on the local store; on the shared store, what the tests ask of it
    (exists, its PID) read through `lock status`, and a skip for anything about the file."""
    return state_dir / "end.lock" if store_backend == "local" else SharedEndLock()


class SharedEndLock:
    """end.lock's facts on a store without the file: present while held, the holder's PID."""

    def exists(self) -> bool:
        return NamedLock("end").status().present

    def read_text(self) -> str:
        state = NamedLock("end").status()
        assert state.present, "end is not held"
        return f"{state.pid}\n"

    def read_bytes(self) -> bytes:
        return self.read_text().encode()

    def __fspath__(self):
        pytest.skip("about the local store's end.lock file")

    def __getattr__(self, name):
        pytest.skip(f"about the local store's end.lock file ({name})")


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def forge(lock_file, content: bytes, age_s: float = 0.0):
    lock_file.parent.mkdir(mode=0o700, exist_ok=True)
    lock_file.write_bytes(content)
    if age_s:
        past = time.time() - age_s
        os.utime(lock_file, (past, past))


def test_lock_file_holds_the_pid_alone_and_exists_only_while_held(lock_file):
    lock = NamedLock("end", purpose="save notes")
    lock.acquire(timeout=1)
    assert lock_file.read_bytes() == f"{os.getpid()}\n".encode()
    state = lock.status()
    assert state.held and state.pid == os.getpid()
    assert state.meta["purpose"] == "save notes" and state.meta["reentrant"] is False
    assert lock.release().was == "held"
    assert not lock_file.exists()
    assert lock.release().was == "free"  # releasing a free lock is a no-op


def test_the_guides_rm_frees_the_lock(lock_file):
    NamedLock("end").acquire(timeout=1)
    os.unlink(lock_file)  # "Forcer suppression si process mort: rm ~/.claude/end.lock"
    other = NamedLock("end", holder=Holder.process(os.getppid()))
    assert other.acquire(timeout=0).took_over is None
    assert lock_file.read_text() == f"{os.getppid()}\n"


def test_process_holder_is_not_reentrant_and_timeout_names_the_holder(lock_file):
    NamedLock("end", purpose="first").acquire(timeout=1)
    with pytest.raises(LockTimeout) as info:
        NamedLock("end").acquire(timeout=0.2)
    message = str(info.value)
    assert re.match(rf"lock end still held after 0\.[23] s by pid {os.getpid()} \(", message), message
    assert "purpose: first" in message and "lock release end --force" in message
    assert isinstance(info.value, TimeoutError)


def test_session_owner_reenters(keeper):
    owner = resolve_owner(keeper)
    first = NamedLock("end", holder=Holder.session_owner(owner), owner=owner).acquire(timeout=1)
    again = NamedLock("end", holder=Holder.session_owner(owner), owner=owner).acquire(timeout=0)
    assert not first.already_held and again.already_held


def test_release_by_another_live_owner_is_refused_unless_forced(keeper, lock_file):
    owner = resolve_owner(keeper)
    NamedLock("end", holder=Holder.session_owner(owner), owner=owner).acquire(timeout=1)
    stranger = NamedLock("end", holder=Holder.this_process())
    with pytest.raises(LockRefused) as info:
        stranger.release()
    assert f"pid {keeper}" in str(info.value)
    assert lock_file.exists()
    assert stranger.release(force=True).was == "forced"
    assert not lock_file.exists()


@pytest.mark.local_store_only
def test_live_holder_is_never_broken_on_age(lock_file, state_dir):
    """A holder that has held for days is still the holder while it lives: with our annex
    (backdated `since`) and as a bare PID file of the origin's scripts (backdated mtime)."""
    old_holder = subprocess.Popen(["sleep", "600"])  # started before the backdated times? no:
    try:
        NamedLock("end", holder=Holder.process(old_holder.pid)).acquire(timeout=1)
        annex = state_dir / "sessionward" / "locks" / "end.holder.json"
        meta = json.loads(annex.read_text())
        meta["since"] -= 3 * 86400
        annex.write_text(json.dumps(meta))
        with pytest.raises(LockTimeout):
            NamedLock("end").acquire(timeout=0.2)
        status = run_cli("lock", "status").stdout
        assert "held for 3d" in status and "is running" in status
        # bare PID file, days old, of a process that started before it: still held
        os.unlink(lock_file)
        forge(lock_file, f"{os.getppid()}\n".encode(), age_s=0)  # our parent predates the file
        with pytest.raises(LockTimeout):
            NamedLock("end").acquire(timeout=0.2)
    finally:
        old_holder.kill()
        old_holder.wait()


@pytest.mark.parametrize("forgery", ["dead pid", "reused pid", "zombie"])
def test_orphans_are_taken_over_and_reported(forgery, lock_file):
    if forgery == "dead pid":
        pid, age, reason = dead_pid(), 0, "is gone"
    elif forgery == "reused pid":
        pid, age, reason = os.getpid(), 3600 * 24 * 365, "was reused"  # we started after the lock
    else:
        zombie = subprocess.Popen(["true"])
        while open(f"/proc/{zombie.pid}/stat").read().split(")")[-1].split()[0] != "Z":
            time.sleep(0.01)
        pid, age, reason = zombie.pid, 0, "zombie"
    forge(lock_file, f"{pid}\n".encode(), age_s=age)
    # A zombie whose parent (this test) lives counts as being reaped for REAP_GRACE_S: this
    # parent never reaps it, so it is taken over once that grace has passed.
    grace = REAP_GRACE_S if forgery == "zombie" else 0.0
    acquired = NamedLock("end", holder=Holder.process(os.getppid())).acquire(timeout=grace + 1)
    assert acquired.took_over is not None and acquired.took_over.pid == pid
    assert reason in acquired.took_over.liveness.reason
    assert grace <= acquired.waited_s < grace + 1
    assert lock_file.read_text() == f"{os.getppid()}\n"
    if forgery == "zombie":
        zombie.wait()


@pytest.mark.parametrize("content", [b"abc\n", b"", b" \n", b"9" * 5000, b"12 34\n", b"-5\n", b"\xff\xfe"])
def test_lock_file_without_a_pid_is_kept_aside_and_taken_over(content, lock_file, state_dir):
    forge(lock_file, content)
    acquired = NamedLock("end").acquire(timeout=1)
    assert acquired.took_over is not None and acquired.took_over.pid is None
    [kept] = [p for p in os.listdir(state_dir) if p.startswith("end.lock.corrupt-")]
    assert (state_dir / kept).read_bytes() == content
    assert lock_file.read_text() == f"{os.getpid()}\n"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_unsafe_lock_paths_are_refused_and_left_alone(kind, lock_file, tmp_path, state_dir):
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_text("precious")
    if kind == "symlink":
        lock_file.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(lock_file)
    else:
        lock_file.mkdir()
    with pytest.raises(UnsafeState):
        NamedLock("end").acquire(timeout=0.2)
    result = run_cli("lock", "acquire", "--timeout", "0.2")
    assert result.returncode == 3 and result.stderr.count("\n") == 1
    assert f"refusing state path {lock_file}" in result.stderr
    assert target.read_text() == "precious"
    assert os.path.lexists(lock_file)


def test_waiters_are_served_in_arrival_order(tmp_path):
    holder = NamedLock("end")
    holder.acquire(timeout=1)
    log = tmp_path / "order"
    code = (
        "import sys, time\nfrom sessionward.locks import NamedLock\n"
        "lock = NamedLock('end'); lock.acquire(timeout=30)\n"
        f"open({str(log)!r}, 'a').write(sys.argv[1] + '\\n'); time.sleep(0.05); lock.release()\n"
    )
    waiters = []
    for i in range(5):
        waiters.append(subprocess.Popen([sys.executable, "-c", code, str(i)]))
        deadline = time.monotonic() + 10
        while len(_queue(tmp_path)) < i + 1:  # wait until it has joined the queue
            assert time.monotonic() < deadline, "waiter never queued"
            time.sleep(0.01)
    holder.release()
    for proc in waiters:
        assert proc.wait(timeout=30) == 0
    assert log.read_text().split() == ["0", "1", "2", "3", "4"]


def _queue(tmp_path) -> list:
    return NamedLock("end").waiting()


def test_cleanup_removes_only_orphans(lock_file, state_dir, keeper):
    NamedLock("live", holder=Holder.process(keeper)).acquire(timeout=1)
    forge(lock_file, f"{dead_pid()}\n".encode())
    assert [c.state.name for c in cleanup_orphans(dry_run=True)] == ["end"]
    assert lock_file.exists()
    assert [(c.state.name, c.action) for c in cleanup_orphans()] == [("end", "removed")]
    assert not lock_file.exists() and (state_dir / "live.lock").exists()


# -- on the command line -----------------------------------------------------------------------

# The end lock's holder PID, as a shell command, whatever the store (`cat ~/.claude/end.lock`
# on the local one): `lock status --json`.
HOLDER_PID = (f"{SESSIONWARD} lock status end --json | {sys.executable} -c "
              "'import json, sys; print(json.load(sys.stdin)[\"result\"][\"locks\"][0][\"pid\"])'")

FAKE_CLAUDE = r"""
import os, subprocess, sys
for command in sys.argv[1:]:
    out = subprocess.run(["/bin/bash", "-c", command], capture_output=True, text=True)
    print(f"{out.returncode}|{out.stdout.strip()}|{out.stderr.strip()}", flush=True)
"""


def test_acquire_and_release_as_two_bash_calls_of_one_claude_session(tmp_path, lock_file):
    """Claude Code runs each Bash tool call in a fresh `bash -c`: the session owner holds."""
    (tmp_path / "claude").symlink_to(sys.executable)
    script = tmp_path / "fake_claude.py"
    script.write_text(FAKE_CLAUDE)
    out = subprocess.run(
        [str(tmp_path / "claude"), str(script),
         f"{SESSIONWARD} lock acquire --purpose /end",
         f"echo \"$({HOLDER_PID}) $PPID\"",
         f"{SESSIONWARD} lock acquire",
         f"{SESSIONWARD} lock release"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    acquired, cat, again, released = (line.split("|") for line in out)
    holder_pid, claude_pid = cat[1].split()
    assert holder_pid == claude_pid  # the Claude process, not a bash -c
    assert acquired[0] == "0" and acquired[1].startswith("acquired lock end")
    assert again[:2] == ["0", f"lock end is already yours (pid {claude_pid})"]
    assert released[:2] == ["0", "released lock end"]
    assert not lock_file.exists()


LAPSED = re.compile(r"sessionward: lease on lock end lapsed \d+\.\d{3} s ago: (nobody holds it now|now held by pid (\d+) on \S+ "
                    r"\(fence \d+\)); what was done after the lapse was not protected by the lock; check it and acquire again\n")


def test_a_holder_whose_watcher_pair_was_killed_is_told_once_that_its_lease_lapsed(keeper, store_backend, state_dir,
                                                                                  monkeypatch):
    """The local store judges a holder by its PID: with its watcher pair killed, its lock stays
    held and its release frees it. The shared store judges it by the lease the pair renews:
    the lease lapses after its TTL, and the holder's next `lock` command (a new process, which
    knows no token) is told so, once, naming who holds the lock now; acquire and release alike."""
    monkeypatch.setenv("SESSIONWARD_TEST_LEASE_TTL_MS", "600")
    assert run_cli("lock", "acquire", "end", "--pid", str(keeper)).returncode == 0
    kill_watcher_pair(state_dir)
    time.sleep(1.5)  # two and a half TTLs
    released = run_cli("lock", "release", "end", "--pid", str(keeper))
    if store_backend == "local":
        assert (released.returncode, released.stdout, released.stderr) == (0, "released lock end\n", "")
        return
    assert released.returncode == 1 and LAPSED.fullmatch(released.stderr).group(1) == "nobody holds it now", released
    again = run_cli("lock", "release", "end", "--pid", str(keeper))  # told once
    assert (again.returncode, again.stdout, again.stderr) == (0, "lock end was not held; nothing to do\n", "")

    assert run_cli("lock", "acquire", "end", "--pid", str(keeper)).returncode == 0
    kill_watcher_pair(state_dir)
    time.sleep(1.5)
    newcomer = subprocess.Popen(["sleep", "600"])
    try:
        assert run_cli("lock", "acquire", "end", "--pid", str(newcomer.pid)).returncode == 0
        told = run_cli("lock", "acquire", "end", "--pid", str(keeper), "--timeout", "0.3")
        assert told.returncode == 1 and LAPSED.fullmatch(told.stderr).group(2) == str(newcomer.pid), told
        waits = run_cli("lock", "acquire", "end", "--pid", str(keeper), "--timeout", "0.3")  # told once: it waits now
        assert waits.returncode == 1 and "lapsed" not in waits.stderr and f"still held after 0.3 s by pid {newcomer.pid}" \
            in waits.stderr, waits
    finally:
        newcomer.kill()
        newcomer.wait()


def test_the_waiting_line_and_the_time_out_show_the_holders_worktree_alike(keeper):
    # both on stderr, read in turn by a person: ~ for the home directory in each, piped or not
    webapp = os.path.join(os.environ["HOME"], "webapp")
    os.mkdir(webapp)
    run_cli("register", "webapp", webapp, "--pid", str(keeper), "--quiet", check=True)
    run_cli("lock", "acquire", "--pid", str(keeper), cwd=webapp, check=True)
    waiting, timed_out = run_cli("lock", "acquire", "--timeout", "0.3").stderr.splitlines()
    assert "worktree ~/webapp" in waiting and "worktree ~/webapp" in timed_out, (waiting, timed_out)


def test_release_from_an_unrelated_process_is_refused(keeper, lock_file):
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    result = run_cli("lock", "release")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"sessionward: lock end is held by another live process: pid {keeper} (sleep)")
    assert line.endswith("to take it anyway: sessionward lock release end --force")
    assert lock_file.read_text() == f"{keeper}\n"
    forced = run_cli("lock", "release", "--force")
    assert forced.returncode == 0 and forced.stdout.startswith(f"forcibly released lock end, held by pid {keeper}")


def test_status_shows_holder_and_age(keeper):
    run_cli("lock", "acquire", "--pid", str(keeper), "--purpose", "/end save", check=True)
    status = run_cli("lock", "status").stdout
    assert status.startswith(f"end: held by pid {keeper} (sleep), ")
    assert "purpose: /end save, held for 0s" in status and f"; process {keeper} is running" in status
    assert run_cli("lock", "status", "other").stdout == "other: free\n"
    env = json.loads(run_cli("lock", "status", "--all", "--json").stdout)
    [state] = env["result"]["locks"]
    assert (state["name"], state["pid"], state["held"]) == ("end", keeper, True)


def test_waiting_prints_a_line_naming_the_holder_then_times_out(keeper):
    run_cli("lock", "acquire", "--pid", str(keeper), "--purpose", "/end", check=True)
    result = run_cli("lock", "acquire", "--timeout", "0.5")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"sessionward: waiting for lock end (0 s), held by pid {keeper} (sleep)")
    assert re.match(rf"sessionward: lock end still held after 0\.[5-9] s by pid {keeper} \(sleep\)", lines[-1])
    assert len(lines) == 2


def test_lock_run_returns_the_command_status_and_holds_only_while_it_runs(lock_file):
    result = run_cli("lock", "run", "end", "--", "sh", "-c", f"{HOLDER_PID}; echo $$; exit 7")
    assert result.returncode == 7
    holder, me = result.stdout.split()
    assert holder == me  # the command's own process holds the lock
    assert not lock_file.exists()
    missing = run_cli("lock", "run", "end", "--", "/no/such/command")
    assert missing.returncode == 127 and not lock_file.exists()


def test_lock_check_before_write(keeper, tmp_path):
    assert run_cli("lock", "check", "--project", "notes").returncode == 0
    project_dir = tmp_path / "notes"
    project_dir.mkdir()
    run_cli("lock", "acquire", "--pid", str(keeper), check=True, cwd=str(project_dir))
    blocked = run_cli("lock", "check", "--project", "notes")
    assert blocked.returncode == 1
    assert blocked.stdout.startswith(f"not safe: lock end is held by pid {keeper} (sleep), project notes")
    other = run_cli("lock", "check", "--project", "webapp")
    assert other.returncode == 0 and "held by a session of project notes" in other.stdout
    mine = run_cli("lock", "check", "--project", "notes", "--pid", str(keeper))
    assert mine.returncode == 0 and mine.stdout == "lock end is yours: safe to write\n"


@pytest.mark.parametrize("argv", [
    ["lock", "acquire", "END"], ["lock", "acquire", "a/b"], ["lock", "acquire", "--timeout", "-1"],
    ["lock", "acquire", "--timeout", "soon"], ["lock", "run", "end"], ["lock", "frob"], ["lock"],
    ["lock", "status", "end", "--all"], ["lock", "check", "--project", ""],
])
def test_bad_lock_input_is_exit_2_one_line(argv):
    result = run_cli(*argv)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.local_store_only
def test_try_lock_of_a_free_lock_is_not_refused_by_a_busy_guard(state_dir):
    """Someone mid-transition holds the guard for a moment: a timeout-0 acquire of a free lock
    waits that moment out instead of failing with a misleading "still held"."""
    NamedLock("end").acquire(timeout=1)
    NamedLock("end").release(force=True)  # the guard file now exists
    guard = state_dir / "sessionward" / "locks" / "end.guard"
    holder = hold_flock(guard, then="time.sleep(0.3); os.close(fd); sys.exit(0)\n")
    acquired = NamedLock("end").acquire(timeout=0)
    holder.wait()
    assert acquired.already_held is False and acquired.took_over is None


def test_caller_release_frees_only_the_callers_own_lock(keeper, lock_file):
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    # the same owner (keeper), but as --caller: the test process is the caller, not the holder
    result = run_cli("lock", "release", "--caller", "--pid", str(keeper))
    assert result.returncode == 1 and "held by another live process" in result.stderr
    assert lock_file.exists()
    assert run_cli("lock", "release", "--pid", str(keeper)).returncode == 0


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_wait_progress_rewrites_one_line_on_a_terminal_and_prints_plain_lines_otherwise(keeper, monkeypatch):
    from sessionward.cli.locks import WaitReporter

    monkeypatch.setenv("TERM", "xterm")
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    state = NamedLock("end").status()
    terminal, piped = _Stream(True), _Stream(False)
    on_terminal, on_pipe = WaitReporter(terminal), WaitReporter(piped)
    for waited in (0.0, 1.0, 2.0, 6.0):
        on_terminal(state, waited)
        on_pipe(state, waited)
    on_terminal.done()
    assert terminal.text.count("\r\033[K") == 5  # four rewrites of one line, then cleared
    assert "\n" not in terminal.text
    assert "waiting for lock end (6 s), held by pid" in terminal.text
    lines = piped.text.splitlines()
    assert [line.split("(")[1].split(")")[0] for line in lines] == ["0 s", "6 s"]  # every 5 s
    assert all(line.startswith("sessionward: waiting for lock end") for line in lines)


def test_sessions_show_the_locks_their_owner_holds(keeper, tmp_path):
    run_cli("register", "webapp", str(tmp_path), "--pid", str(keeper), check=True)
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    [session] = json.loads(run_cli("list", "--json").stdout)["result"]["sessions"]
    assert session["holds"] == ["end"]
    other = tmp_path / "other"
    other.mkdir()
    check = run_cli("check", "webapp", "--cwd", str(other))
    assert f"pid {keeper}" in check.stdout and "holds end" in check.stdout
    run_cli("lock", "release", "--pid", str(keeper), check=True)
    [session] = json.loads(run_cli("list", "--json").stdout)["result"]["sessions"]
    assert session["holds"] == []


def test_a_lock_held_by_the_same_pid_on_another_machine_is_not_this_sessions(keeper, tmp_path):
    """Two machines share the store; both run their sessions in their initial PID namespace
    (one inode number everywhere), and a PID may repeat: only the boot id tells the holder on
    the other machine from this session's owner (regression: `holds` keyed on PID and PID
    namespace gave this session the other machine's lock)."""
    run_cli("register", "webapp", str(tmp_path), "--pid", str(keeper), check=True)
    elsewhere = resolve_owner(keeper)
    elsewhere.boot_id, elsewhere.hostname = "0badb007-0000-4000-8000-00000000beef", "devbox"
    NamedLock("end", holder=Holder.session_owner(elsewhere), owner=elsewhere).acquire(timeout=1)
    assert NamedLock("end").status().held  # alive: unknown on the local store, by its lease on the shared one
    [session] = json.loads(run_cli("list", "--json").stdout)["result"]["sessions"]
    assert session["holds"] == []


def test_a_session_cannot_release_a_running_lock_run(keeper, lock_file, tmp_path):
    """Same session, other process: `lock release` frees a `lock acquire` lock, never the
    lock of a command that is still running under `lock run`."""
    run = subprocess.Popen([SESSIONWARD, "lock", "run", "end", "--pid", str(keeper), "--", "sleep", "3"])
    try:
        deadline = time.monotonic() + 10
        while not lock_file.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        result = run_cli("lock", "release", "--pid", str(keeper))
        assert result.returncode == 1 and "held by another live process" in result.stderr
        assert lock_file.exists()
    finally:
        run.kill()
        run.wait()


def test_a_forked_child_cannot_release_its_parents_lock(lock_file):
    lock = NamedLock("end")
    lock.acquire(timeout=1)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os._exit(0 if lock.release().was == "lost" else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock_file.read_text() == f"{os.getpid()}\n"
    assert lock.release().was == "held"


def test_a_stopped_waiter_loses_its_place_instead_of_blocking_the_queue(tmp_path):
    holder = NamedLock("end")
    holder.acquire(timeout=1)
    code = "from sessionward.locks import NamedLock\nNamedLock('end').acquire(timeout=30)\nprint('got', flush=True)\n"
    stopped = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while len(_queue(tmp_path)) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _stop_outside_the_guard(stopped.pid, tmp_path)
        holder.release()
        # the lock is free and its only waiter is stopped: a newcomer gets it
        assert NamedLock("end").acquire(timeout=2).took_over is None
    finally:
        os.kill(stopped.pid, signal.SIGKILL)
        stopped.wait()


def _stop_outside_the_guard(pid: int, tmp_path) -> None:
    """SIGSTOP `pid` at an instant it does not hold the guard's flock (a stop inside those
    microseconds freezes every lock operation until SIGCONT: SIGSTOP cannot be held off); the
    shared store has no guard."""
    guard = tmp_path / "state" / "sessionward" / "locks" / "end.guard"
    guard_ino = os.stat(guard).st_ino if guard.exists() else None
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        while read_process(pid).state not in ("T", "t"):
            time.sleep(0.001)
        if guard_ino is None:
            return  # the shared store: no guard, every step one script on the server
        else:
            with open("/proc/locks") as f:
                holding = any(
                    line.split()[4] == str(pid) and line.split()[5].endswith(f":{guard_ino}") for line in f
                )
        if not holding:
            return
        os.kill(pid, signal.SIGCONT)
    raise AssertionError("never caught the waiter outside the guard")


def test_ctrl_z_is_held_off_inside_the_guard(tmp_path, monkeypatch):
    """While waiting, SIGTSTP is blocked exactly while the guard's flock is held."""
    from sessionward import locks

    seen = []
    original = locks.NamedLock._read_state

    def spy(self, judge=True):
        with open("/proc/self/status") as f:
            blocked = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
        seen.append(bool(blocked & (1 << (signal.SIGTSTP - 1))))
        return original(self, judge)

    holder = NamedLock("end", holder=Holder.process(os.getppid()))
    holder.acquire(timeout=1)
    monkeypatch.setattr(locks.NamedLock, "_read_state", spy)
    with pytest.raises(LockTimeout):
        NamedLock("end").acquire(timeout=0.2)
    assert seen[0] is False and all(seen[1:]) and len(seen) > 2  # first look, then waiting
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGTSTP}  # restored


def test_an_interrupted_waiter_leaves_the_queue(tmp_path):
    holder = NamedLock("end", holder=Holder.process(os.getppid()))
    holder.acquire(timeout=1)

    def give_up(state, waited):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        NamedLock("end").acquire(timeout=5, on_wait=give_up)
    assert _queue(tmp_path) == []


def test_lock_run_killed_while_waiting_never_runs_its_command(keeper, tmp_path):
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    marker = tmp_path / "ran"
    run = subprocess.Popen([SESSIONWARD, "lock", "run", "end", "--", "touch", str(marker)],
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while len(_queue(tmp_path)) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.send_signal(signal.SIGTERM)
    assert run.wait(10) == -signal.SIGTERM
    run_cli("lock", "release", "--pid", str(keeper), check=True)
    time.sleep(0.3)
    assert not marker.exists()
    # its queue entry died with it: the next acquire is not held up, and prunes it
    assert NamedLock("end").acquire(timeout=0).took_over is None
    assert _queue(tmp_path) == []


@pytest.mark.local_store_only
def test_full_disk_at_acquire_leaves_no_empty_lock_file(tmp_path, monkeypatch):
    from sessionward.errors import StateUnwritable

    lock = NamedLock("end", state_dir=str(tmp_path / "state"))
    real_write = os.write

    def full(fd, data):
        if data.strip().isdigit():  # the PID into NAME.lock
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StateUnwritable, match="No space left on device"):
        lock.acquire(timeout=1)
    monkeypatch.setattr(os, "write", real_write)
    assert not os.path.exists(lock.path)  # an empty one would read as an orphan holding no PID
    lock.acquire(timeout=1)
    lock.release()


@pytest.mark.local_store_only
@pytest.mark.parametrize("site", ["locks-dir-symlink", "annex-fifo", "guard-fifo"])
def test_planted_lock_paths_are_refused_without_blocking(site, tmp_path):
    state = tmp_path / "state"
    locks_dir = state / "sessionward" / "locks"
    locks_dir.mkdir(parents=True, mode=0o700)
    os.chmod(state / "sessionward", 0o700)
    os.chmod(state, 0o700)
    if site == "locks-dir-symlink":
        elsewhere = tmp_path / "elsewhere"
        locks_dir.rmdir()
        elsewhere.mkdir(mode=0o700)
        locks_dir.symlink_to(elsewhere)
    else:
        os.mkfifo(locks_dir / ("end.holder.json" if site == "annex-fifo" else "end.guard"), 0o600)
    code = "from sessionward.locks import NamedLock\nNamedLock('end').acquire(timeout=1)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert "UnsafeState" in done.stderr and "refusing state path" in done.stderr, done.stderr
    if site == "locks-dir-symlink":
        assert os.listdir(tmp_path / "elsewhere") == []


# -- crashes mid-write (issue 5, crash consistency) ---------------------------------------------


def _crash_in_child(code: str, at: str) -> None:
    env = dict(os.environ, SESSIONWARD_TEST_CRASH_AT=at)
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 91


@pytest.mark.local_store_only
def test_a_crashed_acquire_never_leaves_an_empty_lock_file(lock_file, state_dir):
    # Regression: NAME.lock was created with O_EXCL and then written; a crash in between left
    # an end.lock holding nothing (`cat` showed nothing, status "holds no PID"). Now it
    # appears with its PID in one step (a hard link), or not at all.
    code = "from sessionward.locks import NamedLock\nNamedLock('end').acquire(timeout=1)\n"
    _crash_in_child(code, "temp-written")
    assert not lock_file.exists()
    _crash_in_child(code, "lock-linked")
    assert lock_file.read_bytes().strip().isdigit()
    lock = NamedLock("end")
    assert lock.acquire(timeout=0).took_over is not None  # the dead holder is no obstacle
    lock.release()
    assert cleanup_orphans() == [] and not [e for e in os.listdir(state_dir) if e.endswith(".tmp")]


@pytest.mark.local_store_only
def test_a_shorter_annex_is_never_torn_by_a_crash(state_dir):
    # Regression: the annex is rewritten in place; a new one shorter than the old one left
    # the old tail after it until the truncate, so a crash in between left invalid JSON.
    before = NamedLock("end", purpose="x" * 3000)
    before.acquire(timeout=0)
    before.release()
    _crash_in_child("from sessionward.locks import NamedLock\nNamedLock('end').acquire(timeout=1)\n", "annex-written")
    json.loads((state_dir / "sessionward" / "locks" / "end.holder.json").read_bytes())


@pytest.mark.local_store_only
def test_a_waiter_crashing_as_it_leaves_the_queue_keeps_the_queue_whole(state_dir, keeper):
    # Regression: the queue was pwritten then truncated; leaving made it shorter, so a crash
    # in between left a torn queue, which resets to empty: every waiter lost its place.
    holder = NamedLock("end", holder=Holder.process(keeper))
    holder.acquire(timeout=0)
    wait = "from sessionward.locks import NamedLock, LockTimeout\ntry:\n NamedLock('end').acquire(timeout=0.05)\nexcept LockTimeout:\n pass\n"
    stays = subprocess.Popen([sys.executable, "-c", wait.replace("0.05", "30")])  # a waiter that stays
    guard = state_dir / "sessionward" / "locks" / "end.guard"
    deadline = time.monotonic() + 10
    while not guard.exists() or b"waiters" not in guard.read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first = json.loads(guard.read_bytes())["waiters"]
    _crash_in_child(wait, "queue-written@2")  # join, then leave: crashed before the truncate
    assert json.loads(guard.read_bytes())["waiters"] == first
    holder.release(force=True)
    assert stays.wait(timeout=10) == 0  # first in line, it got the lock


def _wait_for_state(pid: int, states: str) -> None:
    deadline = time.monotonic() + 10
    while read_process(pid).state not in states:
        assert time.monotonic() < deadline, f"process {pid} never reached state {states}"
        time.sleep(0.01)


@pytest.mark.parametrize("stop", [signal.SIGSTOP, signal.SIGTSTP])
def test_a_stopped_holder_is_named_stopped_with_what_to_do(stop, lock_file):
    # In a process group of its own, whose parent (pytest) is in another group of the same
    # session: the kernel discards SIGTSTP sent to an orphaned process group, and pytest's own
    # group is orphaned when whatever started the run has exited (a CI runner's background job).
    holder = subprocess.Popen(["sleep", "600"], preexec_fn=os.setpgrp)
    try:
        run_cli("lock", "acquire", "end", "--pid", str(holder.pid), "--timeout", "0", check=True)
        os.kill(holder.pid, stop)  # Ctrl-Z sends SIGTSTP; `kill -STOP` cannot be caught
        _wait_for_state(holder.pid, "Tt")
        advice = (f"its holder is stopped: resume it with `fg` in its terminal or `kill -CONT {holder.pid}`, "
                  "or take the lock anyway: sessionward lock release end --force")
        status = run_cli("lock", "status", "end")
        assert status.stdout.startswith(f"end: held by pid {holder.pid} (sleep, stopped), "), status.stdout
        assert status.stdout.endswith(
            f"; process {holder.pid} is stopped (suspended: Ctrl-Z or SIGSTOP); {advice}\n"), status.stdout
        waited = run_cli("lock", "acquire", "end", "--timeout", "1")
        assert waited.returncode == 1
        last = waited.stderr.splitlines()[-1]
        assert last.startswith(f"sessionward: lock end still held after 1.0 s by pid {holder.pid} (sleep, stopped), ")
        assert last.endswith(f"; {advice}"), last
        refused = run_cli("lock", "release", "end")
        assert refused.returncode == 1 and refused.stderr.rstrip().endswith(advice), refused.stderr
        # Stopped is alive: never taken over, and its session is never swept.
        assert lock_file.read_text() == f"{holder.pid}\n"
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()


def test_every_acquire_gets_a_larger_fence_than_any_before(lock_file, tmp_path, store_backend):
    lock = NamedLock("end")
    first = lock.acquire(timeout=1).fence
    assert first >= 1 and lock.fence == first
    assert lock.status().meta["fence"] == first
    assert lock_file.read_text() == f"{os.getpid()}\n"  # the origin's format: the PID alone
    lock.release()
    other = NamedLock("end")  # another object: the count is the lock's, not the object's
    second = other.acquire(timeout=1).fence
    other.release()
    assert second > first
    # Taken in another process, which dies holding it: the take-over's fence is larger still.
    child = subprocess.run([sys.executable, "-c", "import os; from sessionward.locks import NamedLock\n"
                            "print(NamedLock('end').acquire(timeout=5).fence, flush=True); os._exit(0)"],
                           capture_output=True, text=True, timeout=60)
    third = int(child.stdout)
    assert third > second
    if store_backend == "local":
        assert lock_file.exists()  # its holder died: an orphan (on the shared store its watcher frees it)
    took = NamedLock("end").acquire(timeout=5)
    assert took.fence > third and (took.took_over is not None or store_backend != "local")


def test_a_reentrant_acquire_keeps_its_fence(lock_file, keeper):
    owner = resolve_owner(keeper)
    lock = NamedLock("end", holder=Holder.session_owner(owner), owner=owner)
    first = lock.acquire(timeout=1)
    again = NamedLock("end", holder=Holder.session_owner(owner), owner=owner).acquire(timeout=1)
    assert again.already_held and again.fence == first.fence >= 1


@pytest.mark.parametrize("program", ["cat", "a-long-script-name.sh"])
def test_lock_run_names_its_command_as_the_kernel_does(program, lock_file, tmp_path):
    """`lock run`'s holder is recorded before its wrapper (`sh`) execs the command: it must be
    named by the command, as /proc (and ps) name it once it runs (a script by its file name,
    cut to 15 bytes), not `sh`. Each command waits on its stdin, which ends it."""
    command = program
    if program != "cat":
        script = tmp_path / program
        script.write_text("#!/bin/sh\nread line; exit 0\n")  # a builtin: the script's process stays itself
        script.chmod(0o755)
        command = str(script)
    runner = subprocess.Popen([SESSIONWARD, "lock", "run", "end", "--", command], stdin=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    pid = None
    try:
        deadline = time.monotonic() + 20
        while True:
            pid = int(lock_file.read_text()) if lock_file.exists() else None
            comm = read_process(pid).comm if pid else None
            if comm not in (None, "sh"):
                break
            assert runner.poll() is None and time.monotonic() < deadline, f"lock run never ran {command}"
            time.sleep(0.01)
        assert comm == program[:15], comm
        status = run_cli("lock", "status", check=True).stdout
        assert status.startswith(f"end: held by pid {pid} ({comm}), "), status
    finally:
        runner.stdin.close()
        try:
            assert runner.wait(20) == 0, runner.stderr.read()
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
