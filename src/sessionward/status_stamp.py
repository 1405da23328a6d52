"""The status stamp: one token that changes whenever something a status line shows changes.

Purpose: Claude Code re-runs every session's status line every few seconds. Rendering the row
takes a Python start (tens of milliseconds of CPU); the shell fast path
(install/status_line.sh) prints the row it cached instead, as long as nothing it shows has
changed since. "Nothing changed" is this token, compared by content (a generation token,
not an mtime: a file's mtime has the granularity of a clock tick, so a change in the tick
the cache was written would go unseen).

Who calls touch(), after their change is on disk (a renderer reads the stamp before it reads
anything else, so a change made after that read always leaves a stamp it has not seen):
  - the store, when a write adds or removes a session or changes where one works
    (store.local: heartbeats alone change nothing shown);
  - the locks, when a lock is taken, released or taken over, and when a waiter joins or
    leaves a queue (sessionward._lockfile, sessionward.locks);
  - the watcher of each owner (identity/_watching.py), when that owner dies: it runs
    without sessionward on its path, so it writes the stamp itself, the same way;
  - PreToolUse, when it asks the person about a conflict (note_asked()).
What it does not see: a hand-made change of those files (a `rm ~/.claude/end.lock` is
covered by the fast path itself, which compares end.lock's content), and anything that
passes with time alone (the row's durations): the cache carries its own expiry for those.

Files, under STATE/sessionward/status/ (0700, created on first use):
  stamp          the token: "<ns clock, 16 hex digits>-<pid, 10 digits>", overwritten in
                 place (write_token says why that is safe), never fsynced (losing it in a
                 crash only costs a re-render)
  <session>.row  one session's cached row (hooks/status_line.py writes, the fast path reads)
  <session>.ask  the conflict PreToolUse last asked that session's person about
  <session>.seen what that session's last heartbeat found (sessionward.heartbeat_memo)

touch() never raises: a status line is worth less than the write that called it.

Test-only: SESSIONWARD_TEST_DISABLE_STATUS_STAMP=1 turns touch() (and the watchers' renewal)
into a no-op: the negative control of the status line's tests.
"""

import os
import time

from sessionward import paths

STATUS_DIR_NAME = "status"
# Test-only: touch() does nothing, so tests can show that without the stamp a cached row
# goes stale (the negative control). Read once: children inherit it.
DISABLED = os.environ.get("SESSIONWARD_TEST_DISABLE_STATUS_STAMP") == "1"
STAMP_NAME = "stamp"
ROW_SUFFIX = ".row"
ASK_SUFFIX = ".ask"


def status_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, STATUS_DIR_NAME)


def stamp_path(state_dir: str | None = None) -> str:
    return os.path.join(status_dir(state_dir), STAMP_NAME)


def new_token() -> str:
    """Always TOKEN_LENGTH characters (write_token overwrites in place, never shrinking)."""
    return f"{time.time_ns():016x}-{os.getpid():010d}"


TOKEN_LENGTH = 27


def touch(state_dir: str | None = None) -> None:
    """Give the stamp a new token: every cached status row is stale from now on."""
    if not DISABLED:
        write_token(stamp_path(state_dir))


def write_token(path: str) -> None:
    """Overwrite the token in the file at `path` in place (identity/_watching.py does the same
    in its own few lines: it cannot import sessionward). In place, not a temp file renamed
    over it: a rename over a file costs ext4 a data flush (about half a millisecond, on every
    lock transition). A reader meeting the write half done sees the new token's start on the
    old one's end: a value that matches no cached row (one extra render), or the old token
    unchanged (the same as reading just before the write). Tokens all have one length, so
    nothing of an older one is left behind."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = open_creating_dir(path, flags)
        try:
            os.pwrite(fd, (new_token() + "\n").encode(), 0)
        finally:
            os.close(fd)
    except OSError:
        pass


def open_creating_dir(path: str, flags: int) -> int:
    """os.open(path, flags, 0o600), making its directory (0700: the status or activity directory) on first use."""
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        _make_status_dir(os.path.dirname(path))
        return os.open(path, flags, 0o600)


def replace_small_file(path: str, data: bytes) -> bool:
    """Write `data` to a temp file beside `path` and rename it over `path` (readers see the
    old content or the new, whole); the directory is made (0700) on first use. No fsync:
    everything here can be rebuilt. False when it could not be written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = open_creating_dir(tmp, flags)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def _make_status_dir(directory: str) -> None:
    """STATE/sessionward/status, 0700, under a private directory vetted as every state file's."""
    from sessionward.errors import SessionwardError

    try:
        paths.ensure_private_dir(os.path.dirname(directory))
    except SessionwardError as exc:
        raise OSError(str(exc)) from None
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass


def read_token(state_dir: str | None = None) -> str:
    """The stamp's token now ("" when there is none yet)."""
    return read_first_line(stamp_path(state_dir))


def read_first_line(path: str) -> str:
    """The first line of a small file without its line end, as the shell's `read -r` gives it
    ("" when the file is missing or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        data = os.read(fd, 4096)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")


def note_asked(session_id: str | None, summary: str, state_dir: str | None = None) -> None:
    """Remember that PreToolUse just asked this session's person about `summary` (one line),
    for its status line to show; then touch the stamp. Never raises."""
    if not session_id or "/" in session_id or session_id.startswith("."):
        return
    path = os.path.join(status_dir(state_dir), session_id + ASK_SUFFIX)
    line = " ".join(summary.split())[:200]
    if replace_small_file(path, f"{time.time():.3f} {line}\n".encode("utf-8", "surrogateescape")):
        touch(state_dir)


def read_asked(session_id: str, state_dir: str | None = None) -> tuple[float, str] | None:
    """(when, summary) of the last ask noted for this session, or None."""
    line = read_first_line(os.path.join(status_dir(state_dir), session_id + ASK_SUFFIX))
    when, _, summary = line.partition(" ")
    try:
        return float(when), summary
    except ValueError:
        return None
