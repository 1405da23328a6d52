"""Life locks and their watchers (identity.life, identity/_watcher.py), with real processes.

Every owner here is a real process (a `sleep`, or a stand-in `claude` that runs the real
`sessionward hook SessionStart` with captured payloads); every watcher is found by its argv in
/proc, and judged by what the kernel says of it (/proc/PID/fd, /proc/PID/stat, flock). What
must hold:
  - one pair per owner, however many ensure_watcher() calls or SessionStarts (startup,
    resume, clear), even racing;
  - the pair holds nothing of its starter: descriptors 0-2 on /dev/null and the life file
    (plus the pidfds it opens itself), its own session, no parent among the caller's line,
    so a caller waiting for its child's pipes to close (Claude Code) never waits on it;
  - the owner's exit takes both processes and the life file within a second;
  - kill -9 of one of the pair: the lock stays held (the peer is replaced), no duplicate;
    kill -9 of both: the lock is free and the owner counts as dead from another PID
    namespace, until its next hook starts a new pair;
  - a recycled PID is not its predecessor: the key holds the start time.
The judgement "from another PID namespace" is a real `unshare -fp --mount-proc` running the
real CLI (`prune`), skipped where that is not allowed.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from sessionward.identity import life, record_liveness, resolve_owner, this_host
from sessionward.identity._watching import NICENESS

from helpers import SESSIONWARD, make_git_repo, watcher_pids as watchers

WITHIN_S = 1.0  # "within a second": the owner's exit, the peer's replacement

_spec = importlib.util.spec_from_file_location(
    "_hook_fixtures_for_life", os.path.join(os.path.dirname(__file__), "..", "hooks", "conftest.py"))
_hook_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hook_fixtures)


def _can_unshare_pid() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-fp", "--mount-proc", "true"], capture_output=True).returncode == 0


needs_pidns = pytest.mark.skipif(not _can_unshare_pid(), reason="needs root and unshare -p")


# -- looking at watchers ------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the comm: [state, ppid, pgrp, session, ...]."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return raw[raw.rfind(b")") + 2:].decode().split()


def niceness(pid: int) -> int:
    return int(stat_fields(pid)[16])  # field 19 of /proc/PID/stat


def wait_until(predicate, timeout: float, what: str) -> float:
    """Poll `predicate` every 5 ms; the seconds it took to hold. AssertionError after `timeout`."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.005)


def key_of(owner) -> str:
    return life.life_key(owner.boot_id, owner.pidns, owner.pid, owner.start_time)


def life_file(state_dir, key: str) -> str:
    return os.path.join(life.life_dir(str(state_dir)), key)


def kill_all(pids) -> None:
    """kill -9 of every pid at one instant as far as they can tell: all stopped first, so no
    survivor replaces its peer between two kills (as a PID namespace's teardown kills them)."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sleeper():
    """sleeper() -> a live `sleep` process (Popen), killed and reaped after the test."""
    procs = []

    def start() -> subprocess.Popen:
        procs.append(subprocess.Popen(["sleep", "600"]))
        return procs[-1]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts as a new process would: no key known to be watched already."""
    life._watched.clear()
    yield
    life.start_deferred()  # a test that deferred and failed midway: no lock left in this process
    life._watched.clear()


# -- one pair, for exactly the owner's life -----------------------------------------------------


def test_a_pair_holds_the_life_lock_for_exactly_its_owners_life(state_dir, sleeper):
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)
    assert key.endswith(f"-{owner.pidns}-{proc.pid}-{owner.start_time}")
    assert life.probe(key, str(state_dir)) == life.MISSING
    assert life.ensure_watcher(owner, str(state_dir)) is True
    assert life.probe(key, str(state_dir)) == life.HELD  # at once: the file is created locked
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the watcher's peer started")
    assert life.forget(key, str(state_dir)) is False  # held: a live owner's file stays
    assert os.path.exists(life_file(state_dir, key))

    proc.kill()
    proc.wait()
    took = wait_until(lambda: not watchers(state_dir) and not os.path.exists(life_file(state_dir, key)),
                      WITHIN_S, "both watchers gone and the life file removed after the owner's exit")
    assert life.probe(key, str(state_dir)) == life.MISSING
    assert took < WITHIN_S


