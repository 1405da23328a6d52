"""The files of one named lock: what is on disk, how it is read and written, and the guard.

The protocol (who may take, re-enter, release or take over a lock) and the public API are in
sessionward.locks, whose docstring is the manual; this module knows files, not those rules.
The local store's lock backend (sessionward.store.local_locks) is built on it; sessionward.locks
imports LockState (what a lock's state is, whatever the backend) and nothing else of it.

  NAME.lock         read by read_lock_state into a LockState (the PID, the holder annex if its
                    PID matches, and the holder's liveness). Written by sessionward.locks.
  NAME.holder.json  the annex: rewritten in place by write_in_place, never truncated first.
  NAME.guard        Guard: its flock is held for one transition; its content is the FIFO
                    queue of waiters, each a {pid, start_time, pidns, since, seen (monotonic)} record,
                    and the last fence given (Guard.next_fence).

It is a bug to read the queue, or write NAME.lock or the annex, outside a Guard (status()
reads NAME.lock without it, as a snapshot, and writes nothing).
"""

import fcntl
import os
import stat
import time

from sessionward import _jsoncodec as jsoncodec, paths, status_stamp
from sessionward._atomic import crash_point, read_file_nofollow, same_file, unlink_if_present, unusable_path_error
from sessionward._flock import flock_exclusive, flock_holder
from sessionward._humanize import format_age, short_path, short_session_id
from sessionward.errors import GuardTimeout, SessionwardError, StateUnwritable, UnsafeState
from sessionward.identity import branch_now, process_started_at, read_process, record_liveness, same_process, this_host
from sessionward.identity.process import REAP_GRACE_S, Liveness, live_process, resume_advice, zombie_liveness
from sessionward.identity.where import HERE, liveness_json, owner_where, where_label

GUARD_TIMEOUT_S = 5.0  # the guard is held for microseconds; longer means something is wrong
PID_FILE_MAX = 64
SCHEMA = "sessionward/1"


# -- what is on disk -------------------------------------------------------------------------


class LockState:
    """One lock as found on disk. `pid` is None when the lock file is absent or unreadable."""

    __slots__ = ("name", "path", "present", "pid", "raw", "mtime", "meta", "liveness", "lease_left_ms")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.present = False
        self.pid: int | None = None
        self.raw = b""
        self.mtime = 0.0
        self.meta: dict | None = None  # the holder file, only when its PID matches
        self.liveness: Liveness | None = None
        self.lease_left_ms: int | None = None  # the shared store's lease: ms until it lapses unless renewed

    @property
    def held(self) -> bool:
        """Held by a live holder."""
        return self.present and self.liveness is not None and self.liveness.alive

    @property
    def orphaned(self) -> bool:
        return self.present and not self.held

    @property
    def stopped(self) -> bool:
        """Held by a live holder that is stopped (Ctrl-Z, SIGSTOP): it will not release it."""
        return self.held and self.liveness is not None and self.liveness.stopped

    def advice(self, usual: str) -> str:
        """What to do about the holder: `usual` (wait, or force), unless it is stopped, when
        waiting is pointless until someone resumes it."""
        if self.stopped:
            return (f"its holder is stopped: {resume_advice(self.pid)}, "  # type: ignore[arg-type]
                    f"or take the lock anyway: sessionward lock release {self.name} --force")
        return usual

    @property
    def since(self) -> float:
        return self.meta["since"] if self.meta else self.mtime

    def describe(self, home_short=None) -> str:
        """The holder in one phrase: PID, what it is, session, project, worktree, purpose, age.
        The worktree is shown by `home_short` (a renderer's path style: ~ on a terminal), else
        with ~ for the home directory: the phrase is read by a person (errors, notices, hooks)."""
        if not self.present:
            return f"lock {self.name} is free"
        short = home_short or short_path
        if self.pid is None:
            return f"lock file {short(self.path)} holds no PID ({self.raw[:20]!r})"
        parts = [f"pid {self.pid}"]
        meta = self.meta
        stopped = ", stopped" if self.stopped else ""
        if not meta and stopped:
            parts[0] += " (stopped)"
        if meta:
            holder = meta.get("holder", {})
            parts[0] += f" ({holder.get('comm', '?')}{stopped})"
            where = self.where
            if where != HERE:  # the common case stays short
                parts[0] += f" {where}"
            session = meta.get("session") or {}
            if isinstance(session.get("id"), str) and session["id"]:
                parts.append(f"session {short_session_id(session['id'])}")
            if session.get("project"):
                parts.append(f"project {session['project']}")
            if session.get("worktree"):
                branch = branch_now(session["worktree"], session.get("branch"))  # moved by a checkout since
                branch = f" ({branch})" if branch else ""
                parts.append(f"worktree {short(session['worktree'])}{branch}")
            if meta.get("purpose"):
                parts.append(f"purpose: {meta['purpose']}")
        parts.append(f"held for {format_age(time.time() - self.since)}")
        if self.lease_left_ms is not None:  # the shared store: its fence and its lease
            fence = (meta or {}).get("fence")
            parts.append(f"fence {fence}, lease {max(0, self.lease_left_ms) / 1000:.1f} s left unless renewed")
        return ", ".join(parts)

    @property
    def where(self) -> str:
        """Where the holder runs (identity.where.owner_where); "here" when the lock file alone
        names it (a PID is judged here)."""
        holder = (self.meta or {}).get("holder")
        return owner_where(holder) if isinstance(holder, dict) else HERE

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
            "where": where_label((self.meta or {}).get("holder")) if self.present else None,
            "liveness": liveness_json(self.liveness) if self.liveness else None,
            "fence": (self.meta or {}).get("fence") if self.present else None,
            "lease_left_s": None if self.lease_left_ms is None else round(max(0, self.lease_left_ms) / 1000, 3),
        }


