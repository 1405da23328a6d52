"""The local store's named locks: one lock's facts (holder, wait queue, fence counter) in files,
unchanged on disk, at the origin's paths.

The protocol (who may take, re-enter, release or take over a lock, and when) is
sessionward.locks's; this module holds the facts and changes them only as told, inside a
transition. The files, for a lock NAME (STATE is the state directory):

  STATE/NAME.lock                        the holder's PID alone ("4242\\n"), exists only while
                                         held (the origin's end.lock: `cat`, `rm` work on it)
  STATE/sessionward/locks/NAME.holder.json  the holder annex (sessionward.locks writes its
                                         fields), rewritten in place, counted only while its
                                         PID is the one in NAME.lock
  STATE/sessionward/locks/NAME.guard     permanent: its flock is held for one transition; its
                                         content is the FIFO wait queue and the fence counter
                                         ({"schema", "fence": N, "waiters": [...]}; empty while
                                         neither exists)

Calling sequence (sessionward.locks):
    files = LocalLock(name, state_dir)
    with files.transition(deadline) as guard:      # GuardTimeout when it stays busy
        state = files.read()                        # NAME.lock + annex, holder judged
        guard.first_waiter() / join_queue(me) / leave_queue(me)
        created, fence = files.take(guard, meta, pid, state)  # fence: one more than any before;
                                                    # annex, then NAME.lock in one step
        files.remove(state)                         # NAME.lock gone (kept aside if no PID)
    files.read(), files.queue()                     # snapshots, outside a transition

A fence is a number per lock, larger for every acquire than for any before it, so that a
write stamped with it can be refused once a later holder exists (the shared store does;
here the flock already excludes). It is kept in the guard file, which is never deleted; a
sessionward older than the fence rewrites that file without it, and the count starts again.

It is a bug to change anything outside a transition.
"""

import os

from sessionward import _jsoncodec as jsoncodec, paths, status_stamp
from sessionward._atomic import crash_point, kept_aside_name, remove_stray_temps, temp_name, unlink_quietly
from sessionward._lockfile import (
    PID_FILE_MAX,
    Guard,
    LockState,
    read_lock_state,
    read_queue,
    unlink_lock_file,
    write_in_place,
)
from sessionward.errors import StateUnwritable
from sessionward.store import LockFacts