def test_a_watcher_that_cannot_start_leaves_no_file_that_reads_as_dead(state_dir, sleeper, monkeypatch):
    """No process to spare (EAGAIN): the owner goes unwatched (judged by its PID), and no free
    life file is left behind, which another PID namespace would read as "its owner exited"."""
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)

    def no_process(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "posix_spawn", no_process)
    assert life.ensure_watcher(owner, str(state_dir)) is False
    assert life.probe(key, str(state_dir)) == life.MISSING
    monkeypatch.undo()
    assert life.ensure_watcher(owner, str(state_dir)) is True  # the next call starts it
    assert life.probe(key, str(state_dir)) == life.HELD


def test_a_watcher_whose_shared_store_settings_fail_does_not_start_and_leaves_no_file(state_dir, sleeper):
    """The shared store's settings are asked when a pair starts (renew_on_shared_store): one
    that cannot be had (a ConfigError, say) is a start that failed, as for EAGAIN above, not
    an exception out of ensure_watcher with a free life file left behind."""
    from sessionward.errors import ConfigError

    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)

    def broken():
        raise ConfigError("store key prefix: unusable user name 'a b'")

    life.renew_on_shared_store(broken)
    try:
        assert life.ensure_watcher(owner, str(state_dir)) is False
        assert life.probe(key, str(state_dir)) == life.MISSING
        life.defer_starts()  # the hooks' way: started after the answer, forked
        assert life.ensure_watcher(owner, str(state_dir)) is True
        life.start_deferred(exiting=False)
        assert owner.life is False and life.probe(key, str(state_dir)) == life.MISSING
    finally:
        life.renew_on_shared_store(None)
    assert watchers(state_dir) == []


def test_a_deferred_pair_starts_only_when_asked_and_the_lock_is_held_all_along(state_dir, sleeper):
    """defer_starts() (a SessionStart hook, until it has answered): the life file reads as held
    at once, held by the caller; no watcher runs until start_deferred(), which hands the lock
    to the pair without a moment free."""
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)
    life.defer_starts()
    assert life.ensure_watcher(owner, str(state_dir)) is True
    assert life.probe(key, str(state_dir)) == life.HELD
    time.sleep(0.2)  # a pair started anyway would show by now
    assert watchers(state_dir) == []
    life.start_deferred()
    assert life.probe(key, str(state_dir)) == life.HELD
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the deferred pair formed")
    life._watched.clear()
    assert life.ensure_watcher(owner, str(state_dir)) is True  # not deferring any more, and held: nothing new
    time.sleep(0.2)
    assert len(watchers(state_dir)) == 2
    proc.kill()
    proc.wait()
    wait_until(lambda: not watchers(state_dir) and life.probe(key, str(state_dir)) == life.MISSING, WITHIN_S,
               "the deferred pair gone with its owner")


def test_a_session_start_whose_deferred_pair_cannot_start_registers_again_without_life(state_dir, sleeper,
                                                                                    monkeypatch, tmp_path):
    """SessionStart registers with the pair's start deferred (the record says life); when the
    pair cannot start after the answer (no process to spare), the record is written again
    saying no watcher, so no other PID namespace reads the live session as dead."""
    from sessionward.hooks import HookEvent, session_start

    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)
    cwd = os.path.realpath(make_git_repo(tmp_path / "proj"))
    event = HookEvent("SessionStart", {"session_id": "5e551011-0000-4000-8000-000000000001", "cwd": cwd,
                                       "source": "startup"}, dict(os.environ), defer_watchers=True)
    event._owner = owner
    try:
        session_start.handle(event)
        [record] = registered(state_dir).values()
        assert record["owner"]["life"] is True
        assert life.probe(key, str(state_dir)) == life.HELD  # by this process until it has answered
    finally:
        def no_process(*args, **kwargs):
            raise BlockingIOError(11, "Resource temporarily unavailable")

        monkeypatch.setattr(os, "posix_spawn", no_process)
        life.start_deferred()
    [record] = registered(state_dir).values()
    assert record["owner"]["life"] is False, record["owner"]
    assert life.probe(key, str(state_dir)) == life.MISSING
    assert watchers(state_dir) == []


