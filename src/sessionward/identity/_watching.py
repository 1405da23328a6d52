"""The watcher: holds an owner's life lock for exactly the owner's life (see identity.life).

Imported by the script identity/_watcher.py (`python -I -S _watcher.py FD PID START PATH
[STAMP]`), never by sessionward: FD is an open file description of the life file on which the
caller holds an exclusive flock, and STAMP the status stamp (sessionward.status_stamp) to renew
when the owner dies, so that every status line drops it at its next refresh. Only `posix`,
`fcntl`, `select`, `_signal` and `time` are imported (posix and _signal rather than os and
signal: those two load collections.abc and enum, most of what the start would cost over a bare
`python -I -S`), so the pair costs a bare interpreter's memory and start, most of it shared.

It runs as a pair of processes sharing that one open file description (fork shares it): the
kernel keeps the flock while either of them lives. Each waits on the owner and on its peer
(pidfds, or a one-second poll where pidfd_open is missing). When the owner exits, both remove
the life file (if it is still theirs) and exit. When the peer dies alone (a `kill`, the OOM
killer), the survivor forks a new peer: one killed watcher never makes a live owner look dead.
With a shared store (the environment names it: use_shared_store), each of the pair also
renews the owner's lease there every third of its TTL, with the leases of the locks the owner
holds (sessionward.store.redis_lives, over the package's own RESP client: loaded only then),
and drops them when the owner exits: owners on other kernels are judged by that lease.
Both gone at once means the owner's PID namespace ended (a container stopped), or both were
killed by hand: the lock is free, and the owner counts as dead. A pair whose life file is gone
(its state directory removed) exits within ORPHAN_CHECK_S: nobody can probe it any more.
"""

import _signal as signal
import fcntl
import posix as os
import select
import time

POLL_S = 1.0  # without pidfds: how often the owner and the peer are looked at
ORPHAN_CHECK_S = 30.0  # how often a pair checks that its life file still exists
WAKE_S = ORPHAN_CHECK_S  # how long a wait lasts at most: a third of the lease with a shared store
NICENESS = 10  # the pair's scheduling niceness (at least): see lower_priority


def lower_priority():
    """Run at niceness NICENESS, or the caller's if higher (never raised). A pair only waits,
    but it starts (an interpreter, then the peer's fork) in the very milliseconds Claude Code
    runs the session's first hooks: on a busy 2-core machine it then took CPU from them, and
    from the person's own work after. Called before the exec by identity.life when it can,
    and again here (posix_spawn cannot set a niceness)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(NICENESS, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError:
        pass  # a priority is a courtesy: watching goes on without it


def start_time_of(pid):
    """Field 22 of /proc/PID/stat (None if the process is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def open_pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def is_gone(pid, start):
    return start_time_of(pid) != start


STAMP = ""  # the status stamp's path (argv[5]); "" when started without one


def finish(fd, path):
    """The owner exited: remove the life file if it is still the one we hold, renew the status
    stamp, then exit (the kernel frees the lock with the last of the pair)."""
    try:
        held, there = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino):
            os.unlink(path)
    except OSError:
        pass
    if STAMP:
        renew_stamp(STAMP)
    shared_store("finish")
    os._exit(0)


SHARED = None  # with a shared store: (url, key prefix, lease ms, owner key), from the environment
_conn = None  # this process's connection to it (a forked peer makes its own)
_conn_pid = 0
_checked_at = 0.0


def shared_store(what):
    """With a shared store (sessionward.store.redis_lives): "renew" the owner's lease and the
    leases of the locks it holds, or "finish" (the owner exited: its lease gone, its locks
    freed). A store that does not answer is tried again at the next wakeup: three are missed
    before the lease lapses. Loads the store's client (resp, over _socket) on first use only."""
    global _conn, _conn_pid
    if SHARED is None:
        return
    url, prefix, ttl_ms, owner = SHARED
    try:
        from sessionward.store import redis_lives, resp

        if _conn is None or _conn_pid != os.getpid() or not _conn.usable():
            _conn, _conn_pid = resp.connect(resp.parse_store_url(url)), os.getpid()
        if what == "renew":
            redis_lives.renew(_conn, prefix, owner, ttl_ms)
        else:
            redis_lives.finish(_conn, prefix, owner)
    except Exception:  # noqa: BLE001 - a watcher never dies of its store: it watches on
        _conn = None


