"""The local store's note fence: an exclusive flock on the note's directory itself.

Why the directory (the real one, where the rename happens), opened read-only: every writer
of the note, whatever its state directory (CLAUDE_CONFIG_DIR, SESSIONWARD_HOME) or Unix
user, opens that same inode, so they all exclude each other, and it adds no file to the
user's vault. A lock file under the writer's state directory is private to that user and
that state directory (two Claude Code accounts on one vault each took their own and lost a
third of their appends); a lock file beside the note would litter the vault; the note is
replaced by rename, so its inode changes with every write and cannot carry the lock.

What it does not cover: a flock is not shared across kernels (other machines, VMs, most
network filesystems, Docker Desktop's VirtioFS): the shared store's fence is for those
(store.redis_notes). On one kernel the flock excludes for as long as the writer lives, so a
write needs no fencing number here: check() and written() have nothing to refuse.

Calling sequence (sessionward.notes, through store.note_fence()):
    fence = LocalNoteFence(target, timeout_s)   # the flock, or NoteLockTimeout naming the holder
    fence.check(current, new); replace the note; fence.written(new)
    fence.close(); os.close(target.dir_fd)      # the close of the directory drops the flock

Test-only: SESSIONWARD_TEST_DISABLE_LOCKS=1 (the named locks' switch) skips the flock, so a
test can show that concurrent appends without it lose some.
"""

import os
import time

from sessionward._flock import flock_exclusive, flock_holder
from sessionward.errors import NoteLockTimeout
from sessionward.store import NoteFence

_LOCK_DISABLED = os.environ.get("SESSIONWARD_TEST_DISABLE_LOCKS") == "1"  # read once: children inherit it


class LocalNoteFence(NoteFence):
    """The flock on the directory `target.dir_fd` (sessionward._userpath.Target) holds."""

    def __init__(self, target, timeout_s: float) -> None:
        started = time.monotonic()
        self._fd = target.dir_fd
        if not _LOCK_DISABLED and not flock_exclusive(self._fd, timeout_s):
            raise NoteLockTimeout(target.real, time.monotonic() - started, flock_holder(self._fd))
        self.waited_s = time.monotonic() - started

    def check(self, current: bytes | None, new: bytes) -> None:
        """Nothing to refuse: the flock excludes every other writer on this kernel."""

    def written(self, new: bytes) -> None:
        """Nothing to record."""

    def close(self) -> None:
        """Nothing: the flock goes with the caller's close of target.dir_fd."""
