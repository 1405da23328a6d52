"""Life locks: whether an owner lives, for any process on the same kernel, whatever its PID
namespace.

Purpose: containers and sandboxes that share ~/.claude (a devcontainer's volume, a bind
mount into `docker run`, bubblewrap's --unshare-pid) share the files and the kernel, so
flock works between them, but not PIDs: a PID recorded in another PID namespace names
nothing here, or someone else. So every owner (a session's Claude Code process or shell, a
lock's holder) gets a watcher that holds an exclusive flock on its life file for exactly the
owner's life, and anyone probes that lock without blocking:

  held     alive (the kernel says so; idle or busy, however long)
  free     dead: the watcher exited with its owner, or the owner's whole PID namespace ended
  missing  dead, for a record that says it has a watcher (the watcher removes the file when
           its owner exits)

Files: STATE/sessionward/life/<key>, key = "<boot id>-<pid namespace inode>-<pid>-<start
time>": one file per owner process, created by ensure_watcher() already locked (a temp file
linked into place), removed by the watcher when the owner exits or by forget() once found
free. The watcher (identity/_watching.py, run by the script identity/_watcher.py: a pair of
processes sharing one open file description) is started in its own session, with every
descriptor but the lock closed, so Claude Code never waits on a hook's pipes. At most one pair
per owner: a second ensure_watcher() finds the lock held and starts nothing.

What it does not cover: another kernel (a VM, another machine, Docker Desktop's VirtioFS,
where flock itself may not be shared): that owner's liveness is unknown, never guessed from
age (see identity.process). Killing both processes of a pair by hand makes their owner look
dead; its next hook starts a new pair and re-registers it (should that hook meet forget()
removing the old file at that instant, the pair starts one hook later). The SessionStart hook
starts its pair only once it has answered (defer_starts(), start_deferred()), holding the lock
itself until then: killed in between, it leaves the same free file as a killed pair.

Test-only: SESSIONWARD_TEST_DISABLE_LIFE_PROBE=1 makes probe() answer "cannot tell" (the
negative control of the namespace tests).
"""

import fcntl
import os
import sys

from sessionward import paths

LIFE_DIR_NAME = "life"
_PROBE_DISABLED = os.environ.get("SESSIONWARD_TEST_DISABLE_LIFE_PROBE") == "1"  # read once: children inherit it
_KEY_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-")
_WATCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_watcher.py")

HELD, FREE, MISSING = "held", "free", "missing"

_watched: set = set()  # life files this process has seen held (or started): not probed again
_deferred: list | None = None  # after defer_starts(): (fd, owner, path) of the pairs to start
_shared_store = None  # what a watcher is told of the shared store, when asked (renew_on_shared_store)
_on_failure = None


def life_key(boot_id, pidns, pid, start_time) -> str | None:
    """The life file's name for an owner record's fields; None when they cannot name one
    (an older record without a PID namespace or start time, or fields that are not ours)."""
    if type(pidns) is not int or type(pid) is not int or type(start_time) is not int:
        return None
    boot = boot_id if isinstance(boot_id, str) and 0 < len(boot_id) <= 64 and set(boot_id) <= _KEY_CHARS else "unknown"
    return f"{boot}-{pidns}-{pid}-{start_time}"


def life_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, LIFE_DIR_NAME)


def probe(key: str | None, state_dir: str | None = None) -> str | None:
    """HELD, FREE or MISSING for the life file `key`, without blocking; None when it cannot
    be told (no key, an unreadable file, or the test switch)."""
    if key is None or _PROBE_DISABLED:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(os.path.join(life_dir(state_dir), key), flags)
    except FileNotFoundError:
        return MISSING
    except OSError:
        return None
    try:
        if os.fstat(fd).st_mode & 0o170000 != 0o100000:  # not a regular file: not ours
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return HELD
    except OSError:
        return None
    finally:
        os.close(fd)  # and with it our shared lock
    return FREE


def ensure_watcher(owner, state_dir: str | None = None) -> bool:
    """Make sure a watcher holds `owner`'s life lock (an identity.Owner: pid, start_time,
    boot_id, pidns), starting one if none does. True when one runs now (or, after
    defer_starts(), when this process holds the lock until start_deferred() hands it over);
    False when the owner cannot have one (no start time or namespace known) or its file cannot
    be made.

    Costs one open and one flock when a watcher runs already (once per process and owner),
    a posix_spawn when it starts one; never waits for the watcher itself."""
    key = life_key(owner.boot_id, owner.pidns, owner.pid, owner.start_time)
    if key is None:
        return False
    from sessionward.errors import SessionwardError

    try:
        directory = life_dir(state_dir)
        path = os.path.join(directory, key)
        if path in _watched:  # the file, not the key: one process may use two state directories
            return True
        if not os.path.isdir(directory):
            paths.ensure_private_dir(os.path.dirname(directory))
            paths.ensure_private_dir(directory)
        fd = _take_free_lock(path)
    except (OSError, SessionwardError):
        return False
    if fd is not None:
        if _deferred is not None:
            _deferred.append((fd, owner, path))  # held by this process meanwhile: it reads as alive
        elif not _start_or_drop(fd, owner, path):
            return False
    _watched.add(path)
    return True


