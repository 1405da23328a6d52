"""Notes: shared text files (a vault note, MEMORY.md, the resume file) written so that
concurrent sessions never lose or tear each other's saves.

Purpose: the origin's sessions overwrote each other's end-of-session notes ("last writer
wins"). Through sessionward, every write of a note is atomic (the one atomic writer: temp
file, fsync, rename, directory fsync: a reader or a crash sees the old note or the new one,
never a mix) and serialized with the other writers of the same note by a kernel flock:

  append_note(path, text)   under the note's lock: read it, add `text` (after a newline when
                            the note does not end with one), replace it. Two sessions
                            appending at once both land, in one order or the other.
  write_note(path, content, expect_sha256=None)
                            under the note's lock: replace it. With expect_sha256 (the sha256
                            of the content the writer started from, or ABSENT for "must not
                            exist yet"), refuse with NoteChanged when the note changed since:
                            a read-modify-write never silently drops another session's save.

Files: the note itself (a symlinked note is followed: its target is replaced, the link
stays; an existing note keeps its mode, a new one gets 0666 less the umask), and the note's
lock file STATE/sessionward/notes/<sha256 of its real path>.lock, permanent, never deleted.

What it does not protect: writers that do not go through sessionward (an editor, Obsidian
itself). expect_sha256 catches their changes when they land before our read; nothing can
catch one landing between our read and our rename.

Test-only: SESSIONWARD_TEST_DISABLE_LOCKS=1 (the named locks' switch) skips the note's lock
too, so a test can show that concurrent appends without it lose some.

Errors: NoteLockTimeout (a TimeoutError, exit 1) when another writer holds the note longer
than `timeout`; NoteChanged (exit 1); BadInput (exit 2) for a path that cannot be a note
(a directory, a missing parent directory); StateUnwritable (exit 3) when it cannot be written.
"""

import hashlib
import os
import stat
import time

from sessionward import paths
from sessionward._atomic import MAX_STATE_FILE_BYTES, read_file_nofollow, remove_stray_temps, write_file_atomic
from sessionward._flock import flock_exclusive, flock_holder, open_lock_file
from sessionward.errors import EXIT_CONFLICT, BadInput, Refused, SessionwardError, StateUnwritable

ABSENT = "absent"  # expect_sha256 value: the note must not exist yet
NOTE_LOCK_TIMEOUT_S = 10.0  # a note write holds its lock for milliseconds
MAX_NOTE_BYTES = MAX_STATE_FILE_BYTES  # what read_file_nofollow reads at most
NEW_NOTE_MODE = 0o666  # less the umask, as any editor would create it
_LOCK_DISABLED = os.environ.get("SESSIONWARD_TEST_DISABLE_LOCKS") == "1"  # read once: children inherit it


class NoteChanged(Refused):
    """write_note(expect_sha256=...) found the note changed since the writer read it."""

    code = "note_changed"

    def __init__(self, path: str, expected: str, found: str) -> None:
        now = "it does not exist" if found == ABSENT else f"its sha256 is now {found[:12]}"
        was = "to be absent" if expected == ABSENT else f"sha256 {expected[:12]}"
        super().__init__(
            f"{path} changed since it was read ({now}, expected {was})",
            "read it again and redo the change on its current content; nothing was written",
        )
        self.path = path
        self.expected = expected
        self.found = found


class NoteLockTimeout(SessionwardError, TimeoutError):
    """Another writer held the note's lock for longer than the timeout."""

    exit_code = EXIT_CONFLICT
    code = "note_lock_timeout"

    def __init__(self, path: str, waited_s: float, holder: tuple[str, str] | None = None) -> None:
        who, todo = holder or ("another process is writing it", "retry in a moment")
        super().__init__(f"note {path} still being written after {waited_s:.1f} s: {who}", todo)
        self.path = path
        self.waited_s = waited_s


class NoteWritten:
    """What a note write did: the note's real path, its new size and sha256, how long the
    lock was waited for, and how many bytes this call added or wrote."""

    __slots__ = ("path", "size", "sha256", "written", "waited_s", "created")

    def __init__(self, path: str, data: bytes, written: int, waited_s: float, created: bool) -> None:
        self.path = path
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.written = written
        self.waited_s = waited_s
        self.created = created

    def to_json(self) -> dict:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "written": self.written,
                "waited_s": round(self.waited_s, 3), "created": self.created}


