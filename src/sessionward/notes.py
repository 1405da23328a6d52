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
  append_note_from_file(path, text_file), write_note_from_file(path, text_file, ...)
                            the same, the text read from a private file of the caller's (see
                            sessionward.drafts: the way to keep it off every command line);
                            a draft is removed once the note holds its text, and kept, named in
                            the error, when the write fails.

Which file is written: the path is opened the way the kernel opens it (sessionward._userpath),
never resolved in user space. A symlinked note is followed: its target is replaced, the link
stays. A symlink another user owns in a sticky world-writable directory (a shared 1777 notes
directory) is refused, as the kernel's fs.protected_symlinks=1 would, even where that
setting is 0; a dangling symlink is refused (creating its target would create a file the
path does not name yet). Only a file the kernel lets the caller open for reading and writing
through the given path is replaced, and only if it is still the file at the end of the walk
(same device and inode); a new note is created only in the directory the path names. An
existing note keeps its mode, a new one gets 0666 less the umask. In a sticky directory a
note owned by someone else cannot be replaced (the kernel refuses the rename): Refused.

The lock: the note fence of the store in use (sessionward.store.note_fence), taken for one
write, after the path is walked and before the note is read. On the local store it is an
exclusive flock on the note's directory itself (store.local_notes says why the directory:
every writer of the note, whatever its state directory or Unix user, opens that same inode,
and it adds no file to the vault). On the shared store it is a lease on the note plus a
fencing number, checked right before the rename, and the note is replaced only if it is
not an older version than the last fenced write left (store.redis_notes): a writer on
another machine that paused past its lease, or a synced vault that lags, cannot overwrite
a newer note. Writes of notes last milliseconds, so one lock per note (per directory
locally) costs nothing noticeable. A directory the caller cannot open for reading is an
environment error (exit 3). What the lock does not cover: writers that do not go through
sessionward (an editor, Obsidian itself) take no lock. expect_sha256 catches their changes
when they land before our read; nothing can catch one landing between our read and our
rename.