def read_lock_state(name: str, path: str, meta_path: str, judge: bool = True) -> LockState:
    """NAME.lock at `path` and, if its PID matches, the holder annex at `meta_path`; with
    `judge`, also whether the holder is alive."""
    state = LockState(name, path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return state
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}") from None
        raise unusable_path_error(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise UnsafeState(path, f"it is {kind}", f"move it away: mv {path} {path}.bad")
        state.raw = os.read(fd, PID_FILE_MAX + 1)
        state.mtime = info.st_mtime
    finally:
        os.close(fd)
    state.present = True
    text = state.raw.strip()
    if len(state.raw) <= PID_FILE_MAX and text.isdigit() and 0 < len(text) <= 10 and int(text) > 0:
        state.pid = int(text)
    state.meta = _read_meta(meta_path, state.pid)
    if judge:
        state.liveness = holder_liveness(state)
    return state


def _read_meta(meta_path: str, pid: int | None) -> dict | None:
    if pid is None:
        return None
    try:
        raw = read_file_nofollow(meta_path)
        meta = jsoncodec.loads(raw) if raw else None
    except (ValueError, UnsafeState, StateUnwritable):
        return None  # unreadable annex: the lock is judged by its PID alone
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        return None
    holder = meta.get("holder")
    if not isinstance(holder, dict) or holder.get("pid") != pid or type(meta.get("since")) not in (int, float):
        return None
    return meta


def holder_liveness(state: LockState) -> Liveness:
    if state.pid is None:
        return Liveness(False, "the lock file holds no PID")
    meta = state.meta
    if meta is not None:
        # Locks are never renewed: a holder is judged as its record says (its PID, or its life
        # lock from another PID namespace), never by its age. A zombie holder whose parent is
        # reaping it is about to be released (`lock run`): it holds for a bounded grace.
        return record_liveness(meta["holder"], meta["since"], reap_grace_s=REAP_GRACE_S)
    # No annex (forged, or written by the origin's scripts): the PID and the file's age.
    info = read_process(state.pid)
    if info is None:
        return Liveness(False, f"process {state.pid} is gone")
    if info.is_zombie:
        return zombie_liveness(info, REAP_GRACE_S)
    started = process_started_at(info)
    if started is not None and started > state.mtime + 1.0:
        return Liveness(False, f"PID {state.pid} was reused: {info.comm} started after the lock was taken")
    return live_process(info)


_ANNEX_BLOCK = 1024


def write_in_place(path: str, data: bytes) -> None:
    """Overwrite `path` from offset 0 with `data` padded by spaces to a whole block (JSON
    allows trailing whitespace). No O_TRUNC: on ext4, truncate-then-write forces block
    allocation at close (auto_da_alloc) and cost more than the whole lock cycle. A longer old
    file is blanked with spaces before it is cut, so a crash in between leaves JSON, not a
    tail of the old annex."""
    padded = data + b" " * (-len(data) % _ANNEX_BLOCK)
    # O_NONBLOCK: opening a planted FIFO for writing would otherwise wait for a reader forever
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}") from None
        if exc.errno == 6:  # ENXIO: a FIFO nobody reads
            raise UnsafeState(path, "it is not a regular file", f"move it away: mv {path} {path}.bad") from None
        raise StateUnwritable(path, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeState(path, "it is not a regular file", f"move it away: mv {path} {path}.bad")
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, padded + b" " * (size - len(padded)), 0)
        crash_point("annex-written")
        if size > len(padded):
            os.ftruncate(fd, len(padded))
            crash_point("annex-truncated")
    except OSError as exc:
        raise StateUnwritable(path, exc) from None
    finally:
        os.close(fd)


