"""File claims: "session S read or wrote file F at time T, and left it in state X".

Purpose: let one session learn, before it edits a file, that another live session edited
it recently (it may overwrite that work), or that the file changed on disk since this
session last saw it, through another session's hand (it would edit blind). Claude Code's
PostToolUse hook records a claim after every Read, Edit, Write, MultiEdit and NotebookEdit;
PreToolUse consults them (sessionward.guards).

What it does not protect: edits by anything that is not a hooked Claude Code session (an
editor, a formatter, git) leave no claim; the file's state (size, mtime, content digest) in
a claim still lets a later check see that the file changed.

Files (under STATE/sessionward/claims/, 0700):
  NN.json      one of at most 256 shards, NN = two hex digits of a digest of the path:
               {"schema": "sessionward/1", "files": {"/abs/path": [claim, ...]}}
               so a hook reads the one small file that can hold its path, however many
               claims exist.
  ended.json   {"schema": ..., "owners": [{"owner": {...}, "at": T}]}: sessions that ended
               (SessionEnd); their claims made before T count as ended. One small write
               per SessionEnd, however many files the session touched.
  claims.lock  permanent flock target; every update runs under it. Never deleted.
Shards are replaced atomically (sessionward._atomic) but without fsync: a claim is advice,
a `kill -9` cannot lose it (the page cache survives the process), a power loss can.

A claim (one per owner process and path; a newer one replaces it):
  session, owner {pid, start_time, host, boot_id, pidns, comm}, project, worktree, branch,
  tool, write (bool), at (epoch seconds), state {size, mtime_ns, digest} or null (no file),
  ended (epoch seconds the session ended, filled in by claims_on() from ended.json; null
  while it runs), taken (epoch seconds this owner last took the file over with take_over(),
  carried from claim to claim of the same owner and path; absent or null when never)
An ended claim blocks nobody, but is kept (HISTORY_S) because it still tells whether a
file changed behind another session's back.

It is a no-op to end the claims of a session that has none.
"""

import os

from sessionward import _jsoncodec as jsoncodec, paths
from sessionward._atomic import read_file_nofollow, remove_stray_temps, write_file_atomic
from sessionward.claude_tools import WRITE_TOOLS
from sessionward.errors import ClaimsLockTimeout, StateUnwritable, UnsafeState
from sessionward.identity import Owner, owner_record_matches, same_process

SCHEMA = "sessionward/1"
CLAIMS_LOCK_TIMEOUT_S = 2.0  # a hook must answer: far below Claude Code's hook timeouts
HISTORY_S = 24 * 3600.0  # claims older than this are dropped when their shard is rewritten
MAX_CLAIMS_PER_FILE = 32  # the most recent ones: one per owner, and few owners per file
MAX_DIGEST_BYTES = 16 * 1024 * 1024  # larger files are compared by size and mtime only
ENDED_NAME = "ended.json"
TAKE_TOOL = "take"  # the tool of take_over()'s claim: `sessionward claim take`


def claims_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, "claims")


def shard_name(path: str) -> str:
    """The shard file holding `path`'s claims (a collision only shares a small file)."""
    from _blake2 import blake2b  # C builtin, far cheaper to import than hashlib

    return blake2b(path.encode("utf-8", "surrogateescape"), digest_size=1).hexdigest() + ".json"