def test_twenty_racing_ensure_watcher_calls_start_one_pair(state_dir, sleeper):
    owner = resolve_owner(sleeper().pid)
    key = key_of(owner)
    read_end, write_end = os.pipe()
    children = []
    for _ in range(20):  # 20 processes at once, as 20 hooks of one session could be
        child = os.fork()
        if child == 0:
            try:
                os.close(write_end)
                os.read(read_end, 1)  # the barrier: all start together
                os._exit(0 if life.ensure_watcher(owner, str(state_dir)) else 1)
            finally:
                os._exit(2)
        children.append(child)
    os.close(read_end)
    os.close(write_end)  # EOF: go
    codes = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children]
    assert codes == [0] * 20
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
    time.sleep(0.2)  # a duplicate pair would have started by now
    for _ in range(20):  # and 20 more, one after the other, each as a new process
        life._watched.clear()
        assert life.ensure_watcher(owner, str(state_dir)) is True
    assert len(watchers(state_dir)) == 2, watchers(state_dir)
    assert os.listdir(life.life_dir(str(state_dir))) == [key]  # no temp file left either
    assert life.probe(key, str(state_dir)) == life.HELD


def test_one_process_watching_an_owner_in_two_state_directories_gets_a_lock_in_each(tmp_path, sleeper):
    """The Python API takes a state_dir: what this process has watched in one directory says
    nothing of another (a record there saying "life" with no file would read as a dead owner)."""
    owner = resolve_owner(sleeper().pid)
    key = key_of(owner)
    first, second = tmp_path / "one", tmp_path / "two"
    assert life.ensure_watcher(owner, str(first)) and life.ensure_watcher(owner, str(second))
    assert life.probe(key, str(first)) == life.HELD
    assert life.probe(key, str(second)) == life.HELD


STARTER = r"""
import os, sys
from sessionward.identity import life, resolve_owner
stray = os.pipe()  # inheritable descriptors a careless fork would pass on
for fd in stray:
    os.set_inheritable(fd, True)
print(life.ensure_watcher(resolve_owner(int(sys.argv[1])), sys.argv[2]))
"""


def test_the_watchers_hold_nothing_of_their_starter(state_dir, sleeper):
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)
    # Started by a process whose stdout and stderr are pipes we read to EOF, as Claude Code
    # reads a hook's: a watcher holding either would keep this run waiting.
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STARTER, str(proc.pid), str(state_dir)], capture_output=True,
                          text=True, timeout=20)
    took = time.monotonic() - started
    assert done.returncode == 0 and done.stdout == "True\n", done
    assert took < 5.0, f"the starter's pipes stayed open {took:.1f} s"
    assert_pair_holds_nothing_of_its_starter(state_dir, key, proc.pid)


def test_a_pair_started_by_a_process_nicer_than_its_own_niceness_keeps_that_niceness(state_dir, sleeper):
    """lower_priority never raises a priority: a session run under `nice -n 15` gets a pair at 15."""
    proc = sleeper()
    key = key_of(resolve_owner(proc.pid))
    done = subprocess.run([sys.executable, "-c", STARTER, str(proc.pid), str(state_dir)], capture_output=True,
                          text=True, timeout=20, preexec_fn=lambda: os.nice(NICENESS + 5))
    assert done.returncode == 0 and done.stdout == "True\n", done
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
    assert [niceness(pid) for pid in watchers(state_dir, key)] == [NICENESS + 5] * 2


