"""Pending notices: a repair the person has not been told of yet, kept until they are.

Hooks reach the registry first nearly always, and a hook's stderr is not where a person
looks. So whoever keeps a corrupt state file aside records it here (kept_aside()), and it is
told once in each place the person works:
  - in Claude Code: the next hook that answers (the finder itself, most often) adds it to
    its `systemMessage`, which Claude Code shows the user; later hooks say nothing more;
  - on the command line: the next command (any but `hook` and `status-line`) prints it on
    stderr, one line each, and exits 3 (its own output still follows, as when a command
    finds the corruption itself); later commands say nothing more. A command that found it
    itself has already said so: it is not told twice.

File: STATE/sessionward/notices.json, absent when nothing is pending (the hot path pays one
stat for it): {"schema": "sessionward/1", "notices": [{"message", "at", "hook", "cli"}]},
`hook`/`cli` true once told there. Rewritten through _atomic under the flock of
STATE/sessionward/notices.lock (permanent); removed once every notice was told everywhere.
Failing to record or to read it never fails the operation that found the problem: the
finder's own process still reports what it found (found_here).
"""

import os
import time

from sessionward import paths

SCHEMA = "sessionward/1"
NOTICES_LOCK_TIMEOUT_S = 1.0
MAX_PENDING = 20  # the oldest go first: a loop of corruptions must not grow the file forever
CHANNELS = ("hook", "cli")

found_here: list = []  # messages of what this process kept aside, recorded or not


def kept_aside(message: str) -> None:
    """Record that something was kept aside (call where it happens). Never raises."""
    found_here.append(message)
    try:
        with _Locked() as pending:
            pending.append({"message": message, "at": time.time(), "hook": False, "cli": False})
            del pending[:-MAX_PENDING]
    except Exception:  # noqa: BLE001 - the finder still reports found_here itself
        pass


def is_pending() -> bool:
    """One stat: is anything recorded (or found by this process)?"""
    if found_here:
        return True
    try:
        os.stat(paths.pending_notices_path())
    except OSError:
        return False
    return True


def take(channel: str) -> list[str]:
    """The messages not yet told on `channel` ("hook" or "cli"), now marked told there. On the
    command line, what this process found itself is marked but not returned (the command
    reported it). Never raises: a notice that cannot be read stays pending."""
    assert channel in CHANNELS
    messages = []
    recorded = set()
    try:
        with _Locked() as pending:
            for notice in pending:
                recorded.add(notice["message"])
                if not notice[channel]:
                    notice[channel] = True
                    messages.append(notice["message"])
    except Exception:  # noqa: BLE001 - told next time
        pass
    if channel == "hook":  # what could not be recorded is still told here
        messages += [m for m in found_here if m not in recorded and m not in messages]
    else:
        messages = [m for m in messages if m not in found_here]
    found_here.clear()  # told (or reported by the finder): a long-lived caller says it once
    return messages


class _Locked:
    """The pending list under notices.lock: read on entry, written back (or the file
    removed when everything was told) on a clean exit."""

    def __enter__(self) -> list:
        from sessionward._flock import flock_exclusive, open_lock_file

        self.path = paths.pending_notices_path()
        paths.ensure_private_dir()
        self.fd = open_lock_file(os.path.join(os.path.dirname(self.path), "notices.lock"))
        try:
            if not flock_exclusive(self.fd, NOTICES_LOCK_TIMEOUT_S):
                raise TimeoutError(self.path)
            self.pending = _read(self.path)
        except BaseException:
            os.close(self.fd)
            raise
        return self.pending

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                _write(self.path, [n for n in self.pending if not all(n[c] for c in CHANNELS)])
        finally:
            os.close(self.fd)  # drops the flock


def _read(path: str) -> list:
    from sessionward import _jsoncodec as jsoncodec
    from sessionward._atomic import read_file_nofollow

    try:
        raw = read_file_nofollow(path, must_own=True)
        doc = jsoncodec.loads(raw) if raw else {}
    except ValueError:
        return []  # a torn notice list tells nothing; the kept-aside files stay for doctor
    notices = doc.get("notices") if type(doc) is dict and doc.get("schema") == SCHEMA else None
    return [n for n in notices if _valid(n)] if type(notices) is list else []


def _valid(notice) -> bool:
    return type(notice) is dict and type(notice.get("message")) is str and all(type(notice.get(c)) is bool for c in CHANNELS)


def _write(path: str, pending: list) -> None:
    from sessionward import _jsoncodec as jsoncodec
    from sessionward._atomic import unlink_quietly, write_file_atomic

    if not pending:
        unlink_quietly(path)
        return
    write_file_atomic(path, jsoncodec.dumps({"schema": SCHEMA, "notices": pending}).encode("utf-8"))