class LocalLock(LockFacts):
    """One named lock's files. Keeps the guard file open between transitions (per process)."""

    def __init__(self, name: str, state_dir: str | None = None) -> None:
        top = state_dir or paths.state_dir()
        self.name = name
        self.path = paths.lock_file_path(name, top)
        self.locks_dir = os.path.join(top, paths.PRIVATE_DIR_NAME, "locks")
        self.meta_path = os.path.join(self.locks_dir, f"{name}.holder.json")
        self.guard_path = os.path.join(self.locks_dir, f"{name}.guard")
        self._guard_fd = -1  # kept open between transitions (flock released); per process
        self._guard_pid = 0

    def transition(self, deadline: float) -> Guard:
        """The guard's flock, up to `deadline` (time.monotonic()); the queue and the fence
        counter through the Guard it returns."""
        return Guard(self, deadline)

    def read(self, judge: bool = True) -> LockState:
        """NAME.lock and its annex as they are now; judge=False skips the liveness check."""
        return read_lock_state(self.name, self.path, self.meta_path, judge)

    def queue(self) -> list:
        """The wait queue, read without the guard (a snapshot)."""
        return read_queue(self.guard_path)

    def take(self, guard: Guard, meta: dict, pid: int, replacing: LockState) -> tuple:
        """The lock is ours, for `pid` with the annex `meta` (its fence added): (what
        identifies the NAME.lock written, the fence, whether `replacing` was replaced). Under
        the guard, whose flock already excludes every other writer: an orphan read in this
        transition is still there, and write_holder replaces it."""
        meta["fence"] = fence = guard.next_fence()
        return self.write_holder(jsoncodec.dumps(meta).encode(), pid), fence, replacing.present

    def lost_lease(self, token: str, holder: dict) -> None:
        """A local lock has no lease to lapse: a lock taken from its holder was forced away
        or taken over from a dead holder (Released says "lost")."""
        return None

    def write_holder(self, annex: bytes, pid: int) -> tuple:
        """The annex, then NAME.lock holding `pid`: whoever sees NAME.lock finds who holds it.
        Returns what identifies the NAME.lock written (for still_mine)."""
        # The annex is rewritten in place (it counts only while its PID is in NAME.lock).
        # NAME.lock appears with its PID in one step, never empty (a crash between
        # O_EXCL-create and write left an end.lock holding nothing): a temp file holding the
        # PID is hard-linked to a free NAME.lock (EEXIST if one appeared) or, in a take-over,
        # renamed over the orphan.
        write_in_place(self.meta_path, annex)
        content = f"{pid}\n".encode()
        tmp = temp_name(self.path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateUnwritable(self.path, exc) from None
        try:
            try:
                if os.write(fd, content) != len(content):
                    raise OSError(28, os.strerror(28))  # a short write of a few bytes: the disk is full
                info = os.fstat(fd)
            finally:
                os.close(fd)
            crash_point("temp-written")
            try:
                os.link(tmp, self.path)
                crash_point("lock-linked")
            except FileExistsError:
                os.replace(tmp, self.path)
                crash_point("replaced")
                remove_stray_temps(self.path)  # a take-over is rare: clean up after crashed acquires
        except OSError as exc:
            # Full disk (ENOSPC, EDQUOT) or worse: nothing was linked, so no NAME.lock appears.
            unlink_quietly(tmp)
            raise StateUnwritable(self.path, exc) from None
        unlink_quietly(tmp)  # after a link: NAME.lock keeps the inode
        status_stamp.touch(os.path.dirname(self.path))  # every status line shows the end lock's holder
        return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size, content)

    def still_mine(self, created: tuple, pid: int) -> LockState | None:
        """NAME.lock as write_holder left it (same inode, mtime, size and content), or None."""
        try:
            info = os.lstat(self.path)
        except OSError:
            return None
        if (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size) != created[:4]:
            return None
        # Inodes are recycled at once after an `rm`, and coarse clocks repeat mtimes: the
        # content (the holder's PID) settles it.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if os.read(fd, PID_FILE_MAX + 1) != created[4]:
                    return None
            finally:
                os.close(fd)
        except OSError:
            return None
        state = LockState(self.name, self.path)
        state.present, state.pid, state.mtime = True, pid, info.st_mtime
        return state

    def remove(self, state: LockState) -> str | None:
        """Free the lock: NAME.lock goes (the annex stays, and counts for nothing then). A
        NAME.lock holding no PID is kept aside, never deleted: returns where it went."""
        if state.pid is None and state.present:
            kept = kept_aside_name(self.path)
            try:
                os.rename(self.path, kept)
            except OSError as exc:
                raise StateUnwritable(self.path, exc) from None
            crash_point("orphan-kept-aside")
            return kept
        unlink_lock_file(self.path)
        return None

    def tidy(self) -> None:
        """Remove the temp files of acquires that died before their link."""
        remove_stray_temps(self.path)

    def close(self) -> None:
        """Close the guard file kept open between transitions (the lock itself is unaffected)."""
        if self._guard_fd >= 0 and self._guard_pid == os.getpid():
            os.close(self._guard_fd)
        self._guard_fd = -1


def lock_names(state_dir: str | None = None, end_lock: str = paths.END_LOCK) -> list[str]:
    """Every lock with a guard file (every lock sessionward ever took has one), plus `end`
    while its NAME.lock exists (the origin's scripts write it without a guard); unvalidated."""
    top = state_dir or paths.state_dir()
    names = set()
    try:
        for entry in os.listdir(os.path.join(top, paths.PRIVATE_DIR_NAME, "locks")):
            if entry.endswith(".guard"):
                names.add(entry[: -len(".guard")])
    except OSError:
        pass
    if os.path.lexists(paths.lock_file_path(end_lock, top)):
        names.add(end_lock)
    return sorted(names)