def assert_pair_holds_nothing_of_its_starter(state_dir, key: str, owner_pid: int) -> None:
    """The pair of `key` forms, each with /dev/null on 0-2, the life file and its own pidfds and
    nothing else, cwd /, its own session, and neither this test nor the owner among its ancestors."""
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
    held = os.stat(life_file(state_dir, key))
    mine = os.getsid(0)
    for pid in watchers(state_dir, key):
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert [fds[fd] for fd in (0, 1, 2)] == ["/dev/null"] * 3, fds
        lock = [fd for fd in fds if fd > 2 and not fds[fd].startswith("anon_inode:")]
        assert len(lock) == 1, fds  # the life file and nothing else (no pipe, socket, file)
        there = os.stat(f"/proc/{pid}/fd/{lock[0]}")
        assert (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino), fds
        assert all(fds[fd] == "anon_inode:[pidfd]" for fd in fds if fd > 2 and fd != lock[0]), fds
        assert os.readlink(f"/proc/{pid}/cwd") == "/"  # holds no directory busy
        assert niceness(pid) == max(NICENESS, os.getpriority(os.PRIO_PROCESS, 0)), "a pair yields the CPU to the hooks"
        _, ppid, pgrp, session = stat_fields(pid)[:4]
        assert int(session) not in (mine, os.getsid(owner_pid), 0), (pid, session)
        line, up = [], pid  # its ancestors: neither this test nor the owner
        while up > 1:
            up = int(stat_fields(up)[1])
            line.append(up)
        assert os.getpid() not in line and owner_pid not in line, line


# -- 20 SessionStarts of one Claude Code process --------------------------------------------


@pytest.fixture
def stand_in(tmp_path):
    """A stand-in `claude` (tests/hooks/conftest.py's FakeClaude, flavour 2.1.331) and the
    captured SessionStart payload, its paths moved to a real git repository."""
    bin_dir = tmp_path / "fake-claude-bin"
    bin_dir.mkdir()
    script = bin_dir / "fake_claude.py"
    script.write_text(_hook_fixtures.FAKE_CLAUDE_PROGRAM)
    (bin_dir / "claude").symlink_to(sys.executable)
    root = os.path.realpath(tmp_path / "rc")
    os.mkdir(root)
    make_git_repo(tmp_path / "rc" / "proj")
    claude = _hook_fixtures.FakeClaude("2.1.331", str(bin_dir / "claude"), str(script))
    claude.payloads = _hook_fixtures.Payloads(root)
    yield claude
    claude.close()


def payload(claude, name: str, session_id: str, **changes) -> dict:
    captured = dict(claude.payloads.get("2.1.331", "basic", name))
    captured.update(session_id=session_id, **changes)
    return captured


def registered(state_dir) -> dict:
    with open(state_dir / "obsidian_sessions.json") as f:
        return json.load(f)["sessions"]


def test_twenty_session_starts_of_one_claude_start_one_pair(state_dir, stand_in):
    session = "fc99ad74-5136-485d-acfe-04158072b6ba"
    slowest = 0.0
    for n in range(20):
        source = ("startup", "resume", "clear")[n % 3]
        if source == "clear":  # /clear starts a new session id in the same process
            session = f"c1ea0000-0000-4000-8000-{n:012d}"
        started = time.monotonic()
        done = stand_in.hook("SessionStart", payload(stand_in, "01-SessionStart", session, source=source))
        slowest = max(slowest, time.monotonic() - started)
        assert done.rc == 0 and not done.timed_out, done
    owner_record = next(iter(registered(state_dir).values()))["owner"]
    assert owner_record["pid"] == stand_in.pid and owner_record["life"] is True
    key = life.life_key(owner_record["boot_id"], owner_record["pidns"], stand_in.pid, owner_record["start_time"])
    wait_until(lambda: len(watchers(state_dir)) == 2, WITHIN_S, "the pair formed")
    assert watchers(state_dir) == watchers(state_dir, key)
    assert os.listdir(life.life_dir(str(state_dir))) == [key]
    assert slowest < 5.0, f"a SessionStart took {slowest:.1f} s: waiting on the watcher's pipes?"

    stand_in.kill()
    wait_until(lambda: not watchers(state_dir) and not os.listdir(life.life_dir(str(state_dir))), WITHIN_S,
               "the pair gone and the life file removed after claude's exit")