def unlink_lock_file(path: str) -> None:
    if not unlink_if_present(path):
        return
    crash_point("lock-removed")
    status_stamp.touch(os.path.dirname(path))  # every status line shows the end lock's holder


# -- the guard and its wait queue -------------------------------------------------------------


_QUEUE_MAX = 1 << 20


def _decode_guard(raw: bytes) -> tuple[list, int]:
    """(the wait queue, the last fence given) from NAME.guard's content."""
    try:
        doc = jsoncodec.loads(raw) if raw.strip() else {}
    except ValueError:
        doc = {}  # a torn queue heals: live waiters re-join on their next poll
    if not isinstance(doc, dict):
        return [], 0
    waiters, fence = doc.get("waiters"), doc.get("fence")
    fence = fence if type(fence) is int and fence > 0 else 0
    return ([w for w in waiters if isinstance(w, dict)] if isinstance(waiters, list) else []), fence


def read_queue(guard_path: str) -> list:
    """The wait queue in NAME.guard, read without its flock (a snapshot, for display)."""
    try:
        raw = read_file_nofollow(guard_path)
    except (OSError, ValueError, SessionwardError):
        return []
    return _decode_guard(raw or b"")[0]


_start_time_of: dict = {}  # PID -> start time, for this process (a fork gets a new entry)


WAITER_SILENCE_S = 2.0  # a waiter we cannot see (another PID namespace) polls every few ms


def waiter_record() -> dict:
    pid = os.getpid()
    if pid not in _start_time_of:
        info = read_process(pid)
        _start_time_of[pid] = info.start_time if info else None
    return {"pid": pid, "start_time": _start_time_of[pid], "pidns": this_host().pidns, "since": time.time(),
            "seen": time.monotonic()}


def _waiter_alive(waiter: dict) -> bool:
    """Still waiting: running, and not stopped (Ctrl-Z). A stopped waiter loses its place;
    when resumed it finds itself gone and joins again at the back. A waiter in another PID
    namespace (its PID means nothing here) is waiting while it keeps polling: it refreshes
    "seen" under the guard every few milliseconds, so a silence of seconds means it left."""
    pid = waiter.get("pid")
    if type(pid) is not int:
        return False
    pidns = waiter.get("pidns")
    here = this_host().pidns
    if pidns is not None and here is not None and pidns != here:
        # CLOCK_MONOTONIC is one clock for every process of a kernel, and no clock jump moves it.
        seen = waiter.get("seen")
        return type(seen) in (int, float) and abs(time.monotonic() - seen) < WAITER_SILENCE_S  # type: ignore[operator]
    info = read_process(pid)
    return (
        info is not None
        and not info.is_zombie
        and not info.is_stopped
        and info.start_time == waiter.get("start_time")
    )


_vetted_dirs: set = set()  # lock directories this process has created or checked


