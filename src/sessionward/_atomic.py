"""The one atomic writer, and its reading counterpart. Every state file goes through here.

write_file_atomic(path, data): a temp file in the same directory (O_EXCL, 0600, never a
followed symlink), written and fsynced, `os.replace`d over the target, then the directory
fsynced. A reader sees the old bytes or the new ones, never a mix; after a crash at any step
the target is either untouched or wholly replaced. A crash before the rename can leave a
stray `.NAME.PID.RANDOM.tmp` beside the target: it is never read, and remove_stray_temps
(called after writes, under the writer's lock) deletes those whose writer is gone.

read_file_nofollow(path): the bytes of a regular file, refusing symlinks and anything that
is not a regular file. Returns None when the file does not exist.

defer_syncs() / sync_deferred() / sync_after_exit(): a hook's durable writes made durable after
it answered (the fsyncs were most of a registering hook's time on a busy machine); see
defer_syncs.

read_capped(fd, cap): everything up to EOF, or cap + 1 bytes when there is more (stdin of a
hook, a note's text). Both read in chunks: a buffer the size of the cap is never allocated
up front (read(64 MiB) fails under a memory limit, whatever the input's real size).
"""

import os
import stat

from sessionward.errors import StateUnwritable, UnsafeState

MAX_STATE_FILE_BYTES = 64 * 1024 * 1024  # beyond this a state file is hostile, not ours
READ_CHUNK_BYTES = 64 * 1024  # what one read asks for: a hook's whole stdin, most often

# Test-only fault injection (issue 5, crash consistency). Every step of every write path
# (this writer's, the lock files', the store's keep-aside) calls crash_point(STEP); when
# SESSIONWARD_TEST_CRASH_AT names that step the process exits with os._exit(91) right after it:
#   STEP      at its first hit in this process
#   STEP@N    at its Nth hit (a lock acquire writes the annex and the lock file; a claim write
#             or a register with a sweep may write twice)
#   trace:F   never exit: append each step hit to file F, one per line (how tests enumerate
#             the crash points of an operation)
# Read once, at import: child processes inherit it, and an unarmed process pays one `is None`.
_deferred_syncs: list | None = None  # after defer_syncs(): paths whose fsyncs sync_deferred() owes

_CRASH_ENV = "SESSIONWARD_TEST_CRASH_AT"
_CRASH_ARMED = os.environ.get(_CRASH_ENV) or None
CRASH_EXIT_STATUS = 91
WRITE_STEPS = ("temp-written", "temp-fsynced", "replaced", "dir-fsynced")
# The other write paths' steps (sessionward._lockfile, sessionward.locks, store.local).
LOCK_STEPS = (
    "annex-written",   # NAME.holder.json rewritten in place (before NAME.lock names its PID)
    "annex-truncated",  # and cut to its length when the old one was longer
    "lock-linked",     # a free NAME.lock hard-linked to the temp file holding the PID
    "lock-removed",    # NAME.lock unlinked (release, clean-up of an orphan)
    "orphan-kept-aside",  # a NAME.lock holding no PID renamed to NAME.lock.corrupt-...
    "queue-written",   # the waiter queue written over the guard file's start
    "queue-truncated",  # and cut to its length
)
STORE_STEPS = ("corrupt-linked", "corrupt-kept")  # a corrupt registry hard-linked aside, then fsynced
CRASH_STEPS = WRITE_STEPS + LOCK_STEPS + STORE_STEPS
_crash_hits: dict = {}  # step -> hits in this process, counted only while armed


def crash_point(step: str) -> None:
    """Test-only: a named point of a write path where a crash can be injected (see above)."""
    if _CRASH_ARMED is not None:
        _crash_hit(_CRASH_ARMED, step)


def _crash_hit(armed: str, step: str) -> None:
    hits = _crash_hits[step] = _crash_hits.get(step, 0) + 1
    if armed.startswith("trace:"):
        with open(armed[len("trace:") :], "a") as trace:
            trace.write(step + "\n")
        return
    wanted, _, nth = armed.partition("@")
    if wanted == step and hits == (int(nth) if nth.isdigit() else 1):
        os._exit(CRASH_EXIT_STATUS)


