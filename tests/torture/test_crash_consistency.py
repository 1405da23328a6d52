"""Crash consistency (issue 5, part 1): a crash at any step of any write path loses nothing.

Two kinds of crash:
  - at a named point: every (step, occurrence) an operation passes through (found by running
    it once with SESSIONWARD_TEST_CRASH_AT=trace:FILE) is crashed in its own fresh child with
    SESSIONWARD_TEST_CRASH_AT=STEP@N (the child must exit 91 there);
  - `kill -9` at random instants of a loop of writes, in workers forked by a child "zygote"
    (so hundreds of kills cost a fork each, not an interpreter start).
After each crash the parent checks: every state file parses; every update committed before the
crash is still there; the interrupted update is all or nothing; a corrupt file is kept aside,
never deleted; and the next normal operation works at once (nobody waits on the dead).

Notes (`sessionward note append|write`) are covered like the registry: a note in a vault
directory, appended to and rewritten with --expect-sha256.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from sessionward._atomic import CRASH_EXIT_STATUS, CRASH_STEPS
from sessionward.claims import claims_on, end_claims, record_claim
from sessionward.identity import resolve_owner
from sessionward.install.settings import apply_settings, merge_settings
from sessionward.locks import Holder, NamedLock, cleanup_orphans
from sessionward.notes import append_note
from sessionward.registry import HEARTBEAT_REFRESH_S, heartbeat, register_session
from sessionward.store.local import decode_registry
from sessionward.store.local_claims import claims_dir, shard_name

PART = "crash consistency"
LAUNCHER = "/opt/sessionward/bin/sessionward"
CHILD_TIMEOUT_S = 30
KILLS_PER_PATH = 60  # x 5 write paths: a few hundred kill -9s

# The operations, run in a fresh interpreter: `python -c CHILD OP ARGS-JSON`.
CHILD = r"""
import json, os, sys
from sessionward.identity import resolve_owner
op, a = sys.argv[1], json.loads(sys.argv[2])
if op == "register":
    from sessionward.registry import register_session
    register_session(a["cwd"], "p", session_id="newcomer", owner=resolve_owner(a["pid"]), now=200.0)
