"""The local store: one JSON document, replaced atomically under a kernel flock.

Files (see sessionward.paths):
  obsidian_sessions.json    {"schema": "sessionward/1", "sessions": {ID: RECORD, ...}}
  sessionward/registry.lock permanent flock target; never deleted, never replaced, so every
                            process locks the same inode

Calling sequence of an update: flock(registry.lock) with a 5 s deadline (waited for in the
kernel, see sessionward._flock) -> read and decode
the registry -> change(sessions) -> if changed, write_file_atomic (and, when a session came,
went or moved, sessionward.status_stamp.touch()) -> unlock. Readers take no lock:
os.replace makes every read see one whole document.

A document that cannot be decoded is never deleted: under the lock it is renamed to
`obsidian_sessions.json.corrupt-UTCSTAMP-RAND`, the records that still validate are carried
into a fresh document, and a StateCorrupt notice says where the original went: in
`notices`, for the caller, and recorded through sessionward._notices, so that the person
is told even when a hook found it. A document of a newer schema is refused untouched
(StateTooNew). The origin's unversioned document (a "sessions" list or PID-keyed mapping)
is upgraded on the next write.

Test-only: SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK=1 skips the flock, so tests can show that
without it concurrent updates are lost (the negative control of the concurrency tests).
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, paths, status_stamp
from sessionward._atomic import keep_aside, read_file_nofollow, remove_stray_temps, same_file, write_file_atomic
from sessionward._flock import flock_exclusive, flock_holder, open_lock_file
from sessionward.errors import RegistryLockTimeout, StateCorrupt, StateTooNew, StateUnwritable, StoreForked
from sessionward.identity.process import PID_MAX_LIMIT
from sessionward.store import Store, file_version
from sessionward.store.records import (
    _DISABLE_LOCK_ENV,
    REGISTRY_LOCK_TIMEOUT_S,
    record_is_valid,
    shown_on_status_lines,
)

SCHEMA = "sessionward/1"
SCHEMA_PREFIX = "sessionward/"
SCHEMA_VERSION = 1

class LocalStore(Store):
    def __init__(self, state_dir: str | None = None, lock_timeout_s: float = REGISTRY_LOCK_TIMEOUT_S) -> None:
        if state_dir is not None:
            self.registry_path = os.path.join(state_dir, paths.REGISTRY_NAME)
            self.lock_path = os.path.join(state_dir, paths.PRIVATE_DIR_NAME, "registry.lock")
        else:
            self.registry_path = paths.registry_path()
            self.lock_path = paths.registry_lock_path()
        self.lock_timeout_s = lock_timeout_s
        self.notices: list = []

    def describe(self) -> str:
        return self.registry_path

    # -- reading ---------------------------------------------------------------------------

    def load_sessions(self) -> dict:
        paths.vet_state_dir(os.path.dirname(self.registry_path))  # a planted registry is no answer
        try:
            raw = read_file_nofollow(self.registry_path, must_own=True)
        except ValueError:  # larger than any registry: repaired below, under the lock
            raw, problem = b"", "oversized"
        else:
            if raw is None:
                return {}
            sessions, problem = decode_registry(raw, self.registry_path)
        if problem is None:
            return sessions
        # Corrupt: repair under the lock (another process may be doing the same).
        return self.update_sessions(lambda current: (dict(current), False))

    # -- writing ---------------------------------------------------------------------------

    def update_sessions(self, change, durable: bool = True):
        paths.ensure_private_dir(os.path.dirname(self.lock_path))
        self.version = ""
        fd = self._lock()
        pid = os.getpid()
        try:
            sessions, must_write = self._read_for_update()
            shown = shown_on_status_lines(sessions)
            result, changed = change(sessions)
            if os.getpid() != pid:
                # `change` forked and this is the child: it shares the parent's flock (one open
                # file description), so writing here would race the parent's own commit.
                raise StoreForked(self.registry_path)
            if changed or must_write:
                data = jsoncodec.dumps({"schema": SCHEMA, "sessions": sessions})
                write_file_atomic(self.registry_path, data.encode("utf-8"), durable=durable or must_write)
                remove_stray_temps(self.registry_path)
                if shown_on_status_lines(sessions) != shown:
                    status_stamp.touch(os.path.dirname(self.registry_path))
            self.version = file_version(self.registry_path)  # under the flock: nobody wrote since
            return result
        finally:
            os.close(fd)  # closing drops the flock

    def _read_for_update(self) -> tuple[dict, bool]:
        try:
            raw = read_file_nofollow(self.registry_path, must_own=True)
        except ValueError as exc:  # larger than any registry: hostile or broken
            return self._keep_aside(str(exc), {}), True
        if raw is None:
            return {}, False
        sessions, problem = decode_registry(raw, self.registry_path)
        if problem is None:
            return sessions, False
        return self._keep_aside(problem, sessions), True

    def _keep_aside(self, why: str, salvaged: dict) -> dict:
        """Keep the corrupt document under a new name. A hard link, not a rename: the registry
        path keeps its (corrupt) content until the salvaged document replaces it atomically,
        so a crash in between loses nothing and readers never see an empty registry."""
        kept_as = keep_aside(self.registry_path)
        notice = StateCorrupt(self.registry_path, why, kept_as, len(salvaged))
        self.notices.append(notice)
        from sessionward import _notices

        _notices.kept_aside(str(notice))  # told in Claude Code and on the command line, once each
        return salvaged

    def _lock(self) -> int:
        fd = open_lock_file(self.lock_path)
        if os.environ.get(_DISABLE_LOCK_ENV) == "1":
            return fd
        try:
            held = flock_exclusive(fd, self.lock_timeout_s)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise StateUnwritable(self.lock_path, exc) from None
            raise
        if not held:
            try:
                holder = flock_holder(fd)
            finally:
                os.close(fd)
            raise RegistryLockTimeout(self.lock_path, self.lock_timeout_s, holder)
        if not same_file(fd, self.lock_path):
            # Someone removed or replaced the lock file while we waited (rm -r of the private
            # directory): our flock guards nothing. Take the one now at the path.
            os.close(fd)
            return self._lock()
        return fd


def decode_registry(raw: bytes, path: str) -> tuple[dict, str | None]:
    """(sessions, problem). problem is None for a sound document; otherwise it says what is
    wrong and `sessions` holds the records that still validate (to be salvaged).
    Raises StateTooNew for a newer schema."""
    if not raw.strip():
        return {}, "empty file"
    damage = None
    try:
        doc = jsoncodec.loads(raw)
    except ValueError as exc:
        damage = f"invalid JSON: {exc}"
        doc = _parse_leniently(raw)
        if doc is None:
            return {}, damage
    sessions, problem = _decode_document(doc, path)
    if sessions and (b"\\ud" in raw or b"\\uD" in raw):
        # A lone surrogate escape ("\ud800") decodes, but can never be written back as UTF-8:
        # kept, such a record would fail every later write. Looked for only when one may be there.
        writable = {key: rec for key, rec in sessions.items() if _encodes(key, rec)}
        if len(writable) != len(sessions):
            problem = problem or f"{len(sessions) - len(writable)} malformed session record(s)"
            sessions = writable
    return sessions, problem or damage


def _encodes(key: str, rec: dict) -> bool:
    try:
        jsoncodec.dumps({key: rec}).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def _parse_leniently(raw: bytes):
    """For salvage only: the json package also takes NaN and Infinity (which other JSON
    writers emit); the record check then throws out what is not finite."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _decode_document(doc, path: str) -> tuple[dict, str | None]:
    if not isinstance(doc, dict):
        return {}, f"top level is a JSON {type(doc).__name__}, not an object"
    schema = doc.get("schema")
    if schema is None:
        return _upgrade_unversioned(doc)
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        return {}, f"unknown schema {schema!r}"
    if is_newer_schema(schema):
        raise StateTooNew(path, schema)
    if schema != SCHEMA:
        return {}, f"unknown schema {schema!r}"
    sessions = doc.get("sessions")
    if not isinstance(sessions, dict):
        return {}, "'sessions' is not an object"
    good = {key: rec for key, rec in sessions.items() if record_is_valid(key, rec)}
    if len(good) != len(sessions):
        return good, f"{len(sessions) - len(good)} malformed session record(s)"
    return good, None