def temp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def write_file_atomic(path: str, data: bytes, mode: int = 0o600, durable: bool = True,
                      exact_mode: bool = False, dir_fd: int | None = None) -> None:
    """Replace `path` with `data` atomically, and durably unless durable=False.

    durable=False skips both fsyncs: readers still see old or new bytes, never a mix, but a
    power loss may undo the write. Right for lock files, whose holders a reboot kills anyway.
    The new file gets `mode` less the umask, or `mode` itself with exact_mode=True (a user's
    file keeping the mode it had).

    dir_fd: an open directory (O_RDONLY) in which basename(path) is written, the temp file
    created and the rename done, nothing looked up by path again (a user's file whose path
    was resolved by sessionward._userpath); `path` then only names it in errors.
    """
    name = path if dir_fd is None else os.path.basename(path)
    refuse_unsafe_target(name, dir_fd, shown=path)
    tmp = temp_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
    except OSError as exc:
        raise unusable_path_error(path, exc) from None
    try:
        try:
            if exact_mode:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            crash_point("temp-written")
            if durable and dir_fd is None and _deferred_syncs is not None:
                _deferred_syncs.append(path)
                durable = False  # made durable by sync_deferred(), after the answer
            if durable:
                os.fsync(fd)
            crash_point("temp-fsynced")
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        unlink_quietly(tmp, dir_fd)
        raise StateUnwritable(path, exc) from None
    crash_point("replaced")
    if durable:
        if dir_fd is None:
            fsync_directory(os.path.dirname(path))
        else:
            _fsync_quietly(dir_fd)
    crash_point("dir-fsynced")


def kept_aside_name(path: str) -> str:
    """A new name beside `path` for a corrupt copy: PATH.corrupt-UTCSTAMP-RAND."""
    import time

    return f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(4).hex()}"


def keep_aside(path: str) -> str:
    """Keep the corrupt file at `path` under a new name (kept_aside_name), never overwriting a
    kept one; returns that name. A hard link, not a rename: `path` keeps its (corrupt)
    content until the caller replaces it atomically, so a crash in between loses nothing and
    readers never see the file missing."""
    while True:
        kept_as = kept_aside_name(path)
        try:
            os.link(path, kept_as)  # EEXIST: never overwrites a kept file
            crash_point("corrupt-linked")
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise StateUnwritable(path, exc) from None
    fsync_directory(os.path.dirname(path))
    crash_point("corrupt-kept")
    return kept_as


def defer_syncs() -> None:
    """From now until sync_deferred(), durable writes by path are atomic at once and durable
    later: their fsyncs (the file's, then its directory's) are owed, not done. For a hook,
    which Claude Code waits for: it answers, then exits, and a child that outlives it pays
    them (the watcher pair's, identity.life, or else one forked for that: sync_after_exit). Readers
    see the new bytes at once either way; only a crash of the kernel in those milliseconds
    could undo the write (or, where a filesystem does not flush data on rename as ext4 does,
    leave the file empty: kept aside as corrupt when next read)."""
    global _deferred_syncs
    if _deferred_syncs is None:
        _deferred_syncs = []


def hand_over_syncs() -> None:
    """Stop deferring, without syncing: a child forked just now owes the fsyncs (it calls
    sync_deferred once this process has exited). Later writes here are durable at once."""
    global _deferred_syncs
    _deferred_syncs = None


def sync_deferred() -> None:
    """Pay the fsyncs owed since defer_syncs(), and stop deferring. Never raises: a file
    replaced since by another writer is that writer's to sync, and fsyncing it is harmless."""
    global _deferred_syncs
    owed, _deferred_syncs = _deferred_syncs or [], None
    for path in dict.fromkeys(owed):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            _fsync_quietly(fd)
        finally:
            os.close(fd)
    for directory in dict.fromkeys(os.path.dirname(path) for path in owed):
        fsync_directory(directory)


def sync_after_exit() -> None:
    """Pay the fsyncs owed since defer_syncs() in a child forked now, once this process has
    exited, and stop deferring. For a hook that has answered and exits next (call it last):
    Claude Code waits for the hook's process and its pipes, so 0-2 are first pointed at
    /dev/null and the child holds none of them; a fork costs the hook about 0.2 ms, the two
    fsyncs 1 ms on a quiet disk and 4 to 13 ms on a busy one. Where the fork fails, they are
    paid here and now. Nothing is forked when none are owed."""
    if not _deferred_syncs:
        sync_deferred()
        return
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.close(null)
        parent_alive, parent_exits = os.pipe()  # close-on-exec; the write end closes when we exit
        child = os.fork()
    except OSError:
        sync_deferred()
        return
    if child:
        os.close(parent_alive)
        hand_over_syncs()  # the child pays them; never waited for: init adopts it
        return
    try:  # the child: whatever happens, it never returns into the caller's code
        os.close(parent_exits)
        while os.read(parent_alive, 1):  # EOF once the caller has exited: no CPU taken from it
            pass
        sync_deferred()
    finally:
        os._exit(0)


