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
free. The watcher (identity/_watcher.py, a pair of processes sharing one open file
description) is started detached, with every descriptor but the lock closed, so Claude Code
never waits on a hook's pipes. At most one pair per owner: a second ensure_watcher() finds
the lock held and starts nothing.

What it does not cover: another kernel (a VM, another machine, Docker Desktop's VirtioFS,
where flock itself may not be shared): that owner's liveness is unknown, never guessed from
age (see identity.process). Killing both processes of a pair by hand makes their owner look
dead; its next hook re-registers it.

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
    boot_id, pidns), starting one if none does. True when one runs now; False when the owner
    cannot have one (no start time or namespace known) or its file cannot be made.

    Costs one open and one flock when a watcher runs already (once per process and owner),
    a fork when it starts one; never waits for the watcher itself."""
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
        try:
            _start_watcher(fd, owner, path)
        finally:
            os.close(fd)
    _watched.add(path)
    return True


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


def _take_free_lock(path: str) -> int | None:
    """An fd holding the exclusive lock of the life file at `path`, which now exists; None
    when a watcher holds it already."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = _create_locked(path)
            if fd is not None:
                return fd
            continue  # another process linked one first: look at it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
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


def _same_file(fd: int, path: str) -> bool:
    try:
        held, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _start_watcher(fd: int, owner, path: str) -> None:
    """Double fork: the watcher is nobody's child (no zombie for the caller to reap), in its
    own session (no terminal's signals), with /dev/null on 0-2 and no other descriptor than
    the lock: Claude Code waits for a hook's stdout and stderr to close."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for target in (0, 1, 2):
                    os.dup2(null, target)
                keep = os.dup2(fd, 3, inheritable=True) if fd != 3 else fd
                if fd == 3:
                    os.set_inheritable(3, True)
                os.closerange(4, _max_fd())
                os.execv(sys.executable, [sys.executable, "-I", "-S", _WATCHER, str(keep), str(owner.pid),
                                          str(owner.start_time), path])
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 65536
