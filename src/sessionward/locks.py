"""Named locks: mutual exclusion between sessions, with a holder everyone can see.

Purpose: serialize work that must not overlap across sessions, above all the end-of-session
saves behind the `end` lock (the origin's /end lock). A live holder is never broken, however
old; a dead one (process gone, zombie, PID reused) is taken over at the next acquire.

What it does not protect: anything done by a process that never asks for the lock. A
forced release (`release(force=True)`, `rm ~/.claude/end.lock`) frees the lock while its
holder may still be working: that is the person's call, and the holder is not told.

Files, for a lock NAME (see sessionward.paths):
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
                                        content is the wait queue: waiters take the lock in
                                        arrival order.

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

import fcntl
import os
import stat
import time

from sessionward import _jsoncodec as jsoncodec
from sessionward import paths
from sessionward._atomic import read_file_nofollow, same_file, write_file_atomic
from sessionward._flock import flock_exclusive
from sessionward.errors import BadInput, Refused, SessionwardError, StateUnwritable, UnsafeState
from sessionward.identity import (
    Owner,
    describe_checkout,
    owner_is_alive,
    process_started_at,
    read_process,
    resolve_owner,
    resolve_session_id,
)
from sessionward.identity.process import Liveness
from sessionward.store import open_store

END_LOCK = "end"
END_LOCK_TIMEOUT_S = 30.0
GUARD_TIMEOUT_S = 5.0  # the guard is held for microseconds; longer means something is wrong
MAX_LOCK_NAME = 64
_POLL_FIRST_S = 0.002
_POLL_CAP_S = 0.005  # a waiter notices a release, or its holder's death, within this
_PID_FILE_MAX = 64
_SCHEMA = "sessionward/1"
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
        return (
            record is not None
            and record.get("pid") == self.owner.pid
            and record.get("start_time") == self.owner.start_time
            and record.get("host") == self.owner.hostname
        )


def _owner_of_pid(pid: int, via: str) -> Owner:
    info = read_process(pid)
    if info is None:
        raise BadInput(f"process {pid} ({via}) is not running")
    return Owner(info, via)


# -- what is on disk -------------------------------------------------------------------------


class LockState:
    """One lock as found on disk. `pid` is None when the lock file is absent or unreadable."""

    __slots__ = ("name", "path", "present", "pid", "raw", "mtime", "meta", "liveness")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.present = False
        self.pid: int | None = None
        self.raw = b""
        self.mtime = 0.0
        self.meta: dict | None = None  # the holder file, only when its PID matches
        self.liveness: Liveness | None = None

    @property
    def held(self) -> bool:
        """Held by a live holder."""
        return self.present and self.liveness is not None and self.liveness.alive

    @property
    def orphaned(self) -> bool:
        return self.present and not self.held

    @property
    def since(self) -> float:
        return self.meta["since"] if self.meta else self.mtime

    def describe(self, home_short=None) -> str:
        """The holder in one phrase: PID, what it is, session, project, worktree, purpose, age."""
        if not self.present:
            return f"lock {self.name} is free"
        short = home_short or (lambda p: p)
        if self.pid is None:
            return f"lock file {self.path} holds no PID ({self.raw[:20]!r})"
        parts = [f"pid {self.pid}"]
        meta = self.meta
        if meta:
            holder = meta.get("holder", {})
            parts[0] += f" ({holder.get('comm', '?')})"
            session = meta.get("session") or {}
            if session.get("id"):
                parts.append(f"session {session['id']}")
            if session.get("project"):
                parts.append(f"project {session['project']}")
            if session.get("worktree"):
                branch = f" ({session['branch']})" if session.get("branch") else ""
                parts.append(f"worktree {short(session['worktree'])}{branch}")
            if meta.get("purpose"):
                parts.append(f"purpose: {meta['purpose']}")
        parts.append(f"held for {_age(time.time() - self.since)}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "held": self.held,
            "orphaned": self.orphaned,
            "pid": self.pid,
            "since": self.since if self.present else None,
            "alive_reason": self.liveness.reason if self.liveness else None,
            "holder": self.meta,
        }


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class LockTimeout(SessionwardError, TimeoutError):
    exit_code = 1
    code = "lock_timeout"

    def __init__(self, state: LockState, waited_s: float) -> None:
        super().__init__(
            f"lock {state.name} still held after {waited_s:.1f} s by {state.describe()}",
            f"wait for it to finish and retry; if that session is stuck: sessionward lock release {state.name} --force",
        )
        self.state = state
        self.waited_s = waited_s


class GuardTimeout(SessionwardError, TimeoutError):
    """The guard of a lock stayed busy: some sessionward process is stuck mid-transition."""

    exit_code = 1
    code = "guard_timeout"

    def __init__(self, guard_path: str, waited_s: float) -> None:
        super().__init__(
            f"lock guard {guard_path} still busy after {waited_s:.1f} s",
            "another sessionward process is stuck in the middle of taking or releasing the lock; retry",
        )
        self.guard_path = guard_path


class _StillWaiting(Exception):
    def __init__(self, state: "LockState") -> None:
        self.state = state


class LockRefused(Refused):
    code = "lock_refused"

    def __init__(self, state: LockState) -> None:
        super().__init__(
            f"lock {state.name} is held by another live process: {state.describe()}",
            f"let it finish; to take it anyway: sessionward lock release {state.name} --force",
        )
        self.state = state


class Acquired:
    __slots__ = ("name", "already_held", "took_over", "waited_s")

    def __init__(self, name: str, already_held: bool, took_over: LockState | None, waited_s: float) -> None:
        self.name = name
        self.already_held = already_held
        self.took_over = took_over  # the orphan we replaced, if any
        self.waited_s = waited_s


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
        self.purpose = purpose
        self.session_id = session_id
        self.cwd = cwd
        top = state_dir or paths.state_dir()
        self.path = os.path.join(top, f"{name}.lock")
        self.locks_dir = os.path.join(top, paths.PRIVATE_DIR_NAME, "locks")
        self.meta_path = os.path.join(self.locks_dir, f"{name}.holder.json")
        self.guard_path = os.path.join(self.locks_dir, f"{name}.guard")
        self._token: str | None = None
        self._session: dict | None = None  # what the holder file says of our session; computed once
        self._created: tuple | None = None  # (dev, inode, mtime_ns, size) of the NAME.lock we wrote
        self._guard_fd = -1  # kept open between transitions (flock released); per process
        self._guard_pid = 0
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
        deadline = started + timeout
        me = _waiter_record()
        try:
            return self._acquire_loop(holder, me, started, deadline, on_wait)
        except BaseException:
            # Interrupted (Ctrl-C, a raising on_wait): leave the queue, or those behind us
            # would wait on a waiter that no longer waits.
            try:
                with _Guard(self, time.monotonic() + GUARD_TIMEOUT_S) as guard:
                    guard.leave_queue(me)
            except BaseException:  # noqa: BLE001 - the original error matters more
                pass
            raise

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
                queued = True
            finally:
                if mask is not None:
                    sig.pthread_sigmask(sig.SIG_SETMASK, mask)
            if sig is None:
                import signal as sig
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
        with _Guard(self, max(deadline, time.monotonic() + GUARD_TIMEOUT_S)) as guard:
            state = self._read_state()
            first = guard.first_waiter()
            if state.held:
                meta_holder = state.meta.get("holder") if state.meta else None
                if holder.reentrant and state.meta and state.meta.get("reentrant") and holder.is_process(meta_holder):
                    if queued:
                        guard.leave_queue(me)
                    return Acquired(self.name, True, None, time.monotonic() - started)
            else:
                if first is None or _same_waiter(first, me):
                    took_over = self._take_over(state) if state.present else None
                    self._write_holder(holder)
                    if queued or first is not None:
                        guard.leave_queue(me)
                    return Acquired(self.name, False, took_over, time.monotonic() - started)
            guard.join_queue(me)  # again each poll: a stopped waiter is dropped, and rejoins at the back
        raise _StillWaiting(state)

    def release(self, force: bool = False, by_session: bool = True) -> Released:
        """Release the lock if this holder (or this session's owner) holds it.

        A free lock: no-op. An orphan: cleaned. Another live holder: LockRefused, unless
        force=True. A lock object that acquired frees only the lock it took: if that was
        forced away or taken over meanwhile, release() changes nothing and says "lost".
        """
        if _DISABLED:  # test-only: the negative control
            return Released(self.name, "free", LockState(self.name, self.path))
        if self._token is not None and self._acquired_by != os.getpid():
            # A forked child holds a copy of this object: the lock is its parent's, not its own.
            return Released(self.name, "lost", LockState(self.name, self.path))
        with _Guard(self, time.monotonic() + GUARD_TIMEOUT_S):
            if self._created is not None:
                mine = self._still_mine()
                if mine is not None:  # the very file we wrote: no annex to read, nobody to judge
                    _unlink(self.path)
                    self._token = self._created = None
                    return Released(self.name, "held", mine)
            state = self._read_state(judge=self._token is None)
            self._created = None
            if self._token is not None:
                # This lock object took it: it frees its own lock and nothing else. If that
                # lock was forced away or taken over meanwhile, the one there now is another's.
                mine = state.present and state.meta is not None and state.meta.get("token") == self._token
                self._token = None
                if mine:
                    self._remove(state)
                    return Released(self.name, "held", state)
                if state.present and state.liveness is None:
                    state.liveness = _holder_liveness(state)
                return Released(self.name, "lost", state)
            if not state.present:
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
            raise LockRefused(state)

    def status(self) -> LockState:
        """The lock as it is now (read without the guard: a snapshot)."""
        return self._read_state()

    def __enter__(self) -> "NamedLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- internals ----------------------------------------------------------------------------

    def _still_mine(self) -> LockState | None:
        """NAME.lock as we wrote it (same inode, mtime, size and content), or None."""
        try:
            info = os.lstat(self.path)
        except OSError:
            return None
        if (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size) != self._created[:4]:
            return None
        # Inodes are recycled at once after an `rm`, and coarse clocks repeat mtimes: the
        # content (the holder's PID) settles it.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if os.read(fd, _PID_FILE_MAX + 1) != self._created[4]:
                    return None
            finally:
                os.close(fd)
        except OSError:
            return None
        state = LockState(self.name, self.path)
        state.present, state.pid, state.mtime = True, self._holder().owner.pid, info.st_mtime
        return state

    def close(self) -> None:
        """Close the guard file kept open between transitions (the lock itself is unaffected)."""
        if self._guard_fd >= 0 and self._guard_pid == os.getpid():
            os.close(self._guard_fd)
        self._guard_fd = -1

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
        state = LockState(self.name, self.path)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return state
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                raise UnsafeState(self.path, "it is a symlink", f"remove the link: rm {self.path}") from None
            raise StateUnwritable(self.path, exc) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise UnsafeState(self.path, f"it is {kind}", f"move it away: mv {self.path} {self.path}.bad")
            state.raw = os.read(fd, _PID_FILE_MAX + 1)
            state.mtime = info.st_mtime
        finally:
            os.close(fd)
        state.present = True
        text = state.raw.strip()
        if len(state.raw) <= _PID_FILE_MAX and text.isdigit() and 0 < len(text) <= 10 and int(text) > 0:
            state.pid = int(text)
        state.meta = self._read_meta(state.pid)
        if judge:
            state.liveness = _holder_liveness(state)
        return state

    def _read_meta(self, pid: int | None) -> dict | None:
        if pid is None:
            return None
        try:
            raw = read_file_nofollow(self.meta_path)
            meta = jsoncodec.loads(raw) if raw else None
        except (ValueError, UnsafeState, StateUnwritable):
            return None  # unreadable annex: the lock is judged by its PID alone
        if not isinstance(meta, dict) or meta.get("schema") != _SCHEMA:
            return None
        holder = meta.get("holder")
        if not isinstance(holder, dict) or holder.get("pid") != pid or type(meta.get("since")) not in (int, float):
            return None
        return meta

    def _session_info(self) -> dict:
        if self._session is None:
            where = self._registered_session()
            if where is None:
                try:
                    checkout = describe_checkout(self.cwd or os.getcwd())
                    where = {"project": checkout.project, "worktree": checkout.worktree, "branch": checkout.branch}
                except OSError:  # the current directory was deleted: the lock still works
                    where = {"project": None, "worktree": None, "branch": None}
            self._session = {
                "id": self.session_id if self.session_id is not None else resolve_session_id(),
                "owner": self.owner.to_record(),
                **where,
            }
        return self._session

    def _registered_session(self) -> dict | None:
        """Project, worktree and branch of the owner's registered session, if it has one: the
        name it registered under is the one others check (obsidian_check_before_write)."""
        try:
            sessions = open_store().load_sessions()
        except SessionwardError:
            return None
        owner = Holder(self.owner, True)
        for record in sessions.values():
            if owner.is_process(record.get("owner")):
                return {"project": record["project"], "worktree": record["worktree"], "branch": record.get("branch")}
        return None

    def _write_holder(self, holder: Holder) -> None:
        self._token = os.urandom(8).hex()
        self._acquired_by = os.getpid()
        meta = {
            "schema": _SCHEMA,
            "name": self.name,
            "token": self._token,
            "holder": holder.owner.to_record(),
            "reentrant": holder.reentrant,
            "session": self._session_info(),
            "purpose": self.purpose,
            "since": time.time(),
        }
        # The annex first, then the lock file: whoever sees NAME.lock finds who holds it. Both
        # are written under the guard, so no writer races us: the annex is rewritten in place
        # (it counts only while its PID is in NAME.lock), and a free NAME.lock is created
        # with O_EXCL; only a take-over replaces an existing file, atomically.
        _write_in_place(self.meta_path, jsoncodec.dumps(meta).encode())
        content = f"{holder.owner.pid}\n".encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            write_file_atomic(self.path, content, durable=False)
            info = os.stat(self.path)
        except OSError as exc:
            raise StateUnwritable(self.path, exc) from None
        else:
            try:
                os.write(fd, content)
                info = os.fstat(fd)
            finally:
                os.close(fd)
        self._created = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size, content)

    def _take_over(self, orphan: LockState) -> LockState:
        if orphan.pid is None:  # not a PID: keep the odd file aside, never delete it
            kept = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(2).hex()}"
            try:
                os.rename(self.path, kept)
            except OSError as exc:
                raise StateUnwritable(self.path, exc) from None
        return orphan

    def _remove(self, state: LockState) -> None:
        # NAME.lock only: the annex stays, and counts for nothing once NAME.lock is gone.
        if state.pid is None and state.present:
            self._take_over(state)
        else:
            _unlink(self.path)


def _holder_liveness(state: LockState) -> Liveness:
    if state.pid is None:
        return Liveness(False, "the lock file holds no PID")
    meta = state.meta
    if meta is not None:
        holder = meta["holder"]
        # Locks are not renewed, so a lease would lapse under a live holder: a holder we
        # cannot see (another host or PID namespace) is never judged dead from here.
        return owner_is_alive(
            state.pid, holder.get("start_time"), holder.get("host"), holder.get("boot_id"), meta["since"],
            pidns=holder.get("pidns"), lease_ttl_s=float("inf"),
        )
    # No annex (forged, or written by the origin's scripts): the PID and the file's age.
    info = read_process(state.pid)
    if info is None:
        return Liveness(False, f"process {state.pid} is gone")
    if info.is_zombie:
        return Liveness(False, f"process {state.pid} is a zombie")
    started = process_started_at(info)
    if started is not None and started > state.mtime + 1.0:
        return Liveness(False, f"PID {state.pid} was reused: {info.comm} started after the lock was taken")
    return Liveness(True, f"process {state.pid} is running")


_ANNEX_BLOCK = 1024


def _write_in_place(path: str, data: bytes) -> None:
    """Overwrite `path` from offset 0 with `data` padded by spaces to a whole block (JSON
    allows trailing whitespace). No O_TRUNC: on ext4, truncate-then-write forces block
    allocation at close (auto_da_alloc) and cost more than the whole lock cycle."""
    padded = data + b" " * (-len(data) % _ANNEX_BLOCK)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}") from None
        raise StateUnwritable(path, exc) from None
    try:
        os.pwrite(fd, padded, 0)
        if os.fstat(fd).st_size != len(padded):
            os.ftruncate(fd, len(padded))
    except OSError as exc:
        raise StateUnwritable(path, exc) from None
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StateUnwritable(path, exc) from None


# -- the guard and its wait queue -------------------------------------------------------------


_start_time_of: dict = {}  # PID -> start time, for this process (a fork gets a new entry)


def _waiter_record() -> dict:
    pid = os.getpid()
    if pid not in _start_time_of:
        info = read_process(pid)
        _start_time_of[pid] = info.start_time if info else None
    return {"pid": pid, "start_time": _start_time_of[pid], "since": time.time()}


def _same_waiter(a: dict, b: dict) -> bool:
    return a.get("pid") == b.get("pid") and a.get("start_time") == b.get("start_time")


def _waiter_alive(waiter: dict) -> bool:
    """Still waiting: running, and not stopped (Ctrl-Z). A stopped waiter loses its place;
    when resumed it finds itself gone and joins again at the back."""
    pid = waiter.get("pid")
    if type(pid) is not int:
        return False
    info = read_process(pid)
    return (
        info is not None
        and not info.is_zombie
        and info.state not in ("T", "t")
        and info.start_time == waiter.get("start_time")
    )


_vetted_dirs: set = set()  # lock directories this process has created or checked


class _Guard:
    """The flock on NAME.guard, held for one transition; also reads and writes the queue."""

    def __init__(self, lock: NamedLock, deadline: float) -> None:
        self.lock = lock
        self.deadline = deadline
        self.fd = -1
        self._queue: list | None = None

    def __enter__(self) -> "_Guard":
        lock = self.lock
        if lock.locks_dir not in _vetted_dirs:  # once per process: these checks cost more than the lock
            self._make_locks_dir()
        while True:
            # The fd stays open in the NamedLock between transitions; a forked child opens its
            # own (a shared open file description would share the flock with the parent).
            if lock._guard_fd < 0 or lock._guard_pid != os.getpid():
                lock._guard_fd, lock._guard_pid = self._open(), os.getpid()
            self.fd = lock._guard_fd
            try:
                held = flock_exclusive(self.fd, max(0.0, self.deadline - time.monotonic()))
            except BaseException:
                lock.close()
                raise
            if not held:
                lock.close()
                raise GuardTimeout(lock.guard_path, GUARD_TIMEOUT_S)
            if same_file(self.fd, lock.guard_path):
                return self
            lock.close()  # the guard file was replaced or removed: lock the one at the path

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(self.lock.guard_path, flags, 0o600)
        except FileNotFoundError:  # the directory went away since we vetted it
            self._make_locks_dir()
            return self._open_once(flags)
        except OSError as exc:
            raise self._open_error(exc) from None

    def _make_locks_dir(self) -> None:
        paths.ensure_private_dir(os.path.dirname(self.lock.locks_dir))
        try:
            os.mkdir(self.lock.locks_dir, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StateUnwritable(self.lock.locks_dir, exc) from None
        _vetted_dirs.add(self.lock.locks_dir)

    def _open_once(self, flags: int) -> int:
        try:
            return os.open(self.lock.guard_path, flags, 0o600)
        except OSError as exc:
            raise self._open_error(exc) from None

    def _open_error(self, exc: OSError) -> Exception:
        if exc.errno == 40:  # ELOOP
            return UnsafeState(self.lock.guard_path, "it is a symlink")
        return StateUnwritable(self.lock.guard_path, exc)

    def _waiters(self) -> list:
        if self._queue is None:
            raw = os.pread(self.fd, 1 << 20, 0)
            try:
                doc = jsoncodec.loads(raw) if raw else {}
            except ValueError:
                doc = {}  # a torn queue heals: live waiters re-join on their next poll
            waiters = doc.get("waiters") if isinstance(doc, dict) else None
            self._queue = [w for w in waiters if isinstance(w, dict)] if isinstance(waiters, list) else []
        return self._queue

    def _save(self) -> None:
        data = jsoncodec.dumps({"schema": _SCHEMA, "waiters": self._queue}).encode() if self._queue else b""
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def first_waiter(self) -> dict | None:
        """The longest-waiting live waiter. Only the head is judged (one /proc read, however
        long the queue); a dead head is dropped and the next one judged."""
        waiters = self._waiters()
        dropped = 0
        while dropped < len(waiters) and not _waiter_alive(waiters[dropped]):
            dropped += 1
        if dropped:
            self._queue = waiters[dropped:]
            self._save()
        return self._queue[0] if self._queue else None

    def join_queue(self, me: dict) -> None:
        if not any(_same_waiter(w, me) for w in self._waiters()):
            self._queue.append(me)
            self._save()

    def leave_queue(self, me: dict) -> None:
        waiters = self._waiters()
        kept = [w for w in waiters if not _same_waiter(w, me)]
        if len(kept) != len(waiters):
            self._queue = kept
            self._save()


# -- many locks -------------------------------------------------------------------------------


def known_lock_names(state_dir: str | None = None) -> list[str]:
    """Every lock that exists or has existed: guard files, plus NAME.lock files in the state
    directory (a lock written by the origin's scripts has no guard yet)."""
    top = state_dir or paths.state_dir()
    names = set()
    try:
        for entry in os.listdir(os.path.join(top, paths.PRIVATE_DIR_NAME, "locks")):
            if entry.endswith(".guard"):
                names.add(entry[: -len(".guard")])
    except OSError:
        pass
    try:
        for entry in os.listdir(top):
            if entry.endswith(".lock") and not entry.startswith("."):
                names.add(entry[: -len(".lock")])
    except OSError:
        pass
    valid = []
    for name in sorted(names):
        try:
            valid.append(validate_lock_name(name))
        except BadInput:
            continue
    return valid


def held_by_owner(state_dir: str | None = None) -> dict:
    """{session owner pid: [lock names]} for locks held now, from the holders' annexes."""
    held: dict = {}
    for name in known_lock_names(state_dir):
        try:
            state = NamedLock(name, state_dir=state_dir).status()
        except SessionwardError:
            continue
        if state.held and state.meta:
            owner = (state.meta.get("session") or {}).get("owner") or {}
            if type(owner.get("pid")) is int:
                held.setdefault(owner["pid"], []).append(name)
    return held


class Cleaned:
    __slots__ = ("state", "action")

    def __init__(self, state: LockState, action: str) -> None:
        self.state = state
        self.action = action


def cleanup_orphans(dry_run: bool = False, state_dir: str | None = None, name: str | None = None) -> list[Cleaned]:
    """Remove orphaned locks (holder dead or PID reused), with the reason; all of them, or
    only `name`. dry_run reports."""
    found = []
    for name in [validate_lock_name(name)] if name else known_lock_names(state_dir):
        lock = NamedLock(name, state_dir=state_dir)
        state = lock.status()
        if not state.orphaned:
            continue
        if dry_run:
            found.append(Cleaned(state, "would remove"))
            continue
        with _Guard(lock, time.monotonic() + GUARD_TIMEOUT_S):
            state = lock._read_state()  # again, under the guard: it may have changed
            if state.orphaned:
                lock._remove(state)
                found.append(Cleaned(state, "removed"))
    return found


def run_locked(lock: NamedLock, argv: list[str], timeout: float, on_wait=None, on_acquired=None) -> int:
    """Run argv while holding `lock`; the command's own process is the holder, so the lock
    lives exactly as long as the command. Returns its exit status (128+N if killed by N).

    The command starts as `sh -c 'read go <&3 && exec "$@"'`: it has its PID (the holder's)
    but runs nothing until the lock is ours; exec keeps that PID. If the lock is not obtained,
    the pipe closes and it exits without running anything.
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
            preexec_fn=lambda: (os.dup2(read_end, 3), os.set_inheritable(3, True)),  # dup2(3, 3) keeps CLOEXEC
        )
    finally:
        os.close(read_end)
    # While waiting, signals keep their default meaning (Ctrl-C interrupts, SIGTERM ends us):
    # the parked command then sees EOF and exits without running. Once it runs, they are
    # forwarded to it, and we release when it ends.
    try:
        lock.holder = Holder.process(child.pid)
        acquired = lock.acquire(timeout, on_wait)
    except BaseException:
        os.close(write_end)  # EOF: the command exits without running
        child.wait()
        raise
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda signum, frame: _forward(child, signum)) for sig in forwarded}
    try:
        if on_acquired is not None:
            on_acquired(acquired)
        try:
            if child.poll() is not None:
                raise BrokenPipeError
            os.write(write_end, b"go\n")
        except BrokenPipeError:
            raise LockRunAborted(lock.name, child.wait()) from None
        finally:
            os.close(write_end)
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            lock.release()
        except SessionwardError:
            pass  # released by force meanwhile: nothing of ours left to free
    return 128 - status if status < 0 else status


class LockRunAborted(SessionwardError):
    """The command of `lock run` died (killed) before it could be started."""

    exit_code = 1
    code = "lock_run_aborted"

    def __init__(self, name: str, status: int) -> None:
        super().__init__(f"lock run {name}: the command was killed before it started (status {status}); it did not run")


def _forward(child, signum: int) -> None:
    try:
        child.send_signal(signum)
    except ProcessLookupError:
        pass
