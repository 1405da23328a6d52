"""A kernel `flock` with a deadline: the one way sessionward waits for a lock file.

flock_exclusive(fd, timeout_s) -> True once the lock is held, False if the deadline passed.

Why not exponential backoff: a waiter that has waited long sleeps long between tries, while
a process that just released the lock comes straight back and retries at once, so old
waiters lose every race and can starve until their timeout (seen with 16 processes). The
waiting is done by the kernel instead: a blocking flock, bounded by a one-shot SIGALRM timer
whose handler raises. The kernel wakes waiters on release without favouring newcomers.

Where a timer cannot be used (not the main thread, or the process already runs an
ITIMER_REAL of its own), waiters poll at a short constant interval with jitter: no waiter's
chances shrink with its age.

It is a bug to call this with a lock already held by the same open file description: flock
would succeed at once (it is re-entrant per description), hiding the mistake.
"""

import fcntl
import os
import time

_POLL_S = 0.001  # constant, jittered +-50%: every waiter gets the same chances


def open_lock_file(path: str) -> int:
    """Open (creating it 0600) the permanent file a flock is taken on. A symlink or anything
    but a regular file planted there is refused (UnsafeState): a flock on someone else's FIFO
    or through a link guards nothing of ours. StateUnwritable for any other failure."""
    from sessionward.errors import StateUnwritable, UnsafeState

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}") from None
        raise StateUnwritable(path, exc) from None
    if os.fstat(fd).st_mode & 0o170000 != 0o100000:  # not S_ISREG: a FIFO, a device
        os.close(fd)
        raise UnsafeState(path, "it is not a regular file", f"move it away: mv {path} {path}.bad")
    return fd


class _DeadlinePassed(Exception):
    pass


def _raise_deadline(signum, frame):
    raise _DeadlinePassed


def flock_exclusive(fd: int, timeout_s: float) -> bool:
    """Take an exclusive flock on `fd` within `timeout_s`. On False the caller closes `fd`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    if timeout_s <= 0:
        return False
    held = _wait_in_kernel(fd, timeout_s)
    return _poll(fd, timeout_s) if held is None else held


def _wait_in_kernel(fd: int, timeout_s: float) -> bool | None:
    """Blocking flock under a SIGALRM deadline; None when a timer cannot be used here."""
    import signal  # only contended callers pay for it

    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        return None  # the process has a timer of its own: leave it alone
    if signal.SIGALRM in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        return None  # blocked (inherited mask): the alarm would never interrupt the wait
    try:
        previous = signal.signal(signal.SIGALRM, _raise_deadline)
    except ValueError:  # signal handlers can only be set from the main thread
        return None
    restore = previous if previous is not None else signal.SIG_DFL
    held = None
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        except _DeadlinePassed:
            held = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, restore)  # a still-pending alarm is dropped from here on
    except _DeadlinePassed:
        # The alarm landed after flock returned, or inside the finally: disarm and restore
        # again, and let a non-blocking try on the same fd say whether we hold it.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, restore)
        held = None
    if held is None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds at once if we hold it
            held = True
        except BlockingIOError:
            held = False
    return held


def _poll(fd: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # os.urandom, not `random`: that import alone costs a fifth of a hook's budget.
        jitter = 0.5 + int.from_bytes(os.urandom(2), "little") / 65536
        time.sleep(min(_POLL_S * jitter, remaining))