def file_state(path: str, with_digest: bool = True) -> dict | None:
    """{size, mtime_ns, digest} of the file now, or None when there is no regular file."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not (info.st_mode & 0o170000 == 0o100000):  # not a regular file
        return None
    state: dict = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "digest": None}
    if with_digest:
        state["digest"] = file_digest(path, info.st_size)
    return state


def file_digest(path: str, size: int | None = None) -> str | None:
    """A content digest, or None for files too large to hash on every edit (or unreadable)."""
    if size is not None and size > MAX_DIGEST_BYTES:
        return None
    from _blake2 import blake2b

    digest = blake2b(digest_size=16)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_DIGEST_BYTES:
                return None
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def same_content(recorded: dict | None, current: dict | None, path: str) -> bool:
    """Do two states of the file at `path` show the same content? Size and mtime equal: yes,
    without reading; else the digests decide (a `touch` changes nothing), when both are known."""
    if recorded is None or current is None:
        return recorded is None and current is None
    if recorded.get("size") == current["size"] and recorded.get("mtime_ns") == current["mtime_ns"]:
        return True
    if recorded.get("size") != current["size"] or recorded.get("digest") is None:
        return False
    if current.get("digest") is None:
        current["digest"] = file_digest(path, current["size"])
    return current["digest"] == recorded["digest"]


# -- reading ----------------------------------------------------------------------------------


def claims_on(path: str, state_dir: str | None = None) -> list[dict]:
    """Every kept claim on `path` (absolute, normalised), newest last. Takes no lock."""
    directory = claims_dir(state_dir)
    _refuse_linked_dir(directory)  # O_NOFOLLOW guards the shard only, not the directory
    raw = read_file_nofollow(os.path.join(directory, shard_name(path)))
    files = _decode(raw)
    found = files.get(path)
    valid = [c for c in found if _valid(c)] if type(found) is list else []
    return _mark_ended(valid, directory) if valid else []


def claims_on_each(paths: list, state_dir: str | None = None) -> dict:
    """{path: claims_on(path)} for many paths, each shard and ended.json read once (a sweep
    of hundreds of changed files asks about all of them)."""
    directory = claims_dir(state_dir)
    _refuse_linked_dir(directory)
    shards: dict = {}
    found = {}
    for path in paths:
        name = shard_name(path)
        if name not in shards:
            shards[name] = _decode(read_file_nofollow(os.path.join(directory, name)))
        claims = shards[name].get(path)
        found[path] = [c for c in claims if _valid(c)] if type(claims) is list else []
    if any(found.values()):
        ended = _ended_entries(_decode_doc(read_file_nofollow(os.path.join(directory, ENDED_NAME))))
        for claims in found.values():
            _fill_ended(claims, ended)
    return found


def all_claims(state_dir: str | None = None) -> list[tuple[str, dict]]:
    """[(path, claim)] of every kept claim, in every shard, "ended" filled in. Takes no lock;
    reads up to 256 small files: for a view of all sessions (`sessionward watch`), not for hooks."""
    directory = claims_dir(state_dir)
    _refuse_linked_dir(directory)
    try:
        names = sorted(n for n in os.listdir(directory) if len(n) == 7 and n.endswith(".json"))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        for path, claims in _decode(read_file_nofollow(os.path.join(directory, name))).items():
            if type(claims) is list:
                found += [(path, c) for c in claims if _valid(c)]
    if found:
        _mark_ended([claim for _, claim in found], directory)
    return found


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


def _valid(claim) -> bool:
    return (
        type(claim) is dict
        and type(claim.get("owner")) is dict
        and type(claim["owner"].get("pid")) is int
        and type(claim.get("at")) in (int, float)
        and type(claim.get("write")) is bool
        and (claim.get("state") is None or type(claim["state"]) is dict)  # guards read it as a dict
    )


def is_mine(claim: dict, owner: Owner) -> bool:
    return owner_record_matches(claim["owner"], owner)


# -- writing ----------------------------------------------------------------------------------


def record_claim(
    path: str,
    *,
    owner: Owner,
    session_id: str | None,
    tool: str,
    checkout=None,
    now: float,
    state: dict | None = None,
    state_dir: str | None = None,
    taken: float | None = None,
) -> dict:
    """Record that `owner`'s session used `path` with `tool` just now; returns the claim.
    `taken` (take_over's) is otherwise carried over from the owner's earlier claim."""
    owner.watch()  # the claim is judged by its owner's life from other PID namespaces
    claim = {
        "session": session_id,
        "owner": owner.to_record(),
        "project": checkout.project if checkout else None,
        "worktree": checkout.worktree if checkout else None,
        "branch": checkout.branch if checkout else None,
        "tool": tool,
        "write": tool in WRITE_TOOLS,
        "at": now,
        "state": state if state is not None else file_state(path),
        "ended": None,
    }
    if taken is not None:
        claim["taken"] = taken

    def change(files: dict) -> bool:
        previous = files.get(path)
        previous = previous if type(previous) is list else ()  # a wrong-schema entry counts as none
        valid = [c for c in previous if _valid(c)]
        earlier = [c["taken"] for c in valid if is_mine(c, owner) and type(c.get("taken")) in (int, float)]
        if earlier and "taken" not in claim:  # a take-over outlives the edits it let through
            claim["taken"] = max(earlier)
        kept = [c for c in valid if not is_mine(c, owner) and now - c["at"] < HISTORY_S]
        kept.append(claim)
        files[path] = kept[-MAX_CLAIMS_PER_FILE:]
        return True

    _update_shard(claims_dir(state_dir), shard_name(path), change, now)
    return claim


def take_over(path: str, *, owner: Owner, session_id: str | None, checkout=None, now: float,
              state_dir: str | None = None) -> dict:
    """Take `path` over for `owner`'s session, on its person's word: the claims other sessions
    made on it until now stop blocking this owner's edits (a later edit by one of them blocks
    again; sessionward.guards decides). Recorded as a claim (tool "take", not a write, with
    `taken` = now and the file's state now, as a Read would); returns it."""
    return record_claim(path, owner=owner, session_id=session_id, tool=TAKE_TOOL, checkout=checkout, now=now,
                        state_dir=state_dir, taken=now)


def taken_at(mine: list[dict]) -> float | None:
    """When this owner last took the file over (its claims `mine`), or None."""
    found = [c["taken"] for c in mine if type(c.get("taken")) in (int, float)]
    return max(found) if found else None


def end_claims(owner: Owner, now: float, state_dir: str | None = None) -> None:
    """Mark every claim `owner` made until now ended: they stop blocking others.

    One small write, whatever the number of files the session touched: the owner goes into
    ended.json, and claims_on() reports the claims it made before `now` as ended. (Rewriting
    every shard it touched took most of SessionEnd's 1.5 s for a session that edited many files.)
    """
    directory = claims_dir(state_dir)
    _refuse_linked_dir(directory)  # the write would follow a planted link
    if not os.path.isdir(directory):
        return
    me = owner.to_record()

    def change(doc: dict) -> bool:
        # One entry per process, its latest end: every claim it made before that is ended
        # (a process that ends a session on /clear and goes on with the next one ends its
        # later claims at its later end). Keeping every end made each SessionEnd rewrite a
        # file that grew with every /clear of the day.
        kept = [e for e in _ended_entries(doc) if now - e["at"] < HISTORY_S and not same_process(e["owner"], me)]
        doc.clear()
        doc["owners"] = kept + [{"owner": me, "at": now}]
        return True

    _update_file(directory, ENDED_NAME, change)


def _ended_entries(doc: dict) -> list:
    entries = doc.get("owners")
    return [
        e for e in (entries if type(entries) is list else ())
        if type(e) is dict and type(e.get("owner")) is dict and type(e.get("at")) in (int, float)
    ]


def made_by(claim: dict, owner: dict) -> bool:
    """Was `claim` made by the process of `owner` (an owner record, as the registry stores it)?"""
    return same_process(claim["owner"], owner)


def _mark_ended(claims: list, directory: str) -> list:
    """Fill in "ended" from ended.json: a claim made before its owner's session ended."""
    return _fill_ended(claims, _ended_entries(_decode_doc(read_file_nofollow(os.path.join(directory, ENDED_NAME)))))


def _fill_ended(claims: list, ended: list) -> list:
    if not ended:
        return claims
    for claim in claims:
        if claim.get("ended") is None:
            for entry in ended:
                if entry["at"] >= claim["at"] and same_process(entry["owner"], claim["owner"]):
                    claim["ended"] = entry["at"]
                    break
    return claims


def _update_shard(directory: str, name: str, change, now: float) -> None:
    paths.ensure_private_dir()
    _ensure_claims_dir(directory)
    fd = _lock(directory)
    try:
        _rewrite(os.path.join(directory, name), change, now)
    finally:
        os.close(fd)


def _update_file(directory: str, name: str, change) -> None:
    """Run change(doc) on a small JSON document in the claims directory, under the lock."""
    fd = _lock(directory)
    try:
        path = os.path.join(directory, name)
        doc = _read_for_update(path)
        if change(doc):
            doc["schema"] = SCHEMA
            write_file_atomic(path, jsoncodec.dumps(doc).encode("utf-8"), durable=False)
            remove_stray_temps(path)
    finally:
        os.close(fd)


def _rewrite(shard: str, change, now: float) -> None:
    files = _read_for_update(shard).get("files")
    files = files if type(files) is dict else {}
    if not change(files):
        return
    for path in list(files):  # drop what has aged out, so shards stay small
        claims = files[path]
        fresh = [c for c in claims if _valid(c) and now - c["at"] < HISTORY_S] if type(claims) is list else []
        if fresh:
            files[path] = fresh
        else:
            del files[path]
    write_file_atomic(shard, jsoncodec.dumps({"schema": SCHEMA, "files": files}).encode("utf-8"), durable=False)
    remove_stray_temps(shard)  # a writer killed mid-write left its temp file: we hold the lock


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


def _lock(directory: str) -> int:
    from sessionward._flock import flock_exclusive, flock_holder, open_lock_file  # writers only: PreToolUse never locks

    path = os.path.join(directory, "claims.lock")
    fd = open_lock_file(path)
    try:
        held = flock_exclusive(fd, CLAIMS_LOCK_TIMEOUT_S)
    except BaseException:
        os.close(fd)
        raise
    if not held:
        try:
            holder = flock_holder(fd)
        finally:
            os.close(fd)
        raise ClaimsLockTimeout(path, CLAIMS_LOCK_TIMEOUT_S, holder)
    return fd
