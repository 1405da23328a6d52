"""Named locks: mutual exclusion between sessions, with a holder everyone can see.

Purpose: serialize work that must not overlap across sessions, above all the end-of-session
saves behind the `end` lock (the origin's /end lock). A live holder is never broken, however
old; a dead one (process gone, zombie, PID reused) is taken over at the next acquire. A zombie
whose parent lives is being reaped, and its lock about to be released (`lock run`): it holds
for up to REAP_GRACE_S (1 s) from when a waiter first sees it, then is taken over.

What it does not protect: anything done by a process that never asks for the lock. A
forced release (`release(force=True)`, `rm ~/.claude/end.lock`) frees the lock while its
holder may still be working: that is the person's call, and the holder is not told.

Files, for a lock NAME (the local store's; every read and write goes through the store,
sessionward.store.open_lock, whose local backend is sessionward.store.local_locks):
  STATE/NAME.lock                       exists only while held; holds the holder's PID alone
                                        ("4242\\n"), so `cat`, `ps -p $(cat ...)` and `rm`
                                        (force) do what the origin's guide says. The truth.
  STATE/sessionward/locks/NAME.holder.json  who holds it: holder process, session, project,
                                        worktree, purpose, since. Written before NAME.lock
                                        appears, and trusted only while its PID is the one in
                                        NAME.lock (it stays after a release, meaning nothing).
  STATE/sessionward/locks/NAME.guard    permanent, never deleted. Every transition (take,
                                        release, take-over of an orphan) runs under its flock,
                                        so two waiters can never both break one orphan. Its
                                        content is the wait queue (waiters take the lock in
                                        arrival order) and the fence counter.
Fences: every acquire gets a number larger than any this lock gave before (Acquired.fence,
NamedLock.fence, the annex's "fence"; a re-entrant acquire keeps its holder's), for writes
that a later holder must be able to refuse (the shared store; here the flock excludes).
Which locks are sessionward's (known_lock_names: `lock status --all`, `lock cleanup`, SessionEnd,
doctor): those with a guard file, and `end` (end.lock, even written by the origin's scripts
without one). The state directory is ~/.claude, shared with other tools: their `*.lock` files
and directories are not ours, and nothing that goes over all locks looks at them.

On the shared store (SESSIONWARD_STORE=redis://..., sessionward.store.redis_locks) the same
protocol holds the same facts on the server: no NAME.lock file; the holder's token with a lease
(renewed by the holder's watcher while it lives, lapsed 30 s after its machine stopped
renewing); a holder on another kernel is alive while its lease is; a holder whose lease lapsed
is told at its next acquire or release of that lock, once, even from a new process acting for
it (a `lock` command for the session's owner): LeaseLost naming the new holder and fence
(`lock run` raises it once its command has ended), never silently.

Holders (the process whose PID goes in NAME.lock):
  owner     `lock acquire`: the session's owner (Claude Code's process, or the shell). Re-entrant:
            acquiring again succeeds at once, and one release frees it.
  caller    `lock acquire --caller`, end_with_lock: the process that called sessionward.
  process   the Python API's default (this process), or `lock run`'s command.
The last two are not re-entrant: two `lock run`s of one session never overlap.

Calling sequence:
    lock = NamedLock("end", purpose="/end save")
    lock.acquire(timeout=30.0)     # LockTimeout (a TimeoutError) names the holder
    try: ...save...
    finally: lock.release()
or `with NamedLock("end"): ...`.

It is a bug to release a lock held by another live owner without force=True (LockRefused
names it). It is a no-op to release a lock that is not held.

Test-only: SESSIONWARD_TEST_DISABLE_LOCKS=1 turns acquire and release into no-ops (the
negative control of the concurrency tests).
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, paths
from sessionward._lockfile import GUARD_TIMEOUT_S, SCHEMA, LockState, holder_liveness, waiter_record
from sessionward.errors import (
    BadInput,
    LeaseLost,
    LockRefused,
    LockRunAborted,
    LockTimeout,
    SessionwardError,
)
from sessionward.identity import Owner, describe_checkout, read_process, resolve_owner, resolve_session_id, same_process
from sessionward.identity.life import forget as forget_life, life_key
from sessionward.store import lock_names, open_lock, open_store

__all__ = [
    "END_LOCK",
    "END_LOCK_TIMEOUT_S",
    "GUARD_TIMEOUT_S",
    "MAX_LOCK_NAME",
    "Acquired",
    "Cleaned",
    "Holder",
    "LockState",
    "NamedLock",
    "Released",
    "cleanup_orphans",
    "held_by_owner",
    "held_by_process",
    "locks_held",
    "known_lock_names",
    "run_locked",
    "validate_lock_name",
]

END_LOCK = paths.END_LOCK
END_LOCK_TIMEOUT_S = 30.0
MAX_LOCK_NAME = 64
_POLL_FIRST_S = 0.002
_POLL_CAP_S = 0.005  # a waiter notices a release, or its holder's death, within this
# Test-only: acquire and release do nothing, so tests can show that their workload loses
# updates without the lock (the negative control). Read from the environment: children inherit it.
_DISABLED = os.environ.get("SESSIONWARD_TEST_DISABLE_LOCKS") == "1"  # read once: children inherit it


def validate_lock_name(name: str) -> str:
    """Lower-case letters, digits, '-' and '_' (it becomes a file name in ~/.claude)."""
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= MAX_LOCK_NAME
        and name[0].isascii()
        and name[0].isalnum()
        and all(c.isascii() and (c.islower() or c.isdigit() or c in "-_") for c in name)
    )
    if not ok:
        raise BadInput(f"invalid lock name {name!r}: use 1-{MAX_LOCK_NAME} lower-case letters, digits, '-' or '_'")
    return name


# -- who -------------------------------------------------------------------------------------


class Holder:
    """A process that holds (or wants) a lock, and whether it may re-enter."""

    __slots__ = ("owner", "reentrant")

    def __init__(self, owner: Owner, reentrant: bool) -> None:
        self.owner = owner
        self.reentrant = reentrant

    @classmethod
    def this_process(cls) -> "Holder":
        return cls(_owner_of_pid(os.getpid(), "this process"), reentrant=False)

    @classmethod
    def caller(cls) -> "Holder":
        return cls(_owner_of_pid(os.getppid(), "calling process"), reentrant=False)

    @classmethod
    def process(cls, pid: int) -> "Holder":
        return cls(_owner_of_pid(pid, "command"), reentrant=False)

    @classmethod
    def session_owner(cls, owner: Owner) -> "Holder":
        return cls(owner, reentrant=True)

    def is_process(self, record: dict | None) -> bool:
        """Is `record` (an owner record from a holder file) this very process?"""
        return record is not None and same_process(record, self.owner.identity())


def _owner_of_pid(pid: int, via: str) -> Owner:
    info = read_process(pid)
    if info is None:
        raise BadInput(f"process {pid} ({via}) is not running")
    return Owner(info, via)


# -- outcomes and errors ---------------------------------------------------------------------


class _StillWaiting(Exception):
    def __init__(self, state: "LockState") -> None:
        self.state = state


class Acquired:
    __slots__ = ("name", "already_held", "took_over", "waited_s", "fence")

    def __init__(self, name: str, already_held: bool, took_over: LockState | None, waited_s: float, fence: int = 0) -> None:
        self.name = name
        self.already_held = already_held
        self.took_over = took_over  # the orphan we replaced, if any
        self.waited_s = waited_s
        self.fence = fence  # larger than any earlier holder's (0: unknown, e.g. an annex without one)


# Release outcomes worth a line in the event log ("free" and "lost" changed nothing).
_RELEASE_EVENTS = {"held": "lock.released", "forced": "lock.forced", "orphaned": "lock.cleaned"}


class Released:
    __slots__ = ("name", "was", "state")

    def __init__(self, name: str, was: str, state: LockState) -> None:
        self.name = name
        self.was = was  # "held" (ours), "forced", "orphaned", "free", "lost" (taken from us meanwhile)
        self.state = state


# -- the lock --------------------------------------------------------------------------------


class NamedLock:
    """A named lock. See the module docstring for files, holders and calling sequence."""

    def __init__(
        self,
        name: str = END_LOCK,
        *,
        holder: Holder | None = None,
        owner: Owner | None = None,
        purpose: str = "",
        session_id: str | None = None,
        cwd: str | None = None,
        state_dir: str | None = None,
    ) -> None:
        self.name = validate_lock_name(name)
        self.holder = holder
        self._owner = owner
        jsoncodec.require_utf8(purpose, "purpose")
        self.purpose = purpose
        self.session_id = session_id
        self.cwd = cwd
        self._facts = open_lock(name, state_dir)  # the store's holder, queue and fence of this lock
        self.path = self._facts.path
        self._token: str | None = None
        self._session: dict | None = None  # what the holder file says of our session; computed once
        self._created: tuple | None = None  # what identifies the NAME.lock we wrote (store: still_mine)
        self.fence = 0  # the fence of our last acquire
        self._acquired_by = 0  # the PID that acquired through this object (a fork copies it)

    # who we are, resolved on first use (reading /proc costs)

    @property
    def owner(self) -> Owner:
        """The session owner this lock is taken for (recorded; may release it)."""
        if self._owner is None:
            self._owner = resolve_owner()
        return self._owner

    def _holder(self) -> Holder:
        if self.holder is None:
            self.holder = Holder.this_process()
        return self.holder

    # -- public API ---------------------------------------------------------------------------

    def acquire(self, timeout: float = END_LOCK_TIMEOUT_S, on_wait=None) -> Acquired:
        """Take the lock, waiting up to `timeout` seconds in arrival order.

        on_wait(state, waited_s) is called while a live holder keeps it (for progress lines).
        Raises LockTimeout naming the holder.
        """
        holder = self._holder()
        started = time.monotonic()
        if _DISABLED:  # test-only: the negative control
            return Acquired(self.name, False, None, 0.0)
        holder.owner.watch()  # outside the guard: from another PID namespace it is judged by its life lock
        self._tell_a_lapse()
        deadline = started + timeout
        me = waiter_record()
        try:
            acquired = self._acquire_loop(holder, me, started, deadline, on_wait)
            if not acquired.already_held:
                self._log_taken(acquired)
            return acquired
        except LockTimeout as timeout_error:
            self._log("lock.timed_out", self._session, holder_pid=timeout_error.state.pid,
                      waited_s=round(time.monotonic() - started, 3))
            self._leave_queue(me)
            raise
        except BaseException:
            # Interrupted (Ctrl-C, a raising on_wait): leave the queue, or those behind us
            # would wait on a waiter that no longer waits.
            self._leave_queue(me)
            raise

    def _leave_queue(self, me: dict) -> None:
        try:
            with self._facts.transition(time.monotonic() + GUARD_TIMEOUT_S) as guard:
                guard.leave_queue(me)
        except BaseException:  # noqa: BLE001 - the original error matters more
            pass

    def _acquire_loop(self, holder: Holder, me: dict, started: float, deadline: float, on_wait) -> Acquired:
        queued = False
        delay = _POLL_FIRST_S
        sig = None  # once we wait: the signal module, to keep Ctrl-Z out of the guard
        while True:
            # A waiter stopped (Ctrl-Z) while it holds the guard would freeze every lock
            # operation until resumed: while waiting, SIGTSTP is held off for the guard's few
            # microseconds and takes effect right after. (SIGSTOP cannot be held off.)
            mask = sig.pthread_sigmask(sig.SIG_BLOCK, (sig.SIGTSTP,)) if sig is not None else None
            try:
                return self._poll_once(holder, me, started, deadline, queued)
            except _StillWaiting as waiting:
                state = waiting.state
                if not queued and state.held:
                    holder_session = ((state.meta or {}).get("session") or {}).get("id")
                    self._log("lock.waiting", None, holder_pid=state.pid, holder_session=holder_session)
                queued = True
            finally:
                if mask is not None:
                    sig.pthread_sigmask(sig.SIG_SETMASK, mask)
            if sig is None:
                import signal as sig  # type: ignore[assignment]
            now = time.monotonic()
            if now >= deadline:
                raise LockTimeout(state, now - started)
            if on_wait is not None and state.held:
                on_wait(state, now - started)
            # Every waiter polls at a short cap: with short critical sections the queue moves
            # by several places between two polls of a slow poller, which then sleeps through
            # its own turn while the lock sits free (seen: 26 ms hand-overs at a 25 ms cap).
            jitter = 0.5 + int.from_bytes(os.urandom(2), "little") / 65536
            time.sleep(min(delay * jitter, deadline - now))
            delay = min(delay * 1.5, _POLL_CAP_S)

    def _poll_once(self, holder: Holder, me: dict, started: float, deadline: float, queued: bool) -> Acquired:
        """One look under the guard: take the lock, or join the queue and raise _StillWaiting."""
        # The guard is held for microseconds by whoever is mid-transition: it gets its own
        # floor, so a try-lock (timeout 0) is not refused by a neighbour's bookkeeping.
        with self._facts.transition(max(deadline, time.monotonic() + GUARD_TIMEOUT_S)) as guard:
            state = self._read_state()
            first = guard.first_waiter()
            if state.held:
                meta_holder = state.meta.get("holder") if state.meta else None
                if holder.reentrant and state.meta and state.meta.get("reentrant") and holder.is_process(meta_holder):
                    if queued:
                        guard.leave_queue(me)
                    fence = state.meta.get("fence")
                    self.fence = fence if type(fence) is int else 0
                    return Acquired(self.name, True, None, time.monotonic() - started, self.fence)
            else:
                if first is None or same_process(first, me):
                    took_over = self._take_over(state) if state.present else None
                    replaced = self._write_holder(holder, guard, state)
                    if replaced is not None:
                        if queued or first is not None:
                            guard.leave_queue(me)
                        # An orphan released between its judgement and the take (a shared store
                        # judges outside the take's script) was not taken over: nobody to report.
                        return Acquired(self.name, False, took_over if replaced else None,
                                        time.monotonic() - started, self.fence)
                    state = self._read_state()  # taken meanwhile (a shared store's guard lapsed): wait
            guard.join_queue(me)  # again each poll: a stopped waiter is dropped, and rejoins at the back
        raise _StillWaiting(state)

    def release(self, force: bool = False, by_session: bool = True) -> Released:
        """Release the lock if this holder (or this session's owner) holds it.

        A free lock: no-op. An orphan: cleaned. Another live holder: LockRefused, unless
        force=True. A lock object that acquired frees only the lock it took: if that was
        forced away or taken over meanwhile, release() changes nothing and says "lost".
        """
        released = self._release(force, by_session)
        if released.was in _RELEASE_EVENTS:
            state = released.state
            meta = state.meta or {}
            held_s = round(time.time() - meta["since"], 3) if type(meta.get("since")) in (int, float) else None
            reason = state.liveness.reason if released.was == "orphaned" and state.liveness is not None else None
            self._log(_RELEASE_EVENTS[released.was], meta.get("session") or {}, pid=state.pid,
                      by_pid=os.getpid() if released.was == "forced" else None, held_s=held_s, reason=reason)
        return released

    def _release(self, force: bool, by_session: bool) -> Released:
        if _DISABLED:  # test-only: the negative control
            return Released(self.name, "free", LockState(self.name, self.path))
        if self._token is not None and self._acquired_by != os.getpid():
            # A forked child holds a copy of this object: the lock is its parent's, not its own.
            return Released(self.name, "lost", LockState(self.name, self.path))
        with self._facts.transition(time.monotonic() + GUARD_TIMEOUT_S):
            if self._created is not None:
                mine = self._facts.still_mine(self._created, self._holder().owner.pid)
                if mine is not None:  # the very file we wrote: no annex to read, nobody to judge
                    self._facts.remove(mine)
                    self._token = self._created = None
                    return Released(self.name, "held", mine)
            state = self._read_state(judge=self._token is None)
            self._created = None
            if self._token is not None:
                # This lock object took it: it frees its own lock and nothing else. If that
                # lock was forced away or taken over meanwhile, the one there now is another's.
                mine = state.present and state.meta is not None and state.meta.get("token") == self._token
                token, self._token = self._token, None
                if mine:
                    self._remove(state)
                    return Released(self.name, "held", state)
                lost = self._facts.lost_lease(token, self._holder().owner.to_record())  # told, never silent
                if lost is not None:
                    raise lost
                if state.present and state.liveness is None:
                    state.liveness = holder_liveness(state)
                return Released(self.name, "lost", state)
            if not state.present:
                self._tell_a_lapse()
                return Released(self.name, "free", state)
            if state.orphaned:
                self._remove(state)
                return Released(self.name, "orphaned", state)
            if self._may_release(state, by_session):
                self._remove(state)
                self._token = None
                return Released(self.name, "held", state)
            if force:
                self._remove(state)
                return Released(self.name, "forced", state)
            self._tell_a_lapse()
            raise LockRefused(state)

    def _tell_a_lapse(self) -> None:
        """Raise LeaseLost if this holder's last hold of the lock lapsed and it was not told
        yet (the shared store: a watcher pair killed or paused, a host cut off). A new process
        acting for the holder (a `lock` command) knows no token: the store keeps it until the
        holder is told. The local store has no lease: nothing to tell."""
        lost = self._facts.lost_lease("", self._holder().owner.to_record())
        if lost is not None:
            raise lost

    # -- the event log (sessionward.eventlog) -------------------------------------------------------

    def _log(self, event: str, session: dict | None, **fields) -> None:
        """Append a lock event. `session`: the holder file's session (its id and project);
        None: this lock object's caller (what the holder file would say of it)."""
        from sessionward import eventlog

        if session is None:
            try:
                session = self._session_info()
            except Exception:  # noqa: BLE001 - the event still goes, without its session
                session = {"id": self.session_id}
        fields.setdefault("pid", self._holder().owner.pid)
        eventlog.append(event, session.get("id"), session.get("project"), lock=self.name, **fields)

    def _log_taken(self, acquired: Acquired) -> None:
        orphan = acquired.took_over
        if orphan is not None:
            reason = orphan.liveness.reason if orphan.liveness is not None else "its lock file held no PID"
            self._log("lock.taken_over", self._session, from_pid=orphan.pid, reason=reason,
                      waited_s=round(acquired.waited_s, 3))
        else:
            self._log("lock.taken", self._session, waited_s=round(acquired.waited_s, 3))

    def status(self) -> LockState:
        """The lock as it is now (read without the guard: a snapshot)."""
        return self._read_state()

    def waiting(self) -> list:
        """The wait queue as it is now, longest waiting first: {pid, start_time, pidns, since}
        records (read without the guard: a snapshot; waiters that left unseen may be in it)."""
        return self._facts.queue()

    def __enter__(self) -> "NamedLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- internals ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close what the store keeps open between transitions (the lock itself is unaffected)."""
        self._facts.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _may_release(self, state: LockState, by_session: bool = True) -> bool:
        meta = state.meta
        if meta is None:  # a lock file without our annex (forged, or the origin's scripts)
            holder = self._holder()
            return state.pid == holder.owner.pid
        if self._token is not None and meta.get("token") == self._token:
            return True
        holder = self._holder()
        if holder.is_process(meta.get("holder")):
            return True
        if not by_session or not meta.get("reentrant"):
            # A `lock run` or end_with_lock lock belongs to its one command, never to the
            # session at large: freeing it would let a second command in beside the first.
            return False
        # Any process of the holder's session may release a `lock acquire` lock (acquire and
        # release are often two separate Bash tool calls of one Claude Code session).
        session = meta.get("session") or {}
        return Holder(self.owner, True).is_process(session.get("owner"))

    def _read_state(self, judge: bool = True) -> LockState:
        """NAME.lock and its holder annex as they are now; judge=False skips the liveness check."""
        return self._facts.read(judge)

    def _session_info(self) -> dict:
        if self._session is None:
            where = self._registered_session()
            if where is None:
                try:
                    checkout = describe_checkout(self.cwd or os.getcwd())
                    where = {"project": checkout.project, "worktree": checkout.worktree, "branch": checkout.branch}
                except OSError:  # the current directory was deleted: the lock still works
                    where = {"project": None, "worktree": None, "branch": None}
            known = where.pop("id", None)  # the registered session's, when not given (a shell)
            self._session = {
                "id": self.session_id if self.session_id is not None else (resolve_session_id() or known),
                "owner": self.owner.to_record(),
                **where,
            }
        return self._session

    def _registered_session(self) -> dict | None:
        """Project, worktree, branch and Claude session id of the owner's registered session, if
        it has one: the name it registered under is the one others check
        (obsidian_check_before_write), its id the one others are shown."""
        try:
            sessions = open_store().load_sessions()
        except SessionwardError:
            return None
        owner = Holder(self.owner, True)
        for record in sessions.values():
            if owner.is_process(record.get("owner")):
                return {"project": record["project"], "worktree": record["worktree"], "branch": record.get("branch"),
                        "id": record.get("session_id")}
        return None

    def _write_holder(self, holder: Holder, guard, replacing: LockState) -> bool | None:
        """Take the lock for `holder` (under the guard), replacing `replacing` if it is there:
        the store gives the fence. None when the store found it taken (a shared store's
        guard lapsed under us: the lease itself is compared); else whether `replacing` was
        there to be replaced."""
        token = os.urandom(8).hex()
        meta = {
            "schema": SCHEMA,
            "name": self.name,
            "token": token,
            "holder": holder.owner.to_record(),
            "reentrant": holder.reentrant,
            "session": self._session_info(),
            "purpose": self.purpose,
            "since": time.time(),
        }
        # Under the guard, so no writer races us; the local store writes the annex first, then
        # NAME.lock: whoever sees NAME.lock finds who holds it.
        try:
            taken = self._facts.take(guard, meta, holder.owner.pid, replacing)
        except BaseException:
            self._token = None  # nothing of ours is there to release
            raise
        if taken is None:
            return None
        self._created, fence, replaced = taken
        self._token, self.fence, self._acquired_by = token, fence, os.getpid()
        return replaced

    def _take_over(self, orphan: LockState) -> LockState:
        if orphan.pid is None:  # not a PID: the store keeps the odd file aside, never deletes it
            kept = self._facts.remove(orphan)
            from sessionward import _notices

            _notices.kept_aside(f"lock file {self.path} held no PID ({orphan.raw[:20]!r}); kept as {kept}; the lock is free again")
        _forget_holder_life(orphan)
        return orphan

    def _remove(self, state: LockState) -> None:
        # NAME.lock only: the annex stays, and counts for nothing once NAME.lock is gone.
        if state.pid is None and state.present:
            self._take_over(state)
        else:
            if state.orphaned:
                _forget_holder_life(state)
            self._facts.remove(state)


def _forget_holder_life(orphan: LockState) -> None:
    """A dead holder's life file goes with its lock (a `lock run` command or a stopped
    container's shell is no session owner: the registry's sweep would never remove it)."""
    holder = (orphan.meta or {}).get("holder") or {}
    if type(holder.get("pid")) is int:
        forget_life(life_key(holder.get("boot_id"), holder.get("pidns"), holder["pid"], holder.get("start_time")))


# -- many locks -------------------------------------------------------------------------------


def known_lock_names(state_dir: str | None = None) -> list[str]:
    """sessionward's locks: those with a guard file (every lock sessionward ever took has
    one), plus `end` while END.lock exists (the origin's scripts write it without a guard).
    Any other NAME.lock in the state directory is another tool's (~/.claude is shared): never
    listed, judged, released or kept aside here."""
    valid = []
    for name in lock_names(state_dir):
        try:
            valid.append(validate_lock_name(name))
        except BadInput:
            continue
    return valid


def held_by_owner(state_dir: str | None = None) -> dict:
    """{(session owner pid, its PID namespace, its boot id): [lock names]} for locks held now,
    from the holders' annexes: a PID alone names different processes in two containers, and
    PID and namespace alone in two machines (every machine's initial PID namespace has one
    inode number). Look a record's up with locks_held()."""
    held: dict = {}
    for name in known_lock_names(state_dir):
        try:
            state = NamedLock(name, state_dir=state_dir).status()
        except SessionwardError:
            continue
        if state.held and state.meta:
            owner = (state.meta.get("session") or {}).get("owner") or {}
            if type(owner.get("pid")) is int:
                held.setdefault((owner["pid"], owner.get("pidns"), owner.get("boot_id")), []).append(name)
    return held


def locks_held(held: dict, owner: dict) -> list:
    """The locks that held_by_owner() found for an owner record."""
    return held.get((owner.get("pid"), owner.get("pidns"), owner.get("boot_id")), [])


def held_by_process(state: LockState, owner: Owner) -> bool:
    """Is the lock in `state` held now by `owner`'s very process? Its holder record when it
    has one (a PID alone names another process on another machine of the shared store, or in
    another container), else the PID of a bare lock file (the origin's scripts)."""
    if not state.held:
        return False
    holder = (state.meta or {}).get("holder")
    if isinstance(holder, dict):
        return same_process(holder, owner.identity())
    return state.pid == owner.pid


class Cleaned:
    __slots__ = ("state", "action")

    def __init__(self, state: LockState, action: str) -> None:
        self.state = state
        self.action = action


def cleanup_orphans(dry_run: bool = False, state_dir: str | None = None, name: str | None = None) -> list[Cleaned]:
    """Remove orphaned locks (holder dead or PID reused), with the reason; all of them, or
    only `name`. dry_run reports."""
    found = []
    for each in [validate_lock_name(name)] if name else known_lock_names(state_dir):
        lock = NamedLock(each, state_dir=state_dir)
        if not dry_run:
            lock._facts.tidy()  # temps left by acquires that died before their link
        state = lock.status()
        if not state.orphaned:
            continue
        if dry_run:
            found.append(Cleaned(state, "would remove"))
            continue
        with lock._facts.transition(time.monotonic() + GUARD_TIMEOUT_S):
            state = lock._read_state()  # again, under the guard: it may have changed
            if state.orphaned:
                lock._remove(state)
                found.append(Cleaned(state, "removed"))
                lock._log("lock.cleaned", (state.meta or {}).get("session") or {}, pid=state.pid,
                          reason=state.liveness.reason if state.liveness is not None else "its lock file held no PID")
    return found


def run_locked(lock: NamedLock, argv: list[str], timeout: float, on_wait=None, on_acquired=None) -> int:
    """Run argv while holding `lock`; the command's own process is the holder, so the lock
    lives exactly as long as the command. Returns its exit status (128+N if killed by N).

    The command starts as `sh -c 'read go <&3 && exec "$@"'`: it has its PID (the holder's)
    but runs nothing until the lock is ours; exec keeps that PID, and the holder file names
    the command (its comm after exec), not `sh`. If the lock is not obtained, the pipe closes
    and it exits without running anything. Once the command exits, it stays a zombie until
    the lock is released (it is reaped after that): waiters see a zombie whose parent lives
    and wait for the release (identity.process.REAP_GRACE_S), never a holder gone.
    """
    import signal
    import subprocess

    read_end, write_end = os.pipe()
    try:
        # fd 3 in the child (dash reads single-digit fds only): dup2 makes it inheritable,
        # while Python's own fds are close-on-exec (PEP 446), hence close_fds=False.
        child = subprocess.Popen(
            ["/bin/sh", "-c", 'read -r go <&3 && exec 3<&- && exec "$@"', "sessionward-lock-run", *argv],
            close_fds=False,
            preexec_fn=lambda: (os.dup2(read_end, 3), os.set_inheritable(3, True)),  # type: ignore[func-returns-value]  # dup2(3, 3) keeps CLOEXEC
        )
    finally:
        os.close(read_end)
    # While waiting, signals keep their default meaning (Ctrl-C interrupts, SIGTERM ends us):
    # the parked command then sees EOF and exits without running. Once it runs, they are
    # forwarded to it, and we release when it ends.
    try:
        lock.holder = Holder.process(child.pid)
        lock.holder.owner.comm = _comm_after_exec(argv[0])
        acquired = lock.acquire(timeout, on_wait)
    except BaseException:
        os.close(write_end)  # EOF: the command exits without running
        child.wait()
        raise
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda signum, frame: _forward(child, signum)) for sig in forwarded}
    aborted = False
    try:
        if on_acquired is not None:
            on_acquired(acquired)
        try:
            if _has_exited(child, block=False):
                raise BrokenPipeError
            os.write(write_end, b"go\n")
        except BrokenPipeError:
            aborted = True
        finally:
            os.close(write_end)
        if not aborted:
            _has_exited(child, block=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            lock.release()
        except LeaseLost:
            raise  # the shared store's lease lapsed while the command ran: told, never silently
        except SessionwardError:
            pass  # released by force meanwhile: nothing of ours left to free
    status = child.wait()  # reaped only now, after the release
    if aborted:
        raise LockRunAborted(lock.name, status)
    return 128 - status if status < 0 else status


def _has_exited(child, block: bool) -> bool:
    """Has the command exited? Left unreaped (WNOWAIT): until run_locked has released the
    lock, its holder stays a zombie whose parent lives, which a waiter sees as being released
    (identity.process.REAP_GRACE_S), never a process gone whose lock it would take over."""
    if not hasattr(os, "waitid"):  # pragma: no cover - not on macOS: reaped here, as before
        return (child.wait() if block else child.poll()) is not None
    flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
    return os.waitid(os.P_PID, child.pid, flags) is not None


def _comm_after_exec(program: str) -> str:
    """The name the kernel gives a process that execs `program` (what ps shows, and what
    /proc says of run_locked's command once it runs): its file name, cut to 15 bytes. The
    holder is recorded while the wrapper is still `sh`, before the lock lets it exec."""
    name = os.fsencode(os.path.basename(program))[:15]
    return name.decode("utf-8", "replace")


def _forward(child, signum: int) -> None:
    try:
        child.send_signal(signum)
    except ProcessLookupError:
        pass