def fsync_directory(directory: str) -> None:
    """Make a rename or unlink in `directory` durable. Best effort where unsupported."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        _fsync_quietly(fd)
    finally:
        os.close(fd)


def _fsync_quietly(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself still happened


def refuse_unsafe_target(path: str, dir_fd: int | None = None, shown: str | None = None) -> None:
    """Raise UnsafeState if `path` (in `dir_fd` when given; `shown` names it in messages)
    exists as anything but a regular file (a symlink above all)."""
    shown = shown or path
    try:
        info = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateUnwritable(shown, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeState(shown, "it is a symlink", f"remove the link: rm {shown}")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeState(shown, "it is not a regular file", f"move it away: mv {shown} {shown}.bad")


def unusable_path_error(path: str, exc: OSError) -> Exception:
    """The error to raise for an OSError met at a state path: for ENOTDIR, an UnsafeState
    naming the ancestor that is not a directory (SESSIONWARD_HOME set to a file, say) and
    how to fix it; otherwise StateUnwritable."""
    if exc.errno == 20:  # ENOTDIR
        parent = os.path.dirname(path)
        while parent and parent != os.path.dirname(parent):
            try:
                if not stat.S_ISDIR(os.stat(parent).st_mode):
                    return UnsafeState(parent, "it is not a directory", "move it away or set SESSIONWARD_HOME")
            except OSError:
                pass
            parent = os.path.dirname(parent)
    return StateUnwritable(path, exc)


def read_file_nofollow(path: str, must_own: bool = False) -> bytes | None:
    """Return the file's bytes, or None when it does not exist.

    must_own: refuse (UnsafeState) a file owned by another user: a state file in the user's
    private directory that is not the user's own was put there by someone else (promise 7).

    Raises UnsafeState for a symlink or a non-regular file (a FIFO would block a reader
    forever; O_NONBLOCK keeps the open from waiting on one) and ValueError when the file
    is larger than any state file sessionward writes.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}") from None
        if isinstance(exc, IsADirectoryError):
            raise UnsafeState(path, "it is a directory", f"move it away: mv {path} {path}.bad") from None
        raise unusable_path_error(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeState(path, "it is not a regular file", f"move it away: mv {path} {path}.bad")
        if must_own and info.st_uid != os.geteuid():
            raise UnsafeState(path, f"it belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})",
                              f"if its content is yours: chown {os.geteuid()} {path}; else remove it")
        if info.st_size > MAX_STATE_FILE_BYTES:
            raise ValueError(f"{info.st_size} bytes, larger than any state file")
        data = read_capped(fd, MAX_STATE_FILE_BYTES)
        if len(data) > MAX_STATE_FILE_BYTES:  # it grew since fstat
            raise ValueError(f"more than {MAX_STATE_FILE_BYTES} bytes, larger than any state file")
        return data
    finally:
        os.close(fd)


def read_capped(fd: int, cap: int) -> bytes:
    """The bytes readable from `fd` up to EOF, or its first cap + 1 bytes when there are more
    (the caller refuses those). In chunks, never a cap-sized buffer up front. OSError passes."""
    chunks = []
    total = 0
    while total <= cap:
        chunk = os.read(fd, min(READ_CHUNK_BYTES, cap + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def unlink_if_present(path: str) -> bool:
    """Remove `path`: True when it was removed, False when it was already gone; any other
    failure is StateUnwritable (one line, exit 3)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateUnwritable(path, exc) from None
    return True


def unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass


def remove_stray_temps(path: str, dir_fd: int | None = None) -> int:
    """Delete `.NAME.PID.RANDOM.tmp` files left beside `path` by writers whose process is
    gone, and those of files named NAME.SUFFIX (a backup `settings.json.bak-STAMP`: its
    writer's temp was never removed). Call under the lock that serializes writers of `path`.
    With dir_fd, `path`'s directory is that open directory (see write_file_atomic).
    Returns how many went."""
    head, tail = os.path.split(path)
    prefix = f".{tail}."
    removed = 0
    try:
        listed = os.listdir(dir_fd if dir_fd is not None else head or ".")
        entries = [e for e in listed if e.startswith(prefix) and e.endswith(".tmp")]
    except OSError:
        return 0
    for entry in entries:
        parts = entry[len(prefix) :].split(".")
        pid_text = parts[-3] if len(parts) >= 3 else ""
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # its writer lives: maybe still writing
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            os.unlink(entry if dir_fd is not None else os.path.join(head, entry), dir_fd=dir_fd)
            removed += 1
        except OSError:
            pass
    return removed


def same_file(fd: int, path: str) -> bool:
    """Is the open `fd` still the file at `path` (same device and inode)?"""
    try:
        opened, current = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)
