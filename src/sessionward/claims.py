"""File claims: "session S read or wrote file F at time T, and left it in state X".

Purpose: let one session learn, before it edits a file, that another live session edited
it recently (it may overwrite that work), or that the file changed on disk since this
session last saw it, through another session's hand (it would edit blind). Claude Code's
PostToolUse hook records a claim after every Read, Edit, Write, MultiEdit and NotebookEdit;
PreToolUse consults them (sessionward.guards).

What it does not protect: edits by anything that is not a hooked Claude Code session (an
editor, a formatter, git) leave no claim; the file's state (size, mtime, content digest) in
a claim still lets a later check see that the file changed.

Where they are kept is the store's (sessionward.store.open_claims: the backend this
process uses): locally one of 256 shard files per path digest and ended.json under
STATE/sessionward/claims/, every update under claims.lock (store.local_claims, unchanged on
disk); on the shared store one key per file and one for the ended owners
(store.redis_claims). Either way one small record holds a path's claims, so a hook reads
one record however many claims exist, and ending a session is one small write: the owner
goes into the ended owners, and claims_on() reports the claims it made before then as
ended. A claim is advice: a local `kill -9` cannot lose it, a power loss can.

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

from sessionward import store
from sessionward.claude_tools import WRITE_TOOLS
from sessionward.errors import (
    ClaimsLockTimeout,  # noqa: F401 - raised by the store's update, part of this API
    StoreUnavailable,
)
from sessionward.identity import Owner, owner_record_matches, same_process

CLAIMS_LOCK_TIMEOUT_S = 2.0  # a hook must answer: far below Claude Code's hook timeouts
HISTORY_S = 24 * 3600.0  # claims older than this are dropped when their record is rewritten (or expire)
MAX_CLAIMS_PER_FILE = 32  # the most recent ones: one per owner, and few owners per file
MAX_DIGEST_BYTES = 16 * 1024 * 1024  # larger files are compared by size and mtime only
TAKE_TOOL = "take"  # the tool of take_over()'s claim: `sessionward claim take`
KEPT_CLAIMS_MAX_BYTES = 1 << 20  # claims kept while the shared store does not answer: a few thousand edits


def _facts(state_dir: str | None):
    return store.open_claims(state_dir, CLAIMS_LOCK_TIMEOUT_S)


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
    facts = _facts(state_dir)
    valid = _valid_list(facts.claims_on(path))
    return _fill_ended(valid, _ended_entries(facts.ended())) if valid else []


def claims_on_each(paths: list, state_dir: str | None = None) -> dict:
    """{path: claims_on(path)} for many paths, each record and the ended owners read once (a
    sweep of hundreds of changed files asks about all of them)."""
    facts = _facts(state_dir)
    found = {path: _valid_list(claims) for path, claims in facts.claims_on_each(paths).items()}
    if any(found.values()):
        ended = _ended_entries(facts.ended())
        for claims in found.values():
            _fill_ended(claims, ended)
    return found


def all_claims(state_dir: str | None = None) -> list[tuple[str, dict]]:
    """[(path, claim)] of every kept claim, "ended" filled in. Takes no lock; reads every
    record (locally up to 256 small files): for a view of all sessions (`sessionward watch`),
    not for hooks."""
    facts = _facts(state_dir)
    found = [(path, c) for path, claims in facts.all_claims() for c in _valid_list(claims)]
    if found:
        _fill_ended([claim for _, claim in found], _ended_entries(facts.ended()))
    return found


def _valid_list(claims) -> list:
    return [c for c in claims if _valid(c)] if type(claims) is list else []


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
    keep_if_unreachable: bool = False,
) -> dict:
    """Record that `owner`'s session used `path` with `tool` just now; returns the claim.
    `taken` (take_over's) is otherwise carried over from the owner's earlier claim.
    keep_if_unreachable (the PostToolUse hook): when the shared store does not answer, the
    claim is kept on this host and recorded by a later hook (keep_for_later), and
    StoreUnavailable raised all the same."""
    owner.watch()  # the claim is judged by its owner's life from other PID namespaces
    claim = new_claim(path, owner=owner, session_id=session_id, tool=tool, checkout=checkout, now=now, state=state,
                      taken=taken)
    try:
        _store_claim(path, claim, owner.identity(), now, taken, state_dir)
    except StoreUnavailable:
        if keep_if_unreachable:
            keep_for_later(path, claim)
        raise
    return claim


def new_claim(path: str, *, owner: Owner, session_id: str | None, tool: str, checkout=None, now: float,
              state: dict | None = None, taken: float | None = None) -> dict:
    """The claim record_claim() records (see the module docstring), not recorded."""
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
    return claim


def _store_claim(path: str, claim: dict, owner: dict, now: float, explicit_taken: float | None,
                 state_dir: str | None) -> None:
    """Put `claim` (made by the owner record `owner`) in the record of `path`, in place of
    that owner's earlier one."""

    def change(previous) -> list:
        # Pure: the shared store may run it again on a newer list after a conflicting write.
        valid = _valid_list(previous)  # a wrong-schema entry counts as none
        earlier = [c["taken"] for c in valid if same_process(c["owner"], owner) and type(c.get("taken")) in (int, float)]
        if explicit_taken is None:
            claim.pop("taken", None)
            if earlier:  # a take-over outlives the edits it let through
                claim["taken"] = max(earlier)
        kept = [c for c in valid if not same_process(c["owner"], owner) and now - c["at"] < HISTORY_S]
        kept.append(claim)
        return kept[-MAX_CLAIMS_PER_FILE:]

    def fresh(claims) -> list:  # what has aged out goes, so records stay small
        return [c for c in _valid_list(claims) if now - c["at"] < HISTORY_S]

    _facts(state_dir).update_claims(path, change, fresh, HISTORY_S)


# -- kept for later: claims made while the shared store could not be reached -------------------
#
# A hook fails open when the shared store does not answer (the edit goes on), but the claim it
# would have recorded matters after: without it, once the server answers again, the guard knows
# nothing of an edit made meanwhile and lets another session overwrite it. So PostToolUse keeps
# the claim on this host (STATE/sessionward/claims-kept, one JSON line each, appended under its
# flock), and the next hook of any session here that reaches the store records them first
# (record_kept), each as made then (its own time and file state). The file is emptied, never
# removed: an appender waiting for the flock must not append to a file already unlinked.


def keep_for_later(path: str, claim: dict) -> None:
    """Keep `claim` on `path` for record_kept(). Never raises: the hook's line already tells
    the store's failure."""
    from sessionward import _jsoncodec as jsoncodec, paths
    from sessionward._flock import flock_exclusive, open_lock_file

    try:
        paths.ensure_private_dir()
        fd = open_lock_file(paths.kept_claims_path())
        try:
            if flock_exclusive(fd, CLAIMS_LOCK_TIMEOUT_S):
                end = os.fstat(fd).st_size
                if end < KEPT_CLAIMS_MAX_BYTES:
                    os.pwrite(fd, (jsoncodec.dumps_line({"path": path, "claim": claim}) + "\n").encode(), end)
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - best effort: see above
        pass


def record_kept(now: float) -> int:
    """Record the claims kept for later on this host (keep_for_later), oldest first; how many.
    StoreUnavailable when the store still does not answer (the rest stay kept); an entry that
    is not a claim is dropped."""
    from sessionward import _jsoncodec as jsoncodec, paths
    from sessionward._flock import flock_exclusive, open_lock_file

    fd = open_lock_file(paths.kept_claims_path())
    try:
        if not flock_exclusive(fd, 0):
            return 0  # another hook records them now (or keeps one): this one does not wait for it
        lines = _read_all(fd).splitlines()
        done = 0
        try:
            for line in lines:
                try:
                    entry = jsoncodec.loads(line)
                    path, claim = entry["path"], entry["claim"]
                    usable = isinstance(path, str) and _valid(claim) and type(claim["owner"]) is dict
                except (ValueError, KeyError, TypeError):
                    usable = False
                if usable:
                    _store_claim(path, claim, claim["owner"], now, claim.get("taken"), None)
                done += 1
        finally:
            rest = b"".join(line + b"\n" for line in lines[done:])
            os.ftruncate(fd, 0)
            if rest:
                os.pwrite(fd, rest, 0)
        return done
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


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
    the ended owners (ended.json locally), and claims_on() reports the claims it made before `now` as ended. (Rewriting
    every shard it touched took most of SessionEnd's 1.5 s for a session that edited many files.)
    """
    me = owner.to_record()

    def change(entries) -> list:
        # One entry per process, its latest end: every claim it made before that is ended
        # (a process that ends a session on /clear and goes on with the next one ends its
        # later claims at its later end). Keeping every end made each SessionEnd rewrite a
        # record that grew with every /clear of the day.
        kept = [e for e in _ended_entries(entries) if now - e["at"] < HISTORY_S and not same_process(e["owner"], me)]
        return kept + [{"owner": me, "at": now}]

    _facts(state_dir).update_ended(change, HISTORY_S)


def _ended_entries(entries) -> list:
    return [
        e for e in (entries if type(entries) is list else ())
        if type(e) is dict and type(e.get("owner")) is dict and type(e.get("at")) in (int, float)
    ]


def made_by(claim: dict, owner: dict) -> bool:
    """Was `claim` made by the process of `owner` (an owner record, as the registry stores it)?"""
    return same_process(claim["owner"], owner)


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