def wake(fd):
    """A wait timed out: renew the lease on the shared store (every WAKE_S), and every
    ORPHAN_CHECK_S see that the life file still exists."""
    global _checked_at
    shared_store("renew")
    now = time.monotonic()
    if now - _checked_at >= ORPHAN_CHECK_S:
        _checked_at = now
        exit_if_orphaned(fd)


def renew_stamp(stamp):
    """sessionward.status_stamp.write_token, in the few lines this script can afford: a new
    token of the same length written over the old one in place (both of a pair may do it)."""
    try:
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.pwrite(fd, f"{time.time_ns():016x}-{os.getpid():010d}\n".encode(), 0)
        finally:
            os.close(fd)
    except OSError:
        pass


def watch(fd, owner, owner_fd, start, path, peer, peer_start):
    """Wait for the owner or the peer to go; replace a lost peer; finish with the owner."""
    while True:
        peer_fd = open_pidfd(peer)
        if peer_fd is not None and is_gone(peer, peer_start):  # the PID was reused already
            os.close(peer_fd)
            peer_fd = None
            peer = 0
        if peer:
            ready = wait_any(fd, owner, owner_fd, start, peer, peer_fd, peer_start)
            if peer_fd is not None:
                os.close(peer_fd)
            if ready == "owner":
                finish(fd, path)
        if is_gone(owner, start):
            finish(fd, path)
        reap()
        peer, peer_start = spawn_peer()


def wait_any(fd, owner, owner_fd, start, peer, peer_fd, peer_start):
    if owner_fd is not None and peer_fd is not None:
        poller = select.poll()
        poller.register(owner_fd, select.POLLIN)
        poller.register(peer_fd, select.POLLIN)
        while True:
            try:
                events = poller.poll(WAKE_S * 1000)
            except InterruptedError:
                continue
            if not events:
                wake(fd)
                continue
            fds = {ready for ready, _ in events}
            return "owner" if owner_fd in fds else "peer"
    waited = 0.0
    while True:  # no pidfds: look every POLL_S
        if is_gone(owner, start):
            return "owner"
        if is_gone(peer, peer_start):
            return "peer"
        select.select([], [], [], POLL_S)
        waited += POLL_S
        if waited >= WAKE_S:
            wake(fd)
            waited = 0.0


def exit_if_orphaned(fd):
    """Exit when the life file is gone (its state directory removed, or the file itself):
    nobody can probe a lock on it any more, and an owner that never exits (PID 1) would keep
    the pair forever."""
    try:
        if os.fstat(fd).st_nlink == 0:
            os._exit(0)
    except OSError:
        os._exit(0)


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def spawn_peer():
    """Fork a new peer. Both go on in watch()'s loop: the child's peer is its parent."""
    me, my_start = os.getpid(), start_time_of(os.getpid())
    child = os.fork()
    if child == 0:
        return me, my_start
    return child, start_time_of(child)


def use_shared_store(path):
    """Read the shared store's settings from the environment (identity.life passes them):
    SESSIONWARD_WATCH_STORE (its URL), _PREFIX (the user's keys), _TTL_MS (the lease)."""
    global SHARED, WAKE_S, _checked_at
    env = os.environ
    url = env.get(b"SESSIONWARD_WATCH_STORE", b"").decode()
    if not url:
        return
    import sys

    # This directory is on the path (_watcher.py put it there); the package's is two above.
    sys.path.insert(0, __file__.rpartition("/")[0].rpartition("/")[0].rpartition("/")[0])
    ttl_ms = int(env.get(b"SESSIONWARD_WATCH_TTL_MS", b"30000"))
    SHARED = (url, env.get(b"SESSIONWARD_WATCH_PREFIX", b"").decode(), ttl_ms, path.rpartition("/")[2])
    WAKE_S = min(ORPHAN_CHECK_S, ttl_ms / 3000)
    _checked_at = time.monotonic()


def main(argv):
    global STAMP
    fd, owner, start, path = int(argv[1]), int(argv[2]), argv[3], argv[4]
    STAMP = argv[5] if len(argv) > 5 else ""
    use_shared_store(path)
    lower_priority()
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    # The lock came with FD; check it (a caller without it must not start a watcher).
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 1
    owner_fd = open_pidfd(owner)
    if is_gone(owner, start):  # exited before we could watch it (or a recycled PID)
        finish(fd, path)
    os.chdir("/")  # hold no directory busy (an unmount of the checkout)
    shared_store("renew")  # at once: the owner is alive to other kernels from now on
    watch(fd, owner, owner_fd, start, path, 0, None)
    return 0