def renew_on_shared_store(settings) -> None:
    """Watchers started from now on also renew their owner's lease on the shared store:
    `settings()` gives its (url, key prefix, lease TTL in ms), asked only when a watcher
    starts (the store calls this when it is chosen: it sits above this module, and most hooks
    start no watcher). None: no shared store. The URL goes in the watcher's environment,
    readable by its user alone, never on its command line."""
    global _shared_store
    _shared_store = settings


def _watch_env() -> dict:
    """The environment a watcher starts with: the shared store's settings, if any. OSError
    when they cannot be had (the store's own error, in words): the pair does not start, as
    when no process can be spared."""
    if _shared_store is None:
        return {}
    try:
        url, prefix, ttl_ms = _shared_store()
    except Exception as error:  # noqa: BLE001 - a ConfigError, say: the start fails as any other
        raise OSError(f"the shared store's settings for the watcher: {error}") from None
    return {"SESSIONWARD_WATCH_STORE": url, "SESSIONWARD_WATCH_PREFIX": prefix, "SESSIONWARD_WATCH_TTL_MS": str(ttl_ms)}


def defer_starts(on_failure=None) -> None:
    """From now until start_deferred(), ensure_watcher() takes a free life lock and keeps it in
    this process (the file reads as held at once, as it will once the pair holds it) instead
    of starting the pair. For a hook: the pair's interpreter then starts once the hook has
    answered, not beside the hook's own work (on a 2-core machine that contention added about
    12 ms to a first SessionStart under load). `on_failure(owner)`: called by start_deferred()
    for an owner whose pair could not start after all (owner.life is False again), since the
    records written meanwhile say that a watcher holds its lock: it should write them again."""
    global _deferred, _on_failure
    if _deferred is None:
        _deferred = []
    _on_failure = on_failure


def start_deferred(exiting: bool = False) -> None:
    """Start the pairs ensure_watcher() held back since defer_starts(), each taking its lock
    over from this process, and stop deferring. Never raises.

    exiting: the caller exits next and needs its standard streams no more (a hook that has
    answered): they are pointed at /dev/null, and each pair is forked rather than spawned
    (_fork_watcher), which returns at once."""
    global _deferred, _on_failure
    pending, on_failure = _deferred or [], _on_failure
    _deferred = _on_failure = None
    if exiting and pending:
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for std in (0, 1, 2):
                os.dup2(null, std)
            os.close(null)
        except OSError:
            exiting = False  # spawn, then: it sets the child's descriptors itself
    for fd, owner, path in pending:
        if _start_or_drop(fd, owner, path, _fork_watcher if exiting else _start_watcher):
            continue
        _watched.discard(path)
        owner.life = False
        if on_failure is not None:
            try:
                on_failure(owner)
            except Exception:  # noqa: BLE001 - the records stay as they are: see the module docstring
                pass


