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

flock_holder(fd) -> (who, what to do), for the message of a wait that timed out (and only
then: it reads /proc/locks, every lock on the machine, and may scan /proc/*/fd). A flock
belongs to an open file description, not to a process: /proc/locks names the process that
took it, which may have exited since while a child that inherited the descriptor keeps it
held. So the PID named there is checked (does it still have the file open?) and, if it is
not, the processes that have the file open are named instead, as possible holders.
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


_MAX_NAMED = 3  # possible holders named in one message


def flock_holder(fd: int) -> tuple[str, str] | None:
    """(who holds the flock on the file open at `fd`, what to do), or None when /proc does
    not say. Linux only; never raises."""
    from sessionward.identity.process import read_process, resume_advice

    try:
        info = os.fstat(fd)
        key = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
        takers, waiters = _flock_pids(key)
    except (OSError, ValueError):
        return None
    if not takers:
        return None
    taker = takers[0]
    if taker <= 0:
        return "a process outside this PID namespace", "it frees the lock when it exits; retry later"
    confirmed = _has_open(taker, key)
    # Waiters have the file open too (their PIDs are in /proc/locks, after "->"): not holders.
    holders = [taker] if confirmed else [pid for pid in _openers(key) if pid != os.getpid() and pid not in waiters][:_MAX_NAMED]
    described, stopped = [], []
    for pid in holders:
        proc = read_process(pid)
        if proc is None:
            continue
        described.append(f"pid {pid} ({proc.comm}, {'stopped' if proc.is_stopped else 'running'})")
        if proc.is_stopped:
            stopped.append(pid)
    if not described:
        return f"taken by pid {taker}, which no longer has it open (a process it passed the descriptor to holds it)", "retry later"
    if confirmed:
        who = "held by " + described[0]
    else:
        who = f"taken by pid {taker} (gone, or closed it), held through the descriptor it passed on to " + "; ".join(described)
    if stopped:
        return who, f"{resume_advice(stopped[0])}, or end it (kill {stopped[0]})"
    return who, f"retry in a moment; if it stays stuck, end it (kill {holders[0]})"


def _flock_pids(key: tuple) -> tuple[list[int], set]:
    """(PIDs that took a FLOCK on (major, minor, inode), PIDs waiting for one)."""
    wanted = f"{key[0]:02x}:{key[1]:02x}:{key[2]}"
    takers: list = []
    waiters: set = set()
    with open("/proc/locks", "rb") as f:
        for raw in f:
            # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; a waiter's line has "->" after "1:"
            fields = raw.decode("ascii", "replace").split()
            waiting = len(fields) > 1 and fields[1] == "->"
            if waiting:
                del fields[1]
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
                (waiters.add if waiting else takers.append)(int(fields[4]))
    return takers, waiters


def _has_open(pid: int, key: tuple) -> bool:
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return False
    for name in names:
        try:
            info = os.stat(f"{base}/{name}")
        except OSError:
            continue
        if (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino) == key:
            return True
    return False


def _openers(key: tuple) -> list[int]:
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit() and _has_open(int(entry), key):
            found.append(int(entry))
    return sorted(found)


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
