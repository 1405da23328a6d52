"""The event log: an append-only history of what sessions did, for `sessionward log`.

Purpose: answer "what happened?" after the fact: which session started, ended or died (and
which liveness check found it dead), who took, waited for, released or took over a lock,
which edit or git command a guard asked about or denied and whether the person allowed it,
which note was written. The registry and the locks say what is true now; this says how it
came to be.

What it does not promise: completeness. Writing an event never fails the operation it
records (append() never raises): a full disk or an unwritable state directory loses events,
never a hook's answer or a lock. The log is not fsynced (a power cut may lose the last
events; a `kill -9` cannot, the page cache outlives the process).

Files, under STATE/sessionward/log/ (0700, made on first use):
  events.jsonl        the current log: one JSON object per line (see EVENTS), oldest first
  events.N.jsonl      older logs, N = 1 (newest) .. KEEP; the oldest goes at each rotation
  rotate.lock         permanent; its flock is held while one process rotates
Record: {"at": epoch seconds, "event": NAME, "session": id, "project": name, ...}; the
other keys depend on the event (EVENTS). `at` and `event` come first in every line.
`at` is when it happened, which for all but two events is when it was written. The two are
edit/git.allowed and .not_run, what the person answered to a guard's ask: Claude Code runs no
hook when its person refuses, so the answer is learnt at the session's next event (the tool's
PostToolUse, else the next prompt or the session's end, maybe minutes later), and is then
dated by the tool's result in Claude Code's transcript (sessionward.transcript: the moment
the person refused, or the tool finished), with `learnt_at` beside it; without that result
(no transcript, or none written) `at` is that next event, and `how` says "no result when the
turn ended". A line may therefore be appended after lines of later `at`: readers sort by `at`.

Why a line is never torn and never interleaved with another: each append is one write(2)
of one whole line on a descriptor opened with O_APPEND. Linux holds the file's inode lock
for the whole of such a write to a local file, so concurrent appends land one after the
other, never mixed. Each line is kept under PIPE_BUF (MAX_LINE_BYTES < 4096): the bound
POSIX gives for writes that must not be split, so the write is one small copy (no
partial write short of a full disk). Two cases could still leave a line cut: a full disk
mid-write, and a SIGKILL landing exactly where the kernel's copy crosses a page boundary
(it checks for fatal signals between pages). A cut line has no newline, so the next
writer's line is glued after it: read_events() then finds that line by its start ('{"at":')
and keeps it; only the cut one is lost. Not on NFS, whose O_APPEND is not atomic.

Rotation, by size: after its write, a writer that sees the file past max_bytes() rotates,
under rotate.lock (taken without waiting: if another process is rotating, it is done for
both): it checks the size again by name, then renames events.(N-1) to events.N ... and
events.jsonl to events.1.jsonl. A writer that opened events.jsonl before the rename writes
into the same inode, now events.1.jsonl: its line is kept, never lost; the next open
creates a new events.jsonl. Readers may see a rotation half done: read_events() merges all
files by time.

Hot path: importing this module costs `os` and `time` (held already) and _jsoncodec; an
append is one open, one write, one fstat and one close. Hooks append only when something
happened (a session started, a guard answered, a lock moved), never on a quiet tool call.

SESSIONWARD_TEST_LOG_MAX_BYTES (tests only) lowers the rotation size, so tests rotate often.
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, paths

LOG_DIR_NAME = "log"
CURRENT = "events.jsonl"
ROTATE_LOCK = "rotate.lock"
MAX_BYTES = 1024 * 1024  # rotate past this size
KEEP = 5  # older files kept: up to (KEEP + 1) x MAX_BYTES of history
MAX_LINE_BYTES = 4000  # < PIPE_BUF (4096): see the module docstring
MAX_TEXT = 300  # a reason, command or path cut to this: many events fit a line
RECORD_START = '{"at":'

# Every event written, and what it means (the keys beyond at/event/session/project).
EVENTS = {
    "session.started": "a session registered (pid, kind, worktree, branch)",
    "session.ended": "a session unregistered itself (pid; how: its SessionEnd, unregister, /clear)",
    "session.died": "a dead session swept (pid, reason: which liveness check said so)",
    "session.removed": "a session removed by hand: prune --force (pid, reason)",
    "lock.taken": "a lock taken (lock, pid, waited_s)",
    "lock.taken_over": "a lock taken from a dead holder (lock, pid, from_pid, reason)",
    "lock.waiting": "a lock found held: the caller waits (lock, pid, holder_pid, holder_session)",
    "lock.timed_out": "a wait for a lock gave up (lock, pid, holder_pid, waited_s)",
    "lock.released": "a lock released by its holder (lock, pid, held_s)",
    "lock.forced": "a live holder's lock released by someone else (lock, pid, by_pid)",
    "lock.cleaned": "an orphaned lock removed (lock, pid, reason)",
    "edit.asked": "the file guard asked the person about an edit (tool, target, reason)",
    "edit.denied": "the file guard refused an edit (tool, target, reason)",
    "edit.allowed": "the person allowed an edit the guard asked about (tool, target)",
    "edit.not_run": "an edit the guard asked about did not run (tool, target, how: refused by the person, "
                    "or no result when the turn ended)",
    "git.asked": "the git guard asked the person about a git command (target, reason)",
    "git.denied": "the git guard refused a git command (target, reason)",
    "git.allowed": "the person allowed a git command the guard asked about (target)",
    "git.not_run": "a git command the guard asked about did not run (target, how: as edit.not_run)",
    "note.written": "a shared note written through sessionward (path, how: append|write, bytes)",
}


def log_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, LOG_DIR_NAME)


def log_files(state_dir: str | None = None) -> list[str]:
    """Every log file, oldest first (events.KEEP.jsonl ... events.1.jsonl, events.jsonl)."""
    directory = log_dir(state_dir)
    return [os.path.join(directory, _rotated_name(n)) for n in range(KEEP, 0, -1)] + [os.path.join(directory, CURRENT)]


def max_bytes() -> int:
    value = os.environ.get("SESSIONWARD_TEST_LOG_MAX_BYTES")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return MAX_BYTES


# -- writing ------------------------------------------------------------------------------------


def append(event: str, session: str | None = None, project: str | None = None, *, at: float | None = None,
           **fields) -> None:
    """Append one event (a name of EVENTS), dated `at` when it happened before it could be
    written (else now). Never raises: a lost event is worth less than the operation it records."""
    try:
        record = {"at": round(time.time() if at is None else at, 3), "event": event}
        if session:
            record["session"] = session
        if project:
            record["project"] = project
        for key, value in fields.items():
            if value is not None:
                record[key] = _cut(value) if isinstance(value, str) else value
        _write_line(log_dir(), encode_line(record))
    except Exception:  # noqa: BLE001 - never in the way of what it records (module docstring)
        pass


def encode_line(record: dict) -> bytes:
    """The record as one line of at most MAX_LINE_BYTES: long texts cut further if need be."""
    data = (jsoncodec.dumps_line(record) + "\n").encode("utf-8", "surrogateescape")
    if len(data) > MAX_LINE_BYTES:
        record = {key: value[:80] + "…" if isinstance(value, str) and len(value) > 80 else value
                  for key, value in record.items()}
        data = (jsoncodec.dumps_line(record) + "\n").encode("utf-8", "surrogateescape")
        if len(data) > MAX_LINE_BYTES:  # cannot happen with the fields written here
            data = (jsoncodec.dumps_line({"at": record["at"], "event": record["event"]}) + "\n").encode()
    return data


def _write_line(directory: str, data: bytes) -> None:
    path = os.path.join(directory, CURRENT)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        paths.ensure_private_dir()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)  # one write of one whole line: see the module docstring
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > max_bytes():
        rotate(directory)


def _rotated_name(n: int) -> str:
    return f"events.{n}.jsonl"


def rotate(directory: str | None = None) -> bool:
    """Rotate the log if it is still past max_bytes(), under rotate.lock (not waited for:
    whoever holds it rotates). True when this call rotated."""
    import fcntl

    directory = directory or log_dir()
    current = os.path.join(directory, CURRENT)
    fd = os.open(os.path.join(directory, ROTATE_LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another process rotates now
        try:
            if os.stat(current).st_size <= max_bytes():
                return False  # rotated by someone else since this writer looked
        except FileNotFoundError:
            return False
        for n in range(KEEP - 1, 0, -1):
            try:
                os.replace(os.path.join(directory, _rotated_name(n)), os.path.join(directory, _rotated_name(n + 1)))
            except FileNotFoundError:
                pass
        os.replace(current, os.path.join(directory, _rotated_name(1)))
        return True
    finally:
        os.close(fd)  # drops the flock


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# -- reading ------------------------------------------------------------------------------------


def parse_line(line: str) -> dict | None:
    """One record, or None for a line that holds none. A line cut short by a killed writer
    has the next writer's whole line glued after it: that one is found and kept."""
    line = line.strip()
    if not line:
        return None
    start = 0
    while True:
        try:
            found = jsoncodec.loads(line[start:])
        except (ValueError, RecursionError):
            found = None
        if type(found) is dict and isinstance(found.get("event"), str) and type(found.get("at")) in (int, float):
            return found
        start = line.find(RECORD_START, start + 1)
        if start < 0:
            return None


def read_file(path: str, offset: int = 0) -> tuple[list[dict], int]:
    """The records of one log file from byte `offset`, and the offset after its last whole
    line (a line still being written is left for the next read)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for raw in data[:end].split(b"\n"):
        record = parse_line(raw.decode("utf-8", "replace"))
        if record is not None:
            records.append(record)
    return records, offset + end


def read_events(state_dir: str | None = None) -> list[dict]:
    """Every record of every log file, oldest first (by time: a line written into a file
    just rotated sits among later ones)."""
    records = []
    for path in log_files(state_dir):
        records += read_file(path)[0]
    records.sort(key=lambda record: record["at"])
    return records