def forget(key: str | None, state_dir: str | None = None) -> bool:
    """Remove the life file `key` if nobody holds it (its owner was found dead). True if
    removed. Never raises."""
    if key is None:
        return False
    path = os.path.join(life_dir(state_dir), key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(fd, path):
            os.unlink(path)
            return True
    except OSError:
        pass
    finally:
        os.close(fd)
    return False


# -- internals --------------------------------------------------------------------------------


def _start_or_drop(fd: int, owner, path: str, start=None) -> bool:
    """Start the pair (with `start`, else _start_watcher) on the lock held by `fd`, or, when it
    cannot start, remove the file (a free file would read as "its owner exited"); `fd` closed
    either way."""
    try:
        (start or _start_watcher)(fd, owner, path)
    except OSError:  # no process to spare (EAGAIN), no interpreter: judged by its PID alone
        try:
            if _same_file(fd, path):
                os.unlink(path)
        except OSError:
            pass
        return False
    finally:
        os.close(fd)  # the watcher holds the lock now, or nobody does and the file is gone
    return True


def _take_free_lock(path: str) -> int | None:
    """An fd holding the exclusive lock of the life file at `path`, which now exists; None
    when a watcher holds it already."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            created = _create_locked(path)
            if created is not None:
                return created
            continue  # another process linked one first: look at it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not _only_probers_hold(fd):
                os.close(fd)
                return None  # an exclusive holder: the watchers
        if _same_file(fd, path):
            return fd  # a file whose watchers died (killed): ours to start again
        os.close(fd)  # removed or replaced meanwhile: look again


def _create_locked(path: str) -> int | None:
    """Create the life file already locked: a locked temp file linked into place, so the path
    never names an unlocked file (a prober would read that as a dead owner). None on EEXIST."""
    from sessionward._atomic import temp_name, unlink_quietly

    tmp = temp_name(path)
    # Read-only here and in _take_free_lock: flock needs no write access, and the watchers keep
    # this descriptor for the owner's whole life: one open for writing would keep the state
    # directory's filesystem from being remounted read-only ("busy") all that time.
    fd = os.open(tmp, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.link(tmp, path)
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        unlink_quietly(tmp)
    return fd


def _only_probers_hold(fd: int) -> bool:
    """The exclusive lock was refused: True (and the lock now ours) when only probers held it,
    each for microseconds with a shared lock; False when an exclusive holder (the watchers)
    has it. Without this, a probe at the wrong instant would stop a watcher from starting."""
    from sessionward._flock import flock_exclusive

    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while anyone holds it exclusively
    except BlockingIOError:
        return False
    return flock_exclusive(fd, 0.1)


def _same_file(fd: int, path: str) -> bool:
    try:
        held, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _start_watcher(fd: int, owner, path: str) -> None:
    """posix_spawn (vfork-fast: forking a hook's interpreter would cost a good part of the
    hook) of the watcher in its own session, with /dev/null on 0-2, the lock on 3 and no
    other descriptor: Claude Code waits for a hook's stdout and stderr to close, so a watcher
    keeping one would hang it. Not waited for: when the caller exits, init adopts it."""
    source = os.dup(fd)  # close-on-exec, and never 3 itself (dup2(3, 3) may keep the flag)
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                   (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2), (os.POSIX_SPAWN_DUP2, source, 3)]
        actions += [(os.POSIX_SPAWN_CLOSE, other) for other in _inherited_fds()]
        argv = _watcher_argv(owner, path)
        os.posix_spawn(argv[0], argv, _watch_env(), file_actions=actions, setsid=True)
    finally:
        os.close(source)


def _fork_watcher(fd: int, owner, path: str) -> None:
    """The watcher forked from a caller about to exit, whose 0-2 point at /dev/null already
    (start_deferred(exiting=True)): the child waits until the caller has exited, then takes its
    own session, the lock on 3, closes what it inherited and execs the script. So the hook
    ends before the pair's interpreter starts beside it on a busy 2-core machine, and does
    not wait for the exec as posix_spawn makes its caller do (0.1 ms median there, but 3.7 ms
    p90 and 11 ms at worst, against 0.2 ms, 0.7 at worst, for a fork of a hook's interpreter).
    Should the exec fail, the child runs the watcher itself (a larger process, but the owner
    stays watched). Never waited for: init adopts it. The child also pays the fsyncs the caller
    owes (_atomic.defer_syncs): its registration is made durable once it has answered."""
    argv = _watcher_argv(owner, path)
    env = _watch_env()  # here: a store whose settings cannot be had fails in the caller, not unseen
    inherited = _inherited_fds()
    parent_alive, parent_exits = os.pipe()  # close-on-exec; the write end closes when the caller exits
    from sessionward import _atomic

    if os.fork():
        os.close(parent_alive)
        _atomic.hand_over_syncs()  # the child pays them
        return
    try:  # the child: whatever happens, it never returns into the caller's code
        os.close(parent_exits)
        while os.read(parent_alive, 1):  # EOF once the caller has exited: not a CPU cycle taken from it
            pass
        os.close(parent_alive)
        _atomic.sync_deferred()  # the caller's registration made durable, after its answer
        os.setsid()
        if fd == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(fd, 3)  # inheritable; replaces anything the caller had on 3
        for other in inherited:
            try:
                os.close(other)
            except OSError:
                pass
        from sessionward.identity._watching import lower_priority  # in the child: no cost to the hook

        lower_priority()  # the interpreter's start too, not only what follows it
        os.environ.update(env)  # the shared store, if any (also for the fallback below)
        try:
            os.execv(argv[0], argv)
        except OSError:
            pass
        sys.path.insert(0, os.path.dirname(_WATCHER))
        from _watching import main

        main(argv[3:])
    finally:
        os._exit(0)


def _watcher_argv(owner, path: str) -> list:
    """python -I -S _watcher.py 3 PID START PATH STAMP (identity/_watching.py says what they are)."""
    # The status stamp lives beside the life directory: STATE/sessionward/status/stamp.
    from sessionward.status_stamp import DISABLED, STAMP_NAME, STATUS_DIR_NAME

    stamp = "" if DISABLED else os.path.join(os.path.dirname(os.path.dirname(path)), STATUS_DIR_NAME, STAMP_NAME)
    return [sys.executable, "-I", "-S", _WATCHER, "3", str(owner.pid), str(owner.start_time), path, stamp]


def _inherited_fds() -> list:
    """Descriptors above 3 that an exec would pass on (not close-on-exec): say, ones Claude
    Code left open in the hook. Python's own are close-on-exec."""
    import fcntl as _fcntl

    found = []
    for name in os.listdir("/proc/self/fd"):
        other = int(name)
        if other > 3:
            try:
                if not _fcntl.fcntl(other, _fcntl.F_GETFD) & _fcntl.FD_CLOEXEC:
                    found.append(other)
            except OSError:
                pass  # the listing's own descriptor, closed by now
    return found
