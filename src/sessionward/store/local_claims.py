"""The local store's claims: per-file claim lists and the ended owners in files, unchanged
on disk, at the origin's paths.

What a claim means, who may make one and when one counts is sessionward.claims's; this
module keeps the records and changes them only as told, under the claims lock. The files
(STATE/sessionward/claims/, 0700):

  NN.json      one of at most 256 shards, NN = two hex digits of a digest of the path:
               {"schema": "sessionward/1", "files": {"/abs/path": [claim, ...]}}
               so a reader reads the one small file that can hold its path.
  ended.json   {"schema": ..., "owners": [{"owner": {...}, "at": T}]}
  claims.lock  permanent flock target; every update runs under it. Never deleted.
Shards are replaced atomically (sessionward._atomic) but without fsync: a claim is advice,
a `kill -9` cannot lose it (the page cache survives the process), a power loss can. A
corrupt document is kept aside (never deleted) and told once; a newer sessionward's is left
untouched (StateTooNew). A symlink planted as the directory is refused (UnsafeState).

Calling sequence (sessionward.claims, through store.open_claims()):
    facts = LocalClaims(state_dir, lock_timeout_s)    # how long an update waits for claims.lock
    facts.claims_on(path) / claims_on_each(paths) / all_claims() / ended()   # no lock
    facts.update_claims(path, change, fresh, keep_s)   # change(raw) -> [claim, ...]
    facts.update_ended(change, keep_s)                 # change(raw entries) -> entries
Readers return what is stored, unvalidated (sessionward.claims validates). `fresh(raw)` is
the caller's ageing rule: applied to every list a shard rewrite touches, so that shards stay
small; a path left with no claim leaves the shard. `keep_s` is for backends that expire
records by time (the shared store); here `fresh` does it.

It is a no-op to update the ended owners when no claim was ever recorded (no directory).
"""

import os

from sessionward import _jsoncodec as jsoncodec, paths
from sessionward._atomic import read_file_nofollow, remove_stray_temps, write_file_atomic
from sessionward.errors import ClaimsLockTimeout, StateUnwritable, UnsafeState
from sessionward.store import ClaimFacts

SCHEMA = "sessionward/1"
ENDED_NAME = "ended.json"
LOCK_NAME = "claims.lock"


def claims_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, "claims")


def shard_name(path: str) -> str:
    """The shard file holding `path`'s claims (a collision only shares a small file)."""
    from _blake2 import blake2b  # C builtin, far cheaper to import than hashlib

    return blake2b(path.encode("utf-8", "surrogateescape"), digest_size=1).hexdigest() + ".json"


class LocalClaims(ClaimFacts):
    """The claim files of one state directory."""

    def __init__(self, state_dir: str | None, lock_timeout_s: float) -> None:
        self.directory = claims_dir(state_dir)
        self.where = self.directory
        self.lock_timeout_s = lock_timeout_s

    # -- reading (no lock) -------------------------------------------------------------------

    def claims_on(self, path: str):
        _refuse_linked_dir(self.directory)  # O_NOFOLLOW guards the shard only, not the directory
        return _decode(read_file_nofollow(os.path.join(self.directory, shard_name(path)))).get(path)

    def claims_on_each(self, paths_: list) -> dict:
        _refuse_linked_dir(self.directory)
        shards: dict = {}
        found = {}
        for path in paths_:
            name = shard_name(path)
            if name not in shards:
                shards[name] = _decode(read_file_nofollow(os.path.join(self.directory, name)))
            found[path] = shards[name].get(path)
        return found

    def all_claims(self) -> list:
        _refuse_linked_dir(self.directory)
        try:
            names = sorted(n for n in os.listdir(self.directory) if len(n) == 7 and n.endswith(".json"))
        except FileNotFoundError:
            return []
        found: list = []
        for name in names:
            found += _decode(read_file_nofollow(os.path.join(self.directory, name))).items()
        return found

    def ended(self):
        return _decode_doc(read_file_nofollow(os.path.join(self.directory, ENDED_NAME))).get("owners")

    # -- writing (under claims.lock) ----------------------------------------------------------

    def update_claims(self, path: str, change, fresh, keep_s: float) -> None:
        paths.ensure_private_dir()
        _ensure_claims_dir(self.directory)
        fd = lock_claims(self.directory, self.lock_timeout_s)
        try:
            shard = os.path.join(self.directory, shard_name(path))
            files = _read_for_update(shard).get("files")
            files = files if type(files) is dict else {}
            files[path] = change(files.get(path))
            for each in list(files):  # drop what has aged out, so shards stay small
                kept = fresh(files[each])
                if kept:
                    files[each] = kept
                else:
                    del files[each]
            write_file_atomic(shard, jsoncodec.dumps({"schema": SCHEMA, "files": files}).encode("utf-8"), durable=False)
            remove_stray_temps(shard)  # a writer killed mid-write left its temp file: we hold the lock
        finally:
            os.close(fd)

    def update_ended(self, change, keep_s: float) -> None:
        _refuse_linked_dir(self.directory)  # the write would follow a planted link
        if not os.path.isdir(self.directory):
            return
        fd = lock_claims(self.directory, self.lock_timeout_s)
        try:
            path = os.path.join(self.directory, ENDED_NAME)
            doc = _read_for_update(path)
            write_file_atomic(path, jsoncodec.dumps({"schema": SCHEMA, "owners": change(doc.get("owners"))})
                              .encode("utf-8"), durable=False)
            remove_stray_temps(path)
        finally:
            os.close(fd)