def append_note(path: str, text: bytes | str, timeout: float = NOTE_LOCK_TIMEOUT_S) -> NoteWritten:
    """Append `text` to the note at `path` (created if missing), atomically, under its lock."""
    addition = _as_bytes(text)

    def change(current: bytes | None) -> bytes:
        current = current or b""
        separator = b"\n" if current and addition and not current.endswith(b"\n") else b""
        return current + separator + addition

    return _update(path, change, len(addition), timeout)


def write_note(path: str, content: bytes | str, expect_sha256: str | None = None,
               timeout: float = NOTE_LOCK_TIMEOUT_S) -> NoteWritten:
    """Replace the note at `path` with `content`, atomically, under its lock; with
    `expect_sha256`, only if the note is still what the writer read (else NoteChanged)."""
    data = _as_bytes(content)
    expected = _checked_digest(expect_sha256) if expect_sha256 is not None else None

    def change(current: bytes | None) -> bytes:
        if expected is not None:
            found = ABSENT if current is None else hashlib.sha256(current).hexdigest()
            if found != expected:
                raise NoteChanged(path, expected, found)
        return data

    return _update(path, change, len(data), timeout)


def note_lock_path(real_path: str) -> str:
    digest = hashlib.sha256(os.fsencode(real_path)).hexdigest()[:32]
    return os.path.join(paths.private_dir(), "notes", f"{digest}.lock")


# -- internals --------------------------------------------------------------------------------


def _encoded(text: str, what: str) -> bytes:
    """`text` as the bytes it came from: argv's undecodable bytes (surrogate escapes) survive;
    a lone surrogate no byte string decodes to is bad input."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        raise BadInput(f"{what} {text[:80]!r} holds a lone surrogate: it is not text a file can hold") from None


def _as_bytes(text: bytes | str) -> bytes:
    data = _encoded(text, "note text") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_NOTE_BYTES:
        raise BadInput(f"note text of {len(data)} bytes is larger than {MAX_NOTE_BYTES} bytes")
    return data


def _checked_digest(value: str) -> str:
    value = value.strip().lower()
    if value != ABSENT and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
        raise BadInput(f"invalid sha256 {value[:80]!r}: expected 64 hex digits, or '{ABSENT}'")
    return value


def _real_note_path(path: str) -> str:
    if not path or "\0" in path:
        raise BadInput("a note path must be a non-empty path")
    _encoded(path, "note path")
    real = os.path.realpath(os.path.abspath(os.path.expanduser(path)))
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        raise BadInput(f"cannot write note {path}: no directory {parent}")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise StateUnwritable(real, exc) from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"cannot write note {path}: it is not a regular file")
    return real


def _lock_note(real: str, timeout: float) -> tuple[int, float]:
    lock_path = note_lock_path(real)
    paths.ensure_private_dir()
    paths.ensure_private_dir(os.path.dirname(lock_path))  # 0700, ours, not a symlink
    fd = open_lock_file(lock_path)
    started = time.monotonic()
    if not _LOCK_DISABLED and not flock_exclusive(fd, timeout):
        try:
            holder = flock_holder(fd)
        finally:
            os.close(fd)
        raise NoteLockTimeout(real, time.monotonic() - started, holder)
    return fd, time.monotonic() - started


def _update(path: str, change, written: int, timeout: float) -> NoteWritten:
    real = _real_note_path(path)
    fd, waited = _lock_note(real, timeout)
    try:
        try:
            current = read_file_nofollow(real)
            mode = stat.S_IMODE(os.stat(real).st_mode) if current is not None else NEW_NOTE_MODE
        except ValueError:
            raise BadInput(f"note {real} is larger than {MAX_NOTE_BYTES} bytes") from None
        except SessionwardError:
            raise  # UnsafeState: something else than a file appeared there meanwhile
        except OSError as exc:
            raise StateUnwritable(real, exc) from None
        data = change(current)
        if len(data) > MAX_NOTE_BYTES:
            raise BadInput(f"note {real} would grow past {MAX_NOTE_BYTES} bytes")
        if data != current:
            # An existing note keeps its mode exactly; a new one gets the umask's say.
            write_file_atomic(real, data, mode=mode, exact_mode=current is not None)
            remove_stray_temps(real)  # a writer killed mid-write left its temp beside the note
        return NoteWritten(real, data, written, waited, current is None)
    finally:
        os.close(fd)