Errors: NoteLockTimeout (a TimeoutError, exit 1) when another writer holds the note's
lock longer than `timeout`; NoteChanged (exit 1); on the shared store NoteFenced, NoteLagging,
LeaseLost (exit 1) and StoreStateLost, StoreUnavailable (exit 3); Refused (exit 1) for a foreign or
dangling symlink, a note the sticky bit keeps us from replacing, or a path that kept
changing under us; BadInput (exit 2) for a path that cannot be a note (a directory, a
missing parent directory, a loop of links) and for a text file that may not carry the text
(sessionward.drafts); StateUnwritable (exit 3) when it cannot be opened or written (no
write permission, an unreadable directory, a full disk).
"""

import errno
import hashlib
import os
import stat

from sessionward import drafts, store
from sessionward._atomic import MAX_STATE_FILE_BYTES, remove_stray_temps, write_file_atomic
from sessionward._userpath import Target, open_as_given, resolve_for_replace, same_directory
from sessionward.errors import ABSENT, BadInput, NoteChanged, NoteLockTimeout, Refused, StateUnwritable  # noqa: F401 - NoteLockTimeout: raised by the fence, part of this API

NOTE_LOCK_TIMEOUT_S = 10.0  # a note write holds its lock for milliseconds
MAX_NOTE_BYTES = MAX_STATE_FILE_BYTES  # the largest note read or written
RESOLVE_ATTEMPTS = 5  # walks of the path when a link or the file changes between walk and lock
NEW_NOTE_MODE = 0o666  # less the umask, as any editor would create it


class NoteWritten:
    """What a note write did: the note's real path, its new size and sha256, how long the
    lock was waited for, how many bytes this call added or wrote, and the text file it came
    from (with whether it was removed)."""

    __slots__ = ("path", "size", "sha256", "written", "waited_s", "created", "text_file")

    def __init__(self, path: str, data: bytes, written: int, waited_s: float, created: bool) -> None:
        self.path = path
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.written = written
        self.waited_s = waited_s
        self.created = created
        self.text_file = None  # {"path", "draft", "removed"} when the text came from a file

    def to_json(self) -> dict:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "written": self.written,
                "waited_s": round(self.waited_s, 3), "created": self.created, "text_file": self.text_file}


def append_note(path: str, text: bytes | str, timeout: float = NOTE_LOCK_TIMEOUT_S) -> NoteWritten:
    """Append `text` to the note at `path` (created if missing), atomically, under its lock."""
    addition = _as_bytes(text)

    def change(current: bytes | None) -> bytes:
        current = current or b""
        separator = b"\n" if current and addition and not current.endswith(b"\n") else b""
        return current + separator + addition

    return _logged(_update(path, change, len(addition), timeout), "append")


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

    return _logged(_update(path, change, len(data), timeout), "write")


def append_note_from_file(path: str, text_file: str, timeout: float = NOTE_LOCK_TIMEOUT_S) -> NoteWritten:
    """append_note() with the text of `text_file` (sessionward.drafts' rules): removed once
    the note holds it if it is a draft, kept when the write fails."""
    return _from_file(text_file, lambda text: append_note(path, text, timeout))


def write_note_from_file(path: str, text_file: str, expect_sha256: str | None = None,
                         timeout: float = NOTE_LOCK_TIMEOUT_S) -> NoteWritten:
    """write_note() with the content of `text_file`, as append_note_from_file()."""
    return _from_file(text_file, lambda content: write_note(path, content, expect_sha256, timeout))


# -- internals --------------------------------------------------------------------------------


def _logged(written: NoteWritten, how: str) -> NoteWritten:
    """Record the write in the event log (sessionward.eventlog), as the calling session's."""
    from sessionward import eventlog
    from sessionward.identity import resolve_session_id

    eventlog.append("note.written", resolve_session_id(), path=written.path, how=how, bytes=written.written)
    return written


def _from_file(text_file: str, write) -> NoteWritten:
    written, source = drafts.deliver(text_file, write, MAX_NOTE_BYTES)
    written.text_file = source.to_json()
    return written


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


def _checked_path(path: str) -> str:
    if not path or "\0" in path:
        raise BadInput("a note path must be a non-empty path")
    _encoded(path, "note path")
    return os.path.expanduser(path)


def _update(path: str, change, written: int, timeout: float) -> NoteWritten:
    given = _checked_path(path)
    for _ in range(RESOLVE_ATTEMPTS):
        target = resolve_for_replace(given)
        try:
            fence = store.note_fence(target, timeout)
            try:
                opened = _open_note(given, target)
                try:
                    # What the kernel opened through the given path must be what sits at the
                    # target now (or both absent, in the directory the path names): else a link
                    # or the file changed between our walk and the lock, and we walk again.
                    if target.holds(opened) and (opened is not None or same_directory(os.path.dirname(given), target.dir_fd)):
                        return _replace(target, opened, change, written, fence)
                finally:
                    if opened is not None:
                        os.close(opened)
            finally:
                fence.close()
        finally:
            os.close(target.dir_fd)  # drops the flock
    raise Refused(f"note {given} kept changing while being resolved ({RESOLVE_ATTEMPTS} tries)", "retry in a moment")


def _open_note(given: str, target: Target) -> int | None:
    try:
        return open_as_given(given)
    except OSError as exc:
        raise StateUnwritable(target.real, exc) from None


def _replace(target: Target, opened: int | None, change, written: int, fence) -> NoteWritten:
    current, mode = _read(target, opened)
    data = change(current)
    if len(data) > MAX_NOTE_BYTES:
        raise BadInput(f"note {target.real} would grow past {MAX_NOTE_BYTES} bytes")
    if data != current:
        fence.check(current, data)  # last: a fenced-out writer learns it before touching the note
        try:
            # An existing note keeps its mode exactly; a new one gets the umask's say.
            write_file_atomic(target.real, data, mode=mode, exact_mode=current is not None, dir_fd=target.dir_fd)
        except StateUnwritable as exc:
            if exc.errno == errno.EPERM and current is not None:
                raise _not_replaceable(target, opened) from None  # type: ignore[arg-type]
            raise
        fence.written(data)
        remove_stray_temps(target.real, target.dir_fd)  # a writer killed mid-write left its temp
    return NoteWritten(target.real, data, written, fence.waited_s, current is None)


def _read(target: Target, opened: int | None) -> tuple[bytes | None, int]:
    """The note's bytes (None when it does not exist yet) and the mode it is to have, read
    from the very file the kernel opened."""
    if opened is None:
        return None, NEW_NOTE_MODE
    info = os.fstat(opened)
    if info.st_size > MAX_NOTE_BYTES:
        raise BadInput(f"note {target.real} is larger than {MAX_NOTE_BYTES} bytes")
    chunks, size = [], 0
    try:
        while True:
            chunk = os.read(opened, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_NOTE_BYTES:  # grown meanwhile by a writer that is not sessionward
                raise BadInput(f"note {target.real} is larger than {MAX_NOTE_BYTES} bytes")
    except OSError as exc:
        raise StateUnwritable(target.real, exc) from None
    return b"".join(chunks), stat.S_IMODE(info.st_mode)


def _not_replaceable(target: Target, opened: int) -> Refused:
    owner = os.fstat(opened).st_uid
    return Refused(
        f"cannot replace note {target.real}: it belongs to uid {owner} and its directory is sticky "
        f"(only the file's owner may replace it there)",
        "ask its owner to write it, or write your own note beside it",
    )