class Guard:
    """The flock on NAME.guard, held for one transition; also reads and writes the queue.

    `lock` is the NamedLock whose guard this is: its guard_path and locks_dir, and the guard
    fd it keeps open between transitions (_guard_fd, _guard_pid, close())."""

    def __init__(self, lock, deadline: float) -> None:
        self.lock = lock
        self.deadline = deadline
        self.fd = -1
        self._queue: list | None = None
        self._fence = 0  # the last fence given, as read with the queue
        self._size = 0  # bytes of the queue on disk, as last read or written
        self._moved = False  # someone joined or left the queue: status lines show who waits

    def __enter__(self) -> "Guard":
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
                try:
                    holder = flock_holder(self.fd)
                finally:
                    lock.close()
                raise GuardTimeout(lock.guard_path, GUARD_TIMEOUT_S, holder)
            if same_file(self.fd, lock.guard_path):
                return self
            lock.close()  # the guard file was replaced or removed: lock the one at the path

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        if self._moved:
            status_stamp.touch(os.path.dirname(self.lock.path))

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(self.lock.guard_path, flags, 0o600)
        except FileNotFoundError:  # the directory went away since we vetted it
            self._make_locks_dir()
            fd = self._open_once(flags)
        except OSError as exc:
            raise self._open_error(exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO: pread would fail, and it is not ours
            os.close(fd)
            path = self.lock.guard_path
            raise UnsafeState(path, "it is not a regular file", f"move it away: mv {path} {path}.bad")
        return fd

    def _make_locks_dir(self) -> None:
        paths.ensure_private_dir(os.path.dirname(self.lock.locks_dir))
        # Vetted like the private directory: a symlink planted here would have every lock
        # file written wherever it points (O_NOFOLLOW guards the last component only).
        paths.ensure_private_dir(self.lock.locks_dir)
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
            raw = os.pread(self.fd, _QUEUE_MAX, 0)
            self._size = len(raw)
            self._queue, self._fence = _decode_guard(raw)
        return self._queue

    def _save(self) -> None:
        doc: dict = {"schema": SCHEMA}
        if self._fence:
            doc["fence"] = self._fence
        if self._queue:
            doc["waiters"] = self._queue
        data = jsoncodec.dumps(doc).encode() if len(doc) > 1 else b""
        # Spaces over the rest of the old queue (JSON allows trailing whitespace): written and
        # not yet truncated, the file still parses (a shorter queue left a torn tail there,
        # and a torn queue drops every waiter's place).
        try:
            os.pwrite(self.fd, data + b" " * (self._size - len(data)), 0)
            crash_point("queue-written")
            if self._size > len(data):
                os.ftruncate(self.fd, len(data))
                crash_point("queue-truncated")
        except OSError as exc:  # a full disk (the fence makes the file grow), a quota: one line
            raise StateUnwritable(self.lock.guard_path, exc) from None
        self._size = len(data)

    def next_fence(self) -> int:
        """One more than every fence this lock gave before: the new holder's (saved first)."""
        self._waiters()
        self._fence += 1
        self._save()
        return self._fence

    def first_waiter(self) -> dict | None:
        """The longest-waiting live waiter. Only the head is judged (one /proc read, however
        long the queue); a dead head is dropped and the next one judged."""
        waiters = self._waiters()
        dropped = 0
        while dropped < len(waiters) and not self.waiter_alive(waiters[dropped]):
            dropped += 1
        if dropped:
            self._queue = waiters[dropped:]
            self._save()
            self._moved = True
        return self._queue[0] if self._queue else None

    def waiter_alive(self, waiter: dict) -> bool:
        """Is `waiter` still waiting? (A backend with waiters on other kernels judges more.)"""
        return _waiter_alive(waiter)

    def join_queue(self, me: dict) -> None:
        for waiter in self._waiters():
            if same_process(waiter, me):
                now = time.monotonic()
                seen = waiter.get("seen")
                if type(seen) not in (int, float) or now - seen > WAITER_SILENCE_S / 4:
                    waiter["seen"] = now  # for those who judge us from another PID namespace
                    self._save()
                return
        self._queue.append(me)  # type: ignore[union-attr]  # _waiters() read it
        self._save()
        self._moved = True

    def leave_queue(self, me: dict) -> None:
        waiters = self._waiters()
        kept = [w for w in waiters if not same_process(w, me)]
        if len(kept) != len(waiters):
            self._queue = kept
            self._save()
            self._moved = True