def test_a_session_start_hooks_pair_holds_nothing_of_the_hook(state_dir, stand_in):
    """The real hook forks its pair once it has answered (life.start_deferred(exiting=True)):
    its stdout and stderr, which Claude Code reads to EOF, pointed at /dev/null first; the
    pair keeps nothing of it."""
    started = time.monotonic()
    done = stand_in.hook("SessionStart", payload(stand_in, "01-SessionStart", "fc99ad74-5136-485d-acfe-04158072b6ba"))
    assert done.rc == 0 and not done.timed_out, done
    assert time.monotonic() - started < 5.0, "the hook's pipes stayed open"
    [record] = registered(state_dir).values()
    key = life.life_key(record["owner"]["boot_id"], record["owner"]["pidns"], stand_in.pid,
                        record["owner"]["start_time"])
    assert_pair_holds_nothing_of_its_starter(state_dir, key, stand_in.pid)


FORK_WITHOUT_INTERPRETER = r"""
import sys
from sessionward.identity import life, resolve_owner
owner = resolve_owner(int(sys.argv[1]))
life.defer_starts()
assert life.ensure_watcher(owner, sys.argv[2])
sys.executable = "/nonexistent/python3"  # the exec fails: the forked child must watch by itself
life.start_deferred(exiting=True)
"""