def is_newer_schema(schema) -> bool:
    """Is `schema` a later sessionward's ("sessionward/N", N above SCHEMA_VERSION)? Such a
    document, registry or claims shard, is refused untouched (StateTooNew), never rewritten."""
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        return False
    version = schema[len(SCHEMA_PREFIX) :]
    return version.isascii() and version.isdigit() and len(version) <= 6 and int(version) > SCHEMA_VERSION


def _upgrade_unversioned(doc: dict) -> tuple[dict, str | None]:
    """The origin's registry: {"sessions": [{"pid", "project", "cwd", ...}]} or PID-keyed.

    Its records carry no process start time, so their liveness is judged by PID alone until
    they re-register. Anything else unversioned is not ours: corrupt.
    """
    legacy = doc.get("sessions")
    if isinstance(legacy, dict):
        legacy = [dict(v, pid=v.get("pid", k)) if isinstance(v, dict) else None for k, v in legacy.items()]
    if not isinstance(legacy, list):
        return {}, "no 'schema' and no 'sessions'"
    upgraded: dict = {}
    for item in legacy:
        rec = _upgrade_legacy_record(item)
        if rec is None:
            return upgraded, "unversioned document with unreadable records"
        upgraded[rec["id"]] = rec
    # Sound but old: returned as a problem-free document; the next write stores schema 1.
    return upgraded, None


def _upgrade_legacy_record(item: object) -> dict | None:
    if not isinstance(item, dict):
        return None
    pid = item.get("pid")
    if isinstance(pid, str) and pid.isascii() and pid.isdigit() and len(pid) <= 10:
        pid = int(pid)
    project, cwd = item.get("project"), item.get("cwd")
    if type(pid) is not int or not 0 < pid <= PID_MAX_LIMIT or not isinstance(project, str) or not isinstance(cwd, str):
        return None
    if "\0" in cwd or "\0" in project or not os.path.isabs(cwd):
        return None
    started = item.get("started_at", item.get("started", item.get("timestamp")))
    started = float(started) if type(started) in (int, float) and started - started == 0 else time.time()
    return {
        "id": f"legacy-{pid}",
        "kind": "other",
        "project": project,
        "project_key": "name:" + project,
        "project_explicit": True,
        "worktree": os.path.realpath(cwd),
        "branch": None,
        "cwd": cwd,
        "owner": {"pid": pid, "start_time": None, "host": None, "boot_id": None, "comm": "?"},
        "started_at": started,
        "last_seen": started,
        "holds": [],
    }