elif op == "register-broken":
    # The negative control: a registry writer that writes in place, without temp + rename.
    import sessionward.store.local as local
    from sessionward._atomic import crash_point
    from sessionward.registry import register_session
    def write_in_place(path, data, mode=0o600, durable=True):
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(data[: len(data) // 2])
            f.flush()
            crash_point("temp-written")
            f.write(data[len(data) // 2 :])
    local.write_file_atomic = write_in_place
    register_session(a["cwd"], "p", session_id="newcomer", owner=resolve_owner(a["pid"]), now=200.0)
elif op == "heartbeat":
    from sessionward.registry import heartbeat
    heartbeat(session_id="k0", owner=resolve_owner(a["pid"]), now=300.0)
elif op == "unregister":
    from sessionward.registry import unregister_sessions
    unregister_sessions(session_id="newcomer", owner=resolve_owner(a["pid"]))
elif op == "sweep":
    from sessionward.registry import prune_dead_sessions
    prune_dead_sessions()
elif op == "repair":
    from sessionward.store.local import LocalStore
    LocalStore().load_sessions()
elif op == "acquire":
    from sessionward.locks import NamedLock
    NamedLock("end", purpose="crash test").acquire(timeout=5)
elif op == "acquire-release":
    from sessionward.locks import NamedLock
    lock = NamedLock("end", purpose="crash test")
    lock.acquire(timeout=5)
    lock.release()
elif op == "wait":
    from sessionward.locks import LockTimeout, NamedLock
    try:
        NamedLock("end").acquire(timeout=0.05)
        sys.exit("acquired a lock held by a live process")
    except LockTimeout:
        pass
elif op == "claim":
    from sessionward.claims import record_claim
    record_claim(a["path"], owner=resolve_owner(a["pid"]), session_id="k3", tool="Edit", now=200.0,
                 state={"size": 1, "mtime_ns": 1, "digest": None})
elif op == "end-claims":
    from sessionward.claims import end_claims
    end_claims(resolve_owner(a["pid"]), now=250.0)
elif op == "note-append":
    from sessionward.notes import append_note
    append_note(a["path"], "added\n")
elif op == "note-write":
    from sessionward.notes import write_note
    write_note(a["path"], "rewritten\n", expect_sha256=a["expect"])
elif op == "install":
    from sessionward.install.settings import apply_settings, merge_settings
    apply_settings(a["path"], lambda doc: merge_settings(doc, a["launcher"]))
else:
    sys.exit("unknown op " + op)
"""


# -- the world every scenario starts from ------------------------------------------------------


class World:
    """Live keepers (k0..k5) that own the committed state, one dead owner, and the per-run
    state directory. Keepers live for the whole test; each run gets a fresh directory."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        self.procs = [subprocess.Popen(["sleep", "600"]) for _ in range(6)]
        self.owners = [resolve_owner(p.pid) for p in self.procs]
        self.pids = [o.pid for o in self.owners]
        self.names = {pid: f"k{i}" for i, pid in enumerate(self.pids)}
        gone = subprocess.Popen(["sleep", "600"])
        self.dead_owner = resolve_owner(gone.pid)
        gone.kill()
        gone.wait()
        self.cwd = str(tmp_path / "work")
        os.makedirs(self.cwd, exist_ok=True)
        self.home = ""
        self.runs = 0

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def fresh_home(self, label: str) -> str:
        self.runs += 1
        self.home = str(self.tmp / f"{self.runs:03d}-{label}")
        self.monkeypatch.setenv("SESSIONWARD_HOME", self.home)  # the parent's calls and the child's
        return self.home

    def who(self, pid, child_pid) -> str:
        if pid == child_pid:
            return "CHILD"
        return self.names.get(pid, f"pid {pid}")

    def start_child(self, op: str, args: dict, crash: str | None) -> subprocess.Popen:
        env = dict(os.environ)
        env.pop("SESSIONWARD_TEST_CRASH_AT", None)
        if crash:
            env["SESSIONWARD_TEST_CRASH_AT"] = crash
        return subprocess.Popen([sys.executable, "-c", CHILD, op, json.dumps(args)], env=env, cwd=self.cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = World(tmp_path, monkeypatch)
    yield w
    w.close()


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
    return proc.returncode, out


# -- the driver --------------------------------------------------------------------------------


class Scenario:
    """One operation: how to set up its committed state, run it, and judge what a crash left.

    prepare(w)            committed state in w.home (parent, before the child runs)
    op, args(w)           the child's operation
    judge(w, t, child_pid, point)  after the crash (or the complete run: point None): count
                          torn files and lost updates in `t`
    next_op(w, t, child_pid)       the next normal operation, in the parent: works at once
    """

    name = ""
    op = ""

    def prepare(self, w: World) -> None:
        raise NotImplementedError

    def args(self, w: World) -> dict:
        return {}

    def judge(self, w: World, t, child_pid: int, point) -> None:
        raise NotImplementedError

    def next_op(self, w: World, t, child_pid: int) -> None:
        raise NotImplementedError


def crash_points(w: World, scenario: Scenario, t) -> list:
    """Every (step, occurrence) the operation passes through, from one traced complete run,
    which is judged too (its end state must be the operation's whole result)."""
    w.fresh_home(f"{scenario.name}-trace")
    scenario.prepare(w)
    trace = os.path.join(w.tmp, f"{scenario.name}.trace")
    proc = w.start_child(scenario.op, scenario.args(w), f"trace:{trace}")
    status, out = finish(proc)
    t.operations += 1
    t.saw_output(f"{scenario.name} (complete run)", out)
    assert status == 0, f"{scenario.name} did not complete: {out}"
    scenario.judge(w, t, proc.pid, None)
    scenario.next_op(w, t, proc.pid)
    steps = open(trace).read().split()
    assert steps and set(steps) <= set(CRASH_STEPS), steps  # every step is a declared one
    seen: dict = {}
    points = []
    for step in steps:
        seen[step] = seen.get(step, 0) + 1
        points.append((step, seen[step]))
    return points


def crash_everywhere(w: World, scenario: Scenario, t) -> list:
    """Crash the operation at each of its points, in a fresh state each time; judge each."""
    points = crash_points(w, scenario, t)
    missed = []
    for step, nth in points:
        w.fresh_home(f"{scenario.name}-{step}@{nth}")
        scenario.prepare(w)
        proc = w.start_child(scenario.op, scenario.args(w), f"{step}@{nth}")
        status, out = finish(proc)
        t.operations += 1
        t.faults_injected += 1
        t.saw_output(f"{scenario.name} crashed at {step}@{nth}", out)
        if status != CRASH_EXIT_STATUS:
            missed.append(f"{step}@{nth}: exit {status} {out[-300:]}")
            continue
        scenario.judge(w, t, proc.pid, (step, nth))
        scenario.next_op(w, t, proc.pid)
        t.operations += 1
    assert not missed, f"{scenario.name}: the child did not die at these points: {missed}"
    t.figures["crash points"] = t.figures.get("crash points", 0) + len(points)
    return points


def accept(t, what: str, seen, allowed: list) -> None:
    """`seen` must be one of the `allowed` states (the committed ones): otherwise an update was
    lost or half-made."""
    if seen not in allowed:
        t.problem("lost_updates", f"{what}: found {seen!r}, expected one of {allowed!r}")


def stray_temps(directory: str, target: str) -> list:
    return sorted(e for e in os.listdir(directory) if e.startswith(f".{target}.") and e.endswith(".tmp"))


def quickly(t, what: str, action, limit_s: float = 1.0):
    """Run the next normal operation: no exception, and no waiting on the dead."""
    started = time.monotonic()
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 - counted, with what it was
        t.problem("tracebacks", f"{what}: {type(exc).__name__}: {exc}")
        return None
    if time.monotonic() - started > limit_s:
        t.problem("lost_updates", f"{what} took {time.monotonic() - started:.2f} s: it waited on the dead")
    return result


# -- the registry ------------------------------------------------------------------------------


def registry_view(w: World, t, what: str):
    """{id: last_seen} of the registry as the store's decoder reads it; "torn" when it does not
    decode (counted)."""
    path = os.path.join(w.home, "obsidian_sessions.json")
    raw = open(path, "rb").read() if os.path.exists(path) else None
    if raw is None:
        return {}
    sessions, problem = decode_registry(raw, path)
    if problem is not None:
        return ("corrupt", raw)
    return {rid: rec["last_seen"] for rid, rec in sessions.items()}


class RegistryScenario(Scenario):
    """Five live sessions (k0..k4, last seen at 100) and one dead one, committed first."""

    with_newcomer = False
    keepers = {f"k{i}": 100.0 for i in range(5)}

    def prepare(self, w: World) -> None:
        for i in range(5):
            register_session(w.cwd, "p", session_id=f"k{i}", owner=w.owners[i], now=100.0)
        if self.with_newcomer:
            register_session(w.cwd, "p", session_id="newcomer", owner=w.owners[5], now=150.0)
        register_session(w.cwd, "p", session_id="dead", owner=w.dead_owner, now=100.0)  # swept only by the next write

    def args(self, w: World) -> dict:
        return {"cwd": w.cwd, "pid": w.pids[5] if self.op != "heartbeat" else w.pids[0]}

    def states(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def judge(self, w, t, child_pid, point) -> None:
        old, new = self.states()
        seen = self.seen = registry_view(w, t, self.name)
        if isinstance(seen, tuple):
            t.problem("torn_files", f"{self.name} at {point}: the registry does not decode")
            return
        accept(t, f"registry after {self.name} crashed at {point}", seen, [new] if point is None else [old, new])

    def next_op(self, w, t, child_pid) -> None:
        quickly(t, f"heartbeat after {self.name}", lambda: heartbeat(session_id="k1", owner=w.owners[1], now=400.0))
        seen = registry_view(w, t, self.name)
        # what the crash left (judged above), plus the heartbeat, minus the dead it swept
        want = dict(self.seen if isinstance(self.seen, dict) else self.states()[1], k1=400.0)
        want.pop("dead", None)
        accept(t, f"registry after {self.name} and a heartbeat", seen, [want])
        strays = stray_temps(w.home, "obsidian_sessions.json")
        if strays:  # left by the dead writer: never read, but removed by the next write
            t.problem("torn_files", f"stray temp files after {self.name}: {strays}")


class Register(RegistryScenario):
    name, op = "register", "register"

    def states(self):
        old = dict(self.keepers, dead=100.0)
        return old, dict(self.keepers, newcomer=200.0)


class Heartbeat(RegistryScenario):
    name, op = "heartbeat", "heartbeat"

    def states(self):
        return dict(self.keepers, dead=100.0), dict(self.keepers, k0=300.0)


class Unregister(RegistryScenario):
    name, op, with_newcomer = "unregister", "unregister", True

    def states(self):
        return dict(self.keepers, newcomer=150.0, dead=100.0), dict(self.keepers)



class Sweep(RegistryScenario):
    name, op = "sweep", "sweep"

    def states(self):
        return dict(self.keepers, dead=100.0), dict(self.keepers)


class Repair(RegistryScenario):
    """A registry with one malformed record: kept aside (hard link), the rest carried over."""

    name, op = "corrupt-kept-aside", "repair"

    def prepare(self, w):
        super().prepare(w)
        path = os.path.join(w.home, "obsidian_sessions.json")
        doc = json.loads(open(path, "rb").read())
        doc["sessions"]["bad"] = {"id": "bad", "owner": "not a record"}
        self.corrupt = json.dumps(doc).encode()
        with open(path, "wb") as f:
            f.write(self.corrupt)

    def states(self):
        return ("corrupt", self.corrupt), dict(self.keepers, dead=100.0)

    def judge(self, w, t, child_pid, point) -> None:
        old, new = self.states()
        seen = self.seen = registry_view(w, t, self.name)
        accept(t, f"registry after its repair crashed at {point}", seen, [new] if point is None else [old, new])
        self.check_kept(w, t, point, at_least=0 if seen == old else 1)

    def check_kept(self, w, t, point, at_least: int) -> None:
        kept = [e for e in os.listdir(w.home) if e.startswith("obsidian_sessions.json.corrupt-")]
        for entry in kept:
            if open(os.path.join(w.home, entry), "rb").read() != self.corrupt:
                t.problem("torn_files", f"{entry} (kept aside at {point}) is not the corrupt original")
        if len(kept) < at_least:
            t.problem("lost_updates", f"the corrupt registry was replaced at {point} but not kept aside")

    def next_op(self, w, t, child_pid) -> None:
        super().next_op(w, t, child_pid)
        self.check_kept(w, t, "the next operation", at_least=1)


# -- locks -------------------------------------------------------------------------------------


def lock_view(w: World, name: str, child_pid: int):
    """Who NAME.lock names, as status() reads it: "free", a keeper, "CHILD", or what it holds
    instead of a PID. A PID whose annex (written first) does not match is marked."""
    state = NamedLock(name).status()
    if not state.present:
        return "free"
    if state.pid is None:
        return ("no pid", state.raw)
    who = w.who(state.pid, child_pid)
    return who if state.meta is not None else (who, "annex does not match")


def queue_view(w: World, child_pid: int):
    """The waiters in the guard file of `end`, by name; ("torn", bytes) when it does not parse."""
    path = os.path.join(w.home, "sessionward", "locks", "end.guard")
    raw = open(path, "rb").read() if os.path.exists(path) else b""
    if not raw.strip():
        return []
    try:
        doc = json.loads(raw)
        return [w.who(waiter["pid"], child_pid) for waiter in doc.get("waiters", [])]
    except (ValueError, KeyError, TypeError):
        return ("torn", raw)


class LockScenario(Scenario):
    """Committed in every lock scenario: lock `keep` held by the live k0."""

    def prepare(self, w: World) -> None:
        NamedLock("keep", holder=Holder.process(w.pids[0]), purpose="committed").acquire(timeout=0)

    def check_keep(self, w, t, point) -> None:
        state = NamedLock("keep").status()
        if not (state.held and state.pid == w.pids[0] and state.meta and state.meta["purpose"] == "committed"):
            t.problem("lost_updates", f"lock keep, held by k0, lost at {point}: {state.describe()}")

    def judge(self, w, t, child_pid, point) -> None:
        self.check_keep(w, t, point)
        self.check_annex(w, t, point)
        seen = lock_view(w, "end", child_pid)
        if isinstance(seen, tuple):
            t.problem("torn_files", f"{self.name} crashed at {point}: end.lock is {seen!r}")
            return
        accept(t, f"lock end after {self.name} crashed at {point}", seen, self.allowed(point))

    def allowed(self, point) -> list:
        return ["CHILD"] if point is None else ["free", "CHILD"]

    def check_annex(self, w, t, point) -> None:
        """The holder annex parses whenever it exists (it counts only while NAME.lock names its
        PID, but a half-written one must not be what the next reader finds)."""
        path = os.path.join(w.home, "sessionward", "locks", "end.holder.json")
        if os.path.exists(path):
            try:
                json.loads(open(path, "rb").read())
            except ValueError as exc:
                t.problem("torn_files", f"end.holder.json after {self.name} crashed at {point}: {exc}")

    def next_op(self, w, t, child_pid) -> None:
        lock = NamedLock("end")
        if quickly(t, f"acquire after {self.name}", lambda: lock.acquire(timeout=0)) is not None:
            held = lock.status()
            if held.pid != os.getpid():
                t.problem("double_holders", f"acquire after {self.name} returned, but end.lock names {held.pid}")
            lock.release()
        self.check_keep(w, t, "the next operation")
        # A temp file of an acquire that died before linking it is never read as state; the
        # next take-over or `lock cleanup` removes it.
        cleanup_orphans()
        strays = stray_temps(w.home, "end.lock")
        if strays:
            t.problem("torn_files", f"stray temp files beside end.lock after {self.name} and a cleanup: {strays}")


class AcquireFree(LockScenario):
    """A free lock whose last holder left a long annex (the new one is shorter)."""

    name, op = "acquire", "acquire"

    def prepare(self, w):
        super().prepare(w)
        before = NamedLock("end", holder=Holder.process(w.pids[1]), purpose="a long purpose " * 100)
        before.acquire(timeout=0)
        before.release()


class TakeOverOrphan(LockScenario):
    """end.lock names a dead process (with its annex): taken over by an atomic replace."""

    name, op = "take-over", "acquire"

    def prepare(self, w):
        super().prepare(w)
        NamedLock("end", holder=Holder(w.dead_owner, False), purpose="died holding it").acquire(timeout=0)

    def allowed(self, point):
        return ["CHILD"] if point is None else ["dead", "CHILD"]

    def judge(self, w, t, child_pid, point):
        w.names[w.dead_owner.pid] = "dead"
        if lock_view(w, "end", child_pid) == ("dead", "annex does not match") and point and point[0] in (
                "annex-written", "temp-written"):
            # The new holder's annex is written before NAME.lock is replaced: a crash in
            # between leaves the dead PID with a foreign annex, judged by PID and age alone
            # (still dead): the orphan it was, minus who it had been.
            self.check_keep(w, t, point)
            return
        super().judge(w, t, child_pid, point)


class TakeOverCorrupt(LockScenario):
    """end.lock holds no PID: kept aside (never deleted) and replaced."""

    name, op = "take-over-corrupt", "acquire"
    garbage = b"not a pid\n"

    def prepare(self, w):
        super().prepare(w)
        with open(os.path.join(w.home, "end.lock"), "wb") as f:
            f.write(self.garbage)

    def judge(self, w, t, child_pid, point):
        self.check_keep(w, t, point)
        self.check_annex(w, t, point)
        seen = lock_view(w, "end", child_pid)
        if seen == ("no pid", self.garbage):
            seen = "the planted file"
        elif isinstance(seen, tuple):
            t.problem("torn_files", f"{self.name} crashed at {point}: end.lock is {seen!r}")
            return
        accept(t, f"lock end after {self.name} crashed at {point}", seen,
               ["CHILD"] if point is None else ["the planted file", "free", "CHILD"])
        self.check_kept(w, t, point)

    def check_kept(self, w, t, point):
        kept = [e for e in os.listdir(w.home) if e.startswith("end.lock.corrupt-")]
        copies = [open(os.path.join(w.home, e), "rb").read() for e in kept]
        at_path = open(os.path.join(w.home, "end.lock"), "rb").read() if os.path.exists(os.path.join(w.home, "end.lock")) else None
        if self.garbage not in copies + [at_path]:
            t.problem("lost_updates", f"the corrupt end.lock was deleted at {point}, not kept aside")

    def next_op(self, w, t, child_pid):
        super().next_op(w, t, child_pid)
        self.check_kept(w, t, "the next operation")


class AcquireRelease(LockScenario):
    name, op = "acquire-release", "acquire-release"

    def allowed(self, point):
        return ["free"] if point is None else ["free", "CHILD"]


WAITER = r"""
import sys
from sessionward.locks import NamedLock
lock = NamedLock("end", purpose="waiter")
lock.acquire(timeout=60)
lock.release()
"""


class QueueJoin(LockScenario):
    """end held by the live k1, with a live waiter W queued first: the child joins the queue,
    times out and leaves it. Nobody but k1 may hold the lock; W keeps its place at the head
    and gets the lock at once when k1 goes; then nobody waits on the dead child."""

    name, op = "queue-join", "wait"

    def prepare(self, w):
        super().prepare(w)
        lock = NamedLock("end", holder=Holder.process(w.pids[1]), purpose="held")
        lock.acquire(timeout=0)
        lock.close()
        self.waiter = subprocess.Popen([sys.executable, "-c", WAITER], cwd=w.cwd, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while queue_view(w, 0) != [f"pid {self.waiter.pid}"]:
            assert time.monotonic() < deadline and self.waiter.poll() is None, "the waiter never queued"
            time.sleep(0.01)
        w.names[self.waiter.pid] = "W"

    def judge(self, w, t, child_pid, point):
        self.check_keep(w, t, point)
        self.check_annex(w, t, point)
        holder = lock_view(w, "end", child_pid)
        if holder != "k1":
            t.problem("double_holders" if holder == "CHILD" else "lost_updates",
                      f"lock end, held by k1, is {holder!r} after a waiter crashed at {point}")
        queue = queue_view(w, child_pid)
        if isinstance(queue, tuple):
            t.problem("torn_files", f"the wait queue does not parse after a crash at {point}: {queue[1][:200]!r}")
            return
        accept(t, f"wait queue after a crash at {point}", queue, [["W"]] if point is None else [["W"], ["W", "CHILD"]])

    def next_op(self, w, t, child_pid):
        # k1 is forced out: W, first in line, gets the lock within its polling interval and
        # releases it; then a newcomer gets it at once: the dead waiter is no one's obstacle.
        NamedLock("end").release(force=True)
        started = time.monotonic()
        try:
            out, _ = self.waiter.communicate(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.waiter.kill()
            out, _ = self.waiter.communicate()
        t.operations += 1
        t.saw_output("the waiter", out)
        if self.waiter.returncode != 0 or time.monotonic() - started > 1.0:
            t.problem("lost_updates", f"the first waiter got the lock late ({time.monotonic() - started:.2f} s) "
                                      f"or not at all (exit {self.waiter.returncode}): {out[-300:]}")
        lock = NamedLock("end")
        if quickly(t, f"acquire after {self.name}", lambda: lock.acquire(timeout=0)) is not None:
            lock.release()
        self.check_keep(w, t, "the next operation")


# -- claims ------------------------------------------------------------------------------------


def same_shard_path(w: World, base: str) -> str:
    """Another file whose claims share `base`'s shard (so a rewrite must carry them over)."""
    for i in range(10000):
        other = os.path.join(w.cwd, f"other-{i}.txt")
        if shard_name(other) == shard_name(base):
            return other
    raise AssertionError("no path shares the shard")


class ClaimScenario(Scenario):
    """Committed: k0..k2 claimed F, k3 claimed G (same shard), k4's session ended at 150."""

    @staticmethod
    def f_path(w: World) -> str:
        return os.path.join(w.cwd, "shared.txt")

    def prepare(self, w):
        self.f = self.f_path(w)
        self.g = same_shard_path(w, self.f)
        fixed = {"size": 1, "mtime_ns": 1, "digest": None}
        for i in range(3):
            record_claim(self.f, owner=w.owners[i], session_id=f"k{i}", tool="Edit", now=100.0 + i, state=fixed)
        record_claim(self.g, owner=w.owners[3], session_id="k3", tool="Read", now=110.0, state=fixed)
        end_claims(w.owners[4], now=150.0)

    def args(self, w):
        return {"path": self.f, "pid": w.pids[3]}

    def view(self, w, t, child_pid, point):
        """({path: [(who, at)]} of the shard, [(who, at)] of ended.json); None when torn."""
        directory = claims_dir()
        views = []
        for name in (shard_name(self.f), "ended.json"):
            try:
                doc = json.loads(open(os.path.join(directory, name), "rb").read())
                if doc.get("schema") != "sessionward/1":
                    raise ValueError(f"schema {doc.get('schema')!r}")
            except ValueError as exc:
                t.problem("torn_files", f"claims/{name} after a crash at {point}: {exc}")
                return None
            views.append(doc)
        files = {p: [(w.who(c["owner"]["pid"], child_pid), c["at"]) for c in claims] for p, claims in views[0]["files"].items()}
        ended = [(w.who(e["owner"]["pid"], child_pid), e["at"]) for e in views[1]["owners"]]
        return files, ended

    def committed(self):
        return {self.f: [("k0", 100.0), ("k1", 101.0), ("k2", 102.0)], self.g: [("k3", 110.0)]}, [("k4", 150.0)]

    def judge(self, w, t, child_pid, point):
        seen = self.view(w, t, child_pid, point)
        if seen is None:
            return
        old, new = self.committed(), self.after()
        accept(t, f"claims after {self.name} crashed at {point}", seen, [new] if point is None else [old, new])
        # what hooks read: claims_on must agree with the file
        on_f = [(w.who(c["owner"]["pid"], child_pid), c["at"]) for c in claims_on(self.f)]
        if on_f != seen[0][self.f]:
            t.problem("lost_updates", f"claims_on({self.f}) = {on_f}, the shard holds {seen[0][self.f]}")

    def next_op(self, w, t, child_pid):
        fixed = {"size": 1, "mtime_ns": 1, "digest": None}
        quickly(t, f"claim after {self.name}",
                lambda: record_claim(self.f, owner=w.owners[5], session_id="k5", tool="Edit", now=300.0, state=fixed))
        seen = [(w.who(c["owner"]["pid"], child_pid), c["at"]) for c in claims_on(self.f)]
        for claim in self.committed()[0][self.f]:
            if claim not in seen:
                t.problem("lost_updates", f"claim {claim} on F gone after {self.name} and one more claim")
        if ("k5", 300.0) not in seen:
            t.problem("lost_updates", f"the claim made after {self.name} is missing: {seen}")
        strays = stray_temps(claims_dir(), shard_name(self.f))
        if strays:
            t.problem("torn_files", f"stray temp files beside the shard after {self.name}: {strays}")


class Claim(ClaimScenario):
    name, op = "claim", "claim"

    def after(self):
        files, ended = self.committed()
        return dict(files, **{self.f: files[self.f] + [("k3", 200.0)]}), ended


class EndClaims(ClaimScenario):
    name, op = "end-claims", "end-claims"

    def after(self):
        files, ended = self.committed()
        return files, ended + [("k3", 250.0)]


# -- settings.json -----------------------------------------------------------------------------


USER_SETTINGS = {"model": "opus", "env": {"A": "1"}, "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}


class Install(Scenario):
    """`sessionward install`'s merge into a settings.json holding the user's own keys."""

    name, op = "install-settings", "install"

    def prepare(self, w):
        self.path = os.path.join(w.home, "claude", "settings.json")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.original = (json.dumps(USER_SETTINGS, indent=2) + "\n").encode()
        with open(self.path, "wb") as f:
            f.write(self.original)
        self.merged, _ = merge_settings(USER_SETTINGS, LAUNCHER)

    def args(self, w):
        return {"path": self.path, "launcher": LAUNCHER}

    def judge(self, w, t, child_pid, point):
        raw = open(self.path, "rb").read()
        try:
            doc = json.loads(raw)
        except ValueError:
            t.problem("torn_files", f"settings.json does not parse after a crash at {point}")
            return
        seen = "original" if raw == self.original else "merged" if doc == self.merged else doc
        accept(t, f"settings.json after a crash at {point}", seen, ["merged"] if point is None else ["original", "merged"])
        folder = os.path.dirname(self.path)
        for entry in os.listdir(folder):
            if entry.startswith("settings.json.bak-") and open(os.path.join(folder, entry), "rb").read() != self.original:
                t.problem("torn_files", f"backup {entry} is not the original settings after a crash at {point}")
        if seen == "merged" and not any(e.startswith("settings.json.bak-") for e in os.listdir(folder)):
            t.problem("lost_updates", f"settings.json replaced without its backup at {point}")

    def next_op(self, w, t, child_pid):
        quickly(t, "install after a crashed one", lambda: apply_settings(self.path, lambda d: merge_settings(d, LAUNCHER)), 5.0)
        if json.loads(open(self.path, "rb").read()) != self.merged:
            t.problem("lost_updates", "settings.json is not the merged document after the next install")
        strays = stray_temps(os.path.dirname(self.path), "settings.json")
        if strays:
            t.problem("torn_files", f"stray temp files beside settings.json after the next install: {strays}")


# -- notes -------------------------------------------------------------------------------------


class NoteScenario(Scenario):
    """Committed: a note in the vault holding "committed\n"."""

    COMMITTED = b"committed\n"

    def prepare(self, w):
        from sessionward.notes import append_note

        self.path = os.path.join(w.home, "vault", "daily.md")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        append_note(self.path, self.COMMITTED)

    def args(self, w):
        import hashlib

        return {"path": self.path, "expect": hashlib.sha256(self.COMMITTED).hexdigest()}

    def judge(self, w, t, child_pid, point):
        seen = open(self.path, "rb").read()
        accept(t, f"the note after {self.name} crashed at {point}", seen,
               [self.after] if point is None else [self.COMMITTED, self.after])

    def next_op(self, w, t, child_pid):
        from sessionward.notes import append_note

        before = open(self.path, "rb").read()
        quickly(t, f"note append after {self.name}", lambda: append_note(self.path, "next\n"))
        if open(self.path, "rb").read() != before + b"next\n":
            t.problem("lost_updates", f"the note after {self.name} and one more append: {open(self.path, 'rb').read()!r}")
        strays = stray_temps(os.path.dirname(self.path), "daily.md")
        if strays:
            t.problem("torn_files", f"stray temp files beside the note after {self.name}: {strays}")


class NoteAppend(NoteScenario):
    name, op = "note-append", "note-append"
    after = NoteScenario.COMMITTED + b"added\n"


class NoteWrite(NoteScenario):
    name, op = "note-write", "note-write"
    after = b"rewritten\n"


# -- the tests: a crash at every point ---------------------------------------------------------


SCENARIOS = [Register, Heartbeat, Unregister, Sweep, Repair, AcquireFree, TakeOverOrphan, TakeOverCorrupt,
             AcquireRelease, QueueJoin, Claim, EndClaims, Install, NoteAppend, NoteWrite]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_crash_at_every_point_loses_nothing(scenario, world, tally):
    t = tally(PART)
    points = crash_everywhere(world, scenario(), t)
    assert points, f"{scenario.name} passed no crash point"
    t.check()


def test_the_checks_catch_a_writer_that_writes_in_place(world, tally):
    """Negative control: the same crash against a registry writer without temp + rename must
    be seen as a torn file (else the checks above prove nothing)."""
    t = tally(PART)
    control = tally("negative control")  # not checked: it must find the tear
    scenario = Register()
    world.fresh_home("broken-writer")
    scenario.prepare(world)
    status, out = finish(world.start_child("register-broken", scenario.args(world), "temp-written@1"))
    t.operations += 1
    t.faults_injected += 1
    assert status == CRASH_EXIT_STATUS, out
    scenario.judge(world, control, 0, ("temp-written", 1))
    assert control.torn_files == 1, control.problems
    t.check()


# -- kill -9 at random instants ----------------------------------------------------------------

ZYGOTE = r"""
import json, os, sys
from sessionward.claims import record_claim
from sessionward.identity import resolve_owner
from sessionward.locks import LockTimeout, NamedLock
from sessionward.notes import append_note
from sessionward.registry import HEARTBEAT_REFRESH_S, heartbeat
a = json.loads(sys.argv[1])
k0, k3 = resolve_owner(a["pids"][0]), resolve_owner(a["pids"][3])
FIXED = {"size": 1, "mtime_ns": 1, "digest": None}

def work(mode, progress):
    out = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for i in range(1, 1000000):
        if mode == "registry":
            heartbeat(session_id="k0", owner=k0, now=1000.0 + i * HEARTBEAT_REFRESH_S)  # each one written
        elif mode == "lock":
            lock = NamedLock("end", purpose="kill test")
            lock.acquire(timeout=5)
            os.write(out, b"A %d\n" % i)  # acquired: held by us until "B"
            os.write(out, b"B %d\n" % i)  # releasing
            lock.release()
        elif mode == "claims":
            record_claim(a["path"], owner=k3, session_id="k3", tool="Edit", now=1000.0 + i, state=FIXED)
        elif mode == "notes":
            append_note(a["note"], "%s %d\n" % (os.path.basename(progress), i))
        elif mode == "queue":
            try:
                NamedLock("q").acquire(timeout=0)
                raise SystemExit("took a lock held by a live process")
            except LockTimeout:
                pass
        os.write(out, b"%d\n" % i)

for line in sys.stdin:
    mode, progress = line.split()
    pid = os.fork()
    if pid == 0:  # the worker: writes until it is killed
        try:
            work(mode, progress)
        except BaseException:
            import traceback
            traceback.print_exc()
        os._exit(1)
    print(pid, flush=True)
    sys.stdin.readline()  # "reap": the parent has killed it
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


def last_progress(path: str):
    lines = open(path).read().split()
    return lines[-1] if lines else None


def test_kill_9_at_random_instants_loses_nothing(world, tally):
    """A zygote process forks workers that write in a loop (heartbeats, lock cycles, claims,
    wait-queue joins); each is SIGKILLed at a random instant; then every invariant is checked
    on the state all the kills share."""
    t = tally(PART)
    w = world
    w.fresh_home("kill-9")
    RegistryScenario().prepare(w)
    LockScenario().prepare(w)
    claims = Claim()
    claims.prepare(w)
    q = NamedLock("q", holder=Holder.process(w.pids[1]), purpose="held")
    q.acquire(timeout=0)
    q.close()
    errors = open(os.path.join(w.tmp, "zygote.err"), "w+")
    note = os.path.join(w.home, "vault", "log.md")
    os.makedirs(os.path.dirname(note))
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, json.dumps({"pids": w.pids, "path": claims.f, "note": note})],
                              cwd=w.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
    rng = random.Random(os.environ.get("SESSIONWARD_TORTURE_SEED", "5"))
    kills = 0
    try:
        for round_ in range(KILLS_PER_PATH):
            for mode in ("registry", "lock", "claims", "queue", "notes"):
                progress = os.path.join(w.tmp, f"progress-{mode}-{round_}")
                zygote.stdin.write(f"{mode} {progress}\n")
                zygote.stdin.flush()
                worker = int(zygote.stdout.readline())
                deadline = time.monotonic() + CHILD_TIMEOUT_S
                while not os.path.exists(progress) or not os.path.getsize(progress):  # in its loop
                    assert time.monotonic() < deadline, f"{mode} worker made no progress"
                    time.sleep(0.001)
                time.sleep(rng.uniform(0, 0.015))
                os.kill(worker, signal.SIGKILL)
                zygote.stdin.write("reap\n")
                zygote.stdin.flush()
                status = int(zygote.stdout.readline())
                if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                    t.problem("tracebacks", f"{mode} worker ended by itself (status {status}) before the kill")
                kills += 1
                t.faults_injected += 1
                done = open(progress).read().split()
                t.operations += sum(1 for x in done if x.isdigit())
                judge_after_kill(w, t, mode, worker, last_progress(progress), done)
                if mode == "notes":
                    judge_note_after_kill(t, note, os.path.basename(progress), last_progress(progress))
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=CHILD_TIMEOUT_S)
        errors.seek(0)
        t.saw_output("kill -9 workers", errors.read())
    # Temps of writers killed before their rename are never read, and go with the next write
    # under the same lock (or `lock cleanup` for end.lock): none may be left now.
    heartbeat(session_id="k1", owner=w.owners[1], now=5000.0)
    record_claim(claims.f, owner=w.owners[5], session_id="k5", tool="Read", now=5000.0,
                 state={"size": 1, "mtime_ns": 1, "digest": None})
    cleanup_orphans()
    append_note(note, "last\n")
    for directory, target in ((w.home, "obsidian_sessions.json"), (w.home, "end.lock"),
                              (claims_dir(), shard_name(claims.f)), (os.path.dirname(note), "log.md")):
        if stray_temps(directory, target):
            t.problem("torn_files", f"stray temps after {kills} kills: {stray_temps(directory, target)}")
    t.figures["kill -9"] = kills
    t.check()


def judge_note_after_kill(t, note: str, tag: str, last) -> None:
    """Every line of the note whole; this worker's appends 1..k in order, k its last committed
    append or the one after (cut short by the kill, it happened or not)."""
    lines = open(note, "rb").read().decode().splitlines()
    mine = []
    for line in lines:
        who, _, n = line.partition(" ")
        if not who.startswith("progress-notes-") or not n.isdigit():
            t.problem("torn_files", f"the note holds a torn line {line!r} after a kill")
        elif who == tag:
            mine.append(int(n))
    committed = int(last) if last is not None else 0
    if mine != list(range(1, len(mine) + 1)) or not committed <= len(mine) <= committed + 1:
        t.problem("lost_updates", f"note appends of {tag}: {mine[-5:]}..., {committed} committed")


def judge_after_kill(w: World, t, mode: str, worker: int, last, done: list) -> None:
    """The invariants after one kill: state parses, committed updates are there, the next
    operation goes through at once."""
    where = f"kill -9 of a {mode} worker after {len(done)} writes"
    registry = registry_view(w, t, where)
    if not isinstance(registry, dict):
        t.problem("torn_files", f"{where}: the registry does not decode")
    else:
        for i in range(1, 5):
            if registry.get(f"k{i}") not in (100.0, 5000.0):
                t.problem("lost_updates", f"{where}: session k{i} is {registry.get(f'k{i}')!r}")
        if mode == "registry" and last is not None:
            committed = 1000.0 + int(last) * HEARTBEAT_REFRESH_S
            if not committed <= registry.get("k0", 0) <= committed + HEARTBEAT_REFRESH_S:
                t.problem("lost_updates", f"{where}: k0 last seen {registry.get('k0')}, heartbeat {committed} committed")
    LockScenario().check_keep(w, t, where)
    LockScenario().check_annex(w, t, where)
    holder = lock_view(w, "end", worker)
    if holder not in ("free", "CHILD"):
        t.problem("torn_files", f"{where}: end.lock is {holder!r}")
    elif mode == "lock" and done and done[-2:-1] == ["A"] and holder != "CHILD":
        t.problem("lost_updates", f"{where}: killed holding end (acquire {done[-1]} committed), end.lock is {holder!r}")
    lock = NamedLock("end")
    if quickly(t, f"acquire after {where}", lambda: lock.acquire(timeout=0)) is not None:
        lock.release()
    q = NamedLock("q").status()
    if not (q.held and q.pid == w.pids[1]):
        t.problem("double_holders" if q.pid == worker else "lost_updates", f"{where}: lock q, held by k1, is {q.describe()}")
    queue_path = os.path.join(w.home, "sessionward", "locks", "q.guard")
    raw = open(queue_path, "rb").read() if os.path.exists(queue_path) else b""
    if raw.strip():
        try:
            json.loads(raw)
        except ValueError:
            t.problem("torn_files", f"{where}: the wait queue of q does not parse: {raw[:200]!r}")
    try:
        shard = json.loads(open(os.path.join(claims_dir(), shard_name(Claim.f_path(w))), "rb").read())
    except ValueError:
        t.problem("torn_files", f"{where}: the claims shard does not parse")
        return
    claims = {(w.who(c["owner"]["pid"], worker), c["at"]) for c in shard["files"][Claim.f_path(w)]}
    for kept in (("k0", 100.0), ("k1", 101.0), ("k2", 102.0)):
        if kept not in claims:
            t.problem("lost_updates", f"{where}: claim {kept} is gone")
    if mode == "claims" and last is not None:
        committed = 1000.0 + int(last)
        at = max((at for who, at in claims if who == "k3"), default=0)
        if not committed <= at <= committed + 1:
            t.problem("lost_updates", f"{where}: k3's claim is at {at}, {committed} was committed")