def test_a_forked_watcher_whose_exec_fails_still_holds_the_lock_for_its_owners_life(state_dir, sleeper):
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    key = key_of(owner)
    done = subprocess.run([sys.executable, "-c", FORK_WITHOUT_INTERPRETER, str(proc.pid), str(state_dir)],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done
    for _ in range(40):  # its starter has exited: held by the fallback watcher alone
        assert life.probe(key, str(state_dir)) == life.HELD
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    wait_until(lambda: life.probe(key, str(state_dir)) == life.MISSING, WITHIN_S,
               "the fallback watcher removed the life file after its owner's exit")


# -- killed watchers ------------------------------------------------------------------------


def test_one_killed_watcher_is_replaced_and_its_owner_stays_held(state_dir, sleeper):
    owner = resolve_owner(sleeper().pid)
    key = key_of(owner)
    life.ensure_watcher(owner, str(state_dir))
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
    for round_ in range(4):  # the first of the pair, then the newer one, and so on
        pair = watchers(state_dir, key)
        victim = pair[round_ % 2]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        replaced = None
        # Held all along, never more than a pair: watched until a second after the kill, or
        # 0.2 s after the replacement (a duplicate would have shown by then).
        while time.monotonic() - killed < WITHIN_S and (replaced is None or time.monotonic() - replaced < 0.2):
            assert life.probe(key, str(state_dir)) == life.HELD, f"round {round_}: the lock was freed"
            now = watchers(state_dir, key)
            assert len(now) <= 2, f"round {round_}: a duplicate: {now}"
            if len(now) == 2 and victim not in now:
                replaced = replaced or time.monotonic()
            time.sleep(0.005)
        assert replaced is not None, f"round {round_}: the killed watcher {victim} was not replaced: {now}"
    life._watched.clear()
    assert life.ensure_watcher(owner, str(state_dir)) is True  # finds it held: starts nothing
    time.sleep(0.2)
    assert len(watchers(state_dir)) == 2


def judged_from_another_pidns(state_dir) -> dict:
    """What `sessionward prune` (a dry run) run in a new PID namespace says: {id: reason} of
    the sessions it would sweep as dead."""
    done = subprocess.run(["unshare", "-fp", "--mount-proc", SESSIONWARD, "prune", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {d["session"]["id"]: d["reason"] for d in json.loads(done.stdout)["result"]["dead"]}


def sweep_from_another_pidns() -> None:
    done = subprocess.run(["unshare", "-fp", "--mount-proc", SESSIONWARD, "prune", "--apply"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@needs_pidns
def test_both_watchers_killed_free_the_lock_until_the_owners_next_hook(state_dir, stand_in):
    sid = "fc99ad74-5136-485d-acfe-04158072b6ba"
    assert stand_in.hook("SessionStart", payload(stand_in, "01-SessionStart", sid)).rc == 0
    [record] = registered(state_dir).values()
    key = life.life_key(record["owner"]["boot_id"], record["owner"]["pidns"], stand_in.pid,
                        record["owner"]["start_time"])
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
    assert judged_from_another_pidns(state_dir) == {}

    # Both killed (by hand, or the OOM killer): the lock is free, the owner dead as seen from
    # another PID namespace (fail safe the other way would keep a dead container's session
    # forever); its own namespace still sees its PID live.
    kill_all(watchers(state_dir, key))
    # (a killed process's argv empties before its descriptors close: wait for the lock itself)
    wait_until(lambda: not watchers(state_dir) and life.probe(key, str(state_dir)) == life.FREE, WITHIN_S,
               "both watchers gone and the lock free")
    assert "has exited (its watcher is gone)" in judged_from_another_pidns(state_dir)[record["id"]]
    assert record_liveness(record["owner"], record["last_seen"]).alive  # here: by its PID

    # Its next heartbeat (Stop) starts a new pair; the record says life, and lives again there.
    assert stand_in.hook("Stop", payload(stand_in, "08-Stop", sid)).rc == 0
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "a new pair after the heartbeat")
    assert life.probe(key, str(state_dir)) == life.HELD
    assert registered(state_dir)[record["id"]]["owner"]["life"] is True
    assert judged_from_another_pidns(state_dir) == {}

    # Killed again and swept from the other namespace: its next prompt registers it again,
    # with a new pair, and the new record says life.
    kill_all(watchers(state_dir, key))
    wait_until(lambda: not watchers(state_dir) and life.probe(key, str(state_dir)) == life.FREE, WITHIN_S,
               "both watchers gone and the lock free")
    sweep_from_another_pidns()
    assert registered(state_dir) == {}
    assert stand_in.hook("UserPromptSubmit", payload(stand_in, "02-UserPromptSubmit", sid)).rc == 0
    [again] = registered(state_dir).values()
    assert again["owner"]["pid"] == stand_in.pid and again["owner"]["life"] is True
    wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "a new pair after the re-registration")
    assert judged_from_another_pidns(state_dir) == {}


# -- PID reuse ------------------------------------------------------------------------------


def test_a_record_with_another_start_time_gets_no_watcher_of_the_live_pid(state_dir, sleeper):
    """A recycled PID: the record's owner (PID P, start S) is gone, P now names another process.
    Its key is not the new process's, and a watcher asked for it sees the owner gone at once."""
    proc = sleeper()
    owner = resolve_owner(proc.pid)
    assert life.life_key(owner.boot_id, owner.pidns, owner.pid, owner.start_time - 1) != key_of(owner)
    owner.start_time -= 1  # the predecessor's identity
    key = key_of(owner)
    life.ensure_watcher(owner, str(state_dir))
    wait_until(lambda: not watchers(state_dir) and life.probe(key, str(state_dir)) == life.MISSING, WITHIN_S,
               "the watcher of a PID reused by another process gave up and removed its file")


REUSE_PROGRAM = r"""
import json, os, subprocess, sys, time
from sessionward.identity import life, resolve_owner
state = sys.argv[1]
first = subprocess.Popen(["sleep", "600"])
old = resolve_owner(first.pid)
life.ensure_watcher(old, state)
old_key = life.life_key(old.boot_id, old.pidns, old.pid, old.start_time)
first.kill()
first.wait()
while life.probe(old_key, state) == life.HELD:
    time.sleep(0.005)
# A start time counts clock ticks (10 ms): a PID reused within the tick its predecessor
# started in would carry the very same identity. Outside this test a PID comes back only
# after the whole PID space went round; here the reuse is forced, so wait out the tick.
time.sleep(0.03)
with open("/proc/sys/kernel/ns_last_pid", "w") as f:  # the next fork gets the same PID
    f.write(str(first.pid - 1))
second = subprocess.Popen(["sleep", "600"])
new = resolve_owner(second.pid)
life.ensure_watcher(new, state)
print(json.dumps({"pid": first.pid, "again": second.pid, "old_start": old.start_time, "new_start": new.start_time,
                  "pidns": new.pidns, "boot_id": new.boot_id, "host": new.hostname}), flush=True)
sys.stdin.read()  # alive until told
"""


@needs_pidns
def test_a_recycled_pid_in_another_namespace_is_not_its_predecessor(state_dir):
    """A real PID reuse (ns_last_pid of a new PID namespace): the predecessor's record is dead
    seen from here, the new process's alive, though both name the same PID."""
    ns = subprocess.Popen(["unshare", "-fp", "--mount-proc", "--kill-child", sys.executable, "-c", REUSE_PROGRAM,
                           str(state_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        facts = json.loads(ns.stdout.readline())
        assert facts["again"] == facts["pid"] and facts["new_start"] != facts["old_start"], facts
        assert facts["pidns"] != this_host().pidns

        def record(start):
            return {"pid": facts["pid"], "start_time": start, "host": facts["host"], "boot_id": facts["boot_id"],
                    "pidns": facts["pidns"], "comm": "sleep", "life": True}

        old, new = record_liveness(record(facts["old_start"]), None), record_liveness(record(facts["new_start"]), None)
        assert (old.alive, old.how) == (False, "life lock"), old.reason
        assert (new.alive, new.how) == (True, "life lock"), new.reason
    finally:
        ns.stdin.close()
        ns.wait(timeout=20)


# -- what the pair holds open --------------------------------------------------------------------


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount(), reason="needs root: mounts a tmpfs")
def test_a_running_pair_lets_the_state_directory_be_remounted_read_only(state_dir, sleeper):
    """The pair holds its life file for a lock, never for writing: a filesystem with a file
    open for writing refuses `mount -o remount,ro` (busy), and the watchers live as long as
    the sessions, so a state directory on its own filesystem could never be made read-only."""
    state_dir.mkdir(mode=0o700)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(state_dir)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        owner = resolve_owner(sleeper().pid)
        key = key_of(owner)
        assert life.ensure_watcher(owner, str(state_dir))
        wait_until(lambda: len(watchers(state_dir, key)) == 2, WITHIN_S, "the pair formed")
        remount = subprocess.run(["mount", "-o", "remount,ro", str(state_dir)], capture_output=True, text=True)
        assert remount.returncode == 0, f"the watchers keep the filesystem busy: {remount.stderr.strip()}"
        assert life.probe(key, str(state_dir)) == life.HELD  # and the lock still answers, read-only
        for pid in watchers(state_dir, key):
            [fd] = [fd for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(
                str(state_dir))]
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = int(next(line for line in f if line.startswith("flags:")).split()[1], 8)
            assert flags & os.O_ACCMODE == os.O_RDONLY, (pid, fd, oct(flags))
    finally:
        subprocess.run(["umount", "-l", str(state_dir)], capture_output=True)