def _decode(raw: bytes | None) -> dict:
    """A shard's {path: [claim, ...]}."""
    files = _decode_doc(raw).get("files")
    return files if type(files) is dict else {}


def _decode_doc(raw: bytes | None) -> dict:
    """A claims document, or {} when absent or unusable (readers: claims are advice)."""
    return _parse_doc(raw)[0]


def _parse_doc(raw: bytes | None, path: str | None = None) -> tuple[dict, str | None]:
    """(the document, None), or ({}, what is wrong with it). For a writer (`path` given), a
    newer sessionward's document raises StateTooNew: it is left untouched, as the registry is."""
    if not raw:
        return {}, None
    try:
        doc = jsoncodec.loads(raw)
    except (ValueError, RecursionError) as exc:
        return {}, f"not valid JSON: {str(exc)[:80]}"
    if type(doc) is not dict:
        return {}, f"a JSON {type(doc).__name__}, not an object"
    schema = doc.get("schema")
    if schema == SCHEMA:
        return doc, None
    if path is not None:
        from sessionward.store.local import is_newer_schema  # only for a document not ours: rare

        if is_newer_schema(schema):
            from sessionward.errors import StateTooNew

            raise StateTooNew(path, schema)  # type: ignore[arg-type]
    return {}, f"schema {str(schema)[:40]!r}, expected {SCHEMA!r}"


def _read_for_update(path: str) -> dict:
    """The document at `path` for a writer holding the claims lock. A corrupt one is kept
    aside (never deleted) and told once, in Claude Code and on the command line, like a
    corrupt registry; the writer then starts it afresh."""
    doc, problem = _parse_doc(read_file_nofollow(path), path)
    if problem is not None:
        from sessionward import _notices
        from sessionward._atomic import keep_aside

        kept_as = keep_aside(path)
        _notices.kept_aside(f"{path} was corrupt ({problem}); kept as {kept_as}; started a fresh one")
    return doc


def _ensure_claims_dir(directory: str) -> None:
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if os.path.islink(directory) or not os.path.isdir(directory):
            raise UnsafeState(directory, "it is not a directory", f"move it away: mv {directory} {directory}.bad") from None
    except OSError as exc:
        raise StateUnwritable(directory, exc) from None


def _refuse_linked_dir(directory: str) -> None:
    if os.path.islink(directory):
        raise UnsafeState(directory, "it is a symlink", f"remove the link: rm {directory}")


def lock_claims(directory: str, timeout_s: float) -> int:
    """claims.lock's flock, held until the returned descriptor is closed; ClaimsLockTimeout
    (naming the holder) when it stays busy for `timeout_s`."""
    from sessionward._flock import flock_exclusive, flock_holder, open_lock_file  # writers only: PreToolUse never locks

    path = os.path.join(directory, LOCK_NAME)
    fd = open_lock_file(path)
    try:
        held = flock_exclusive(fd, timeout_s)
    except BaseException:
        os.close(fd)
        raise
    if not held:
        try:
            holder = flock_holder(fd)
        finally:
            os.close(fd)
        raise ClaimsLockTimeout(path, timeout_s, holder)
    return fd
