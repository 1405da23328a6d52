"""The session registry: who is working where, and who is in whose way.

A session record (one value of the store's mapping, keyed by its "id"):
  id               Claude's session_id when known, else generated ("s-" + 8 hex digits)
  session_id       Claude's session_id, or null for sessions registered from a shell
  kind             "claude-code", "shell" or "other" (from the owner)
  project          display name: explicit (`register <project> <cwd>`) or from git
  project_key      "git:<common dir>" / "dir:<path>" / "name:<project>"
  project_explicit whether `project` was given by the user
  worktree, branch, cwd  branch: as at registration when stored; records read through this
                   module carry the worktree's branch now (with_branch_now): a checkout in
                   a shared worktree moves every session there
  owner            {pid, start_time, host, boot_id, comm}: the process whose life is the
                   session's life (see identity.owner)
  started_at, last_seen   epoch seconds (wall clock, for display and cross-host leases)
  holds            names of the locks its owner holds now (filled in when read, from the
                   locks' holder files; never trusted from the stored document)

Every operation sweeps records whose owner is dead (identity.process.owner_is_alive) and
never drops a live one (the heartbeat hooks do not call in at all when heartbeat_memo says
they have nothing to do). Reads take no lock unless they find someone dead to sweep. An owner
whose liveness is unknown (on another kernel) is kept: find_unknown_sessions lists them, and
force_remove_sessions clears them (or dead ones) by hand, refusing any known to be alive.
Shown to people and --json, a record gains "where" and "liveness" (session_view), never stored.

Conflict levels, from the origin's three scenarios:
  info     another project: nothing shared
  warning  same project, another worktree: shared notes/memory, saved under the /end lock
  strong   same worktree: shared files and git index; discouraged, guarded by claims and
           the git guard
"""

import os
import time

from sessionward._jsoncodec import require_utf8
from sessionward.errors import (
    BadInput,
    NotRegistered,
    RegistryLockTimeout,
    SessionAlive,
    SessionwardError,
    StateUnwritable,
    UnsafeState,
)
from sessionward.heartbeat_memo import HEARTBEAT_REFRESH_S  # a heartbeat this soon after the last writes nothing
from sessionward.identity import (
    Owner,
    branch_now,
    describe_checkout,
    owner_record_matches,
    record_liveness,
    resolve_owner,
)
from sessionward.identity.life import forget as forget_life, life_key
from sessionward.identity.process import on_another_kernel
from sessionward.store import Store, locks_may_be_held, open_store

# locks (held_by_owner, and only where a lock file exists), identity.where (display) and
# _humanize (short ids) are imported where used: the heartbeat hooks load this module on every
# prompt and turn and need none of them.

MAX_PROJECT_NAME = 128

LEVEL_INFO = "info"
LEVEL_WARNING = "warning"
LEVEL_STRONG = "strong"
LEVEL_ORDER = {LEVEL_INFO: 0, LEVEL_WARNING: 1, LEVEL_STRONG: 2}
MAX_NAMED_SESSIONS = 3  # named in a reason or context; the rest are counted ('sessionward list' shows all)


# -- input ----------------------------------------------------------------------------------


def current_directory() -> str:
    """os.getcwd(), or BadInput when the directory was deleted under us."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise BadInput("the current directory no longer exists; cd somewhere else first") from None


def validate_project_name(name: str) -> str:
    """Return `name` if it can name a project; BadInput (exit 2) otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise BadInput("project name is empty")
    require_utf8(name, "project name")
    if len(name) > MAX_PROJECT_NAME:
        raise BadInput(f"project name is {len(name)} characters long; the limit is {MAX_PROJECT_NAME}")
    for char in name:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            raise BadInput(f"project name {name!r} contains a control character")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise BadInput(f"project name {name!r} contains a path separator; give the name, not a path")
    return name


def validate_cwd(cwd: str) -> str:
    """Return `cwd` normalised if it is an existing absolute directory; BadInput otherwise."""
    if not isinstance(cwd, str) or not cwd:
        raise BadInput("working directory is empty")
    if "\0" in cwd:
        raise BadInput("working directory contains a NUL byte")
    require_utf8(cwd, "working directory")
    if not os.path.isabs(cwd):
        raise BadInput(f"working directory {cwd!r} is relative; give an absolute path (e.g. \"$PWD\")")
    if not os.path.isdir(cwd):
        raise BadInput(f"working directory {cwd} does not exist or is not a directory")
    return os.path.normpath(cwd)


# -- results --------------------------------------------------------------------------------


class DeadSession:
    """A record whose owner is gone, and why we think so."""

    __slots__ = ("record", "reason", "how")

    def __init__(self, record: dict, reason: str, how: str | None = None) -> None:
        self.record = record
        self.reason = reason
        self.how = how  # which liveness check said so: "pid", "life lock", "boot id" (Liveness.how)

    def to_json(self) -> dict:
        return {"session": self.record, "reason": self.reason}


class Conflict:
    """Another live session that shares something with the caller."""

    __slots__ = ("level", "other", "shares")

    def __init__(self, level: str, other: dict, shares: str) -> None:
        self.level = level
        self.other = other
        self.shares = shares

    def to_json(self) -> dict:
        return {"level": self.level, "shares": self.shares, "session": session_view(self.other)}


class Context:
    """Where the caller stands: its project and checkout, and which records are its own."""

    __slots__ = ("project", "project_key", "project_explicit", "worktree", "branch", "cwd", "owner", "session_id")

    def __init__(self, cwd: str, project: str | None, owner: Owner | None, session_id: str | None = None) -> None:
        checkout = describe_checkout(cwd)
        self.cwd = cwd
        self.project = project if project is not None else checkout.project
        self.project_explicit = project is not None
        self.project_key = checkout.project_key
        self.worktree = checkout.worktree
        self.branch = checkout.branch
        self.owner = owner
        self.session_id = session_id

    def owns(self, record: dict) -> bool:
        if self.session_id is not None and (record["id"] == self.session_id or record.get("session_id") == self.session_id):
            return True
        return self.owner is not None and owner_record_matches(record["owner"], self.owner)


# -- predicates -----------------------------------------------------------------------------


def same_project(record: dict, ctx: Context) -> bool:
    """Same repository (git common dir), or the same name where either side named it."""
    if record["project_key"] == ctx.project_key and not record["project_key"].startswith("name:"):
        return True
    if record.get("project_explicit") or ctx.project_explicit:
        return record["project"] == ctx.project
    return False


def session_liveness(record: dict, now: float | None = None, seen: dict | None = None):
    return record_liveness(record["owner"], record["last_seen"], now, seen)


def owner_label(record: dict, verdict=None) -> str:
    """"pid N", then where it runs when not here ("pid N in container devbox"), then
    "(stopped)" when its owner is stopped (Ctrl-Z: alive, never swept, but doing nothing
    until resumed), or the unknown verdict with its last sign of life. For display; judges
    the owner (one /proc read or probe) unless `verdict` is given."""
    from sessionward.identity.where import HERE, owner_where

    verdict = verdict or session_liveness(record)
    label = f"pid {record['owner']['pid']}"
    if not verdict.known:
        return f"{label} ({verdict.reason})"  # the reason says where
    where = owner_where(record["owner"])
    if where != HERE:
        label += f" {where}"
    return f"{label} (stopped)" if verdict.stopped else label


def session_view(record: dict, verdict=None) -> dict:
    """The record as --json shows it: its stored fields, plus "where" (where_label) and
    "liveness" (liveness_json), added, never stored."""
    from sessionward.identity.where import liveness_json, where_label

    verdict = verdict or session_liveness(record)
    return dict(record, where=where_label(record["owner"]), liveness=liveness_json(verdict))


def describe_sessions(records: list, now: float, limit: int = MAX_NAMED_SESSIONS) -> str:
    """The first `limit` sessions described, then how many more: a reason or a context for the
    model stays short however many sessions share a worktree (Claude Code cuts at 10,000)."""
    named = "; ".join(describe_session(r, now) for r in records[:limit])
    return named + (f" (and {len(records) - limit} more)" if len(records) > limit else "")


def describe_session(record: dict, now: float) -> str:
    """"session 3f2a9c1e (project webapp, worktree ~/webapp, branch main, pid 4242, up 12m,
    holds end)": a record as a hook's reason or context names it to the model."""
    from sessionward._humanize import format_age, session_label, short_path

    parts = [f"project {record.get('project')}", f"worktree {short_path(record.get('worktree') or '?')}"]
    if record.get("branch"):
        parts.append(f"branch {record['branch']}")
    parts.append(owner_label(record))
    if type(record.get("started_at")) in (int, float):
        parts.append(f"up {format_age(now - record['started_at'])}")
    if record.get("holds"):
        parts.append("holds " + ", ".join(record["holds"]))
    return f"session {session_label(record.get('session_id') or record.get('id'))} ({', '.join(parts)})"


def classify(record: dict, ctx: Context) -> Conflict:
    # Worktrees are stored canonical (describe_checkout resolves symlinks): compare as is.
    if record["worktree"] == ctx.worktree:
        return Conflict(LEVEL_STRONG, record, "worktree")
    if same_project(record, ctx):
        return Conflict(LEVEL_WARNING, record, "project")
    return Conflict(LEVEL_INFO, record, "nothing")


# -- sweeping -------------------------------------------------------------------------------


def _split_dead(sessions: dict, now: float) -> list[DeadSession]:
    dead = []
    seen: dict = {}
    for record in sessions.values():
        verdict = session_liveness(record, now, seen)
        if not verdict.alive:
            dead.append(DeadSession(record, verdict.reason, verdict.how))
    return dead


# -- the event log (sessionward.eventlog): written once the registry change is committed ------


def _log_sessions(event: str, records, **fields) -> None:
    if not records:
        return  # the usual heartbeat: eventlog is not even imported
    from sessionward import eventlog

    for record in records:
        owner = record.get("owner") or {}
        eventlog.append(event, record.get("id"), record.get("project"), pid=owner.get("pid"), **fields)


def _log_swept(dead: list) -> None:
    if not dead:
        return  # the usual heartbeat: eventlog is not even imported
    from sessionward import eventlog

    for gone in dead:
        owner = gone.record.get("owner") or {}
        eventlog.append("session.died", gone.record.get("id"), gone.record.get("project"), pid=owner.get("pid"),
                        check=gone.how, reason=gone.reason)


def _sweep(sessions: dict, now: float) -> list[DeadSession]:
    """Remove dead records from `sessions` in place (inside a transaction); return them."""
    dead = _split_dead(sessions, now)
    for gone in dead:
        del sessions[gone.record["id"]]
        owner = gone.record["owner"]
        forget_life(life_key(owner.get("boot_id"), owner.get("pidns"), owner["pid"], owner.get("start_time")))
    return dead


def load_live_sessions(store: Store | None = None, now: float | None = None) -> tuple[list[dict], list[DeadSession]]:
    """(live records, records swept now), each with the locks its owner holds now in
    "holds" and its worktree's branch now in "branch". Lock-free unless someone dead must be
    swept."""
    store = store or open_store()
    live, swept = _load_live(store, time.time() if now is None else now)
    with_holds_now(live, store)
    with_branch_now(live)
    return live, swept


def with_holds_now(records, read_by: Store | None = None) -> None:
    """Set each record's "holds" to the names of the locks its owner holds now. When no lock
    is held at all (store.locks_may_be_held: one listdir, or one script on the shared store,
    none when `read_by`, the store the records were read from, was told with them),
    sessionward.locks is not even imported."""
    if not locks_may_be_held(read_by):
        for record in records:
            record["holds"] = []
        return
    from sessionward.locks import held_by_owner, locks_held

    held = held_by_owner()
    for record in records:
        record["holds"] = locks_held(held, record["owner"])


def with_branch_now(records) -> None:
    """Set each record's "branch" to what its worktree has checked out now (read from HEAD,
    once per worktree); a worktree not readable from here keeps the recorded one."""
    now: dict = {}
    for record in records:
        worktree = record.get("worktree")
        if worktree not in now:
            now[worktree] = branch_now(worktree)
        if now[worktree] is not None:
            record["branch"] = now[worktree]


def _load_live(store: Store, now: float) -> tuple[list[dict], list[DeadSession]]:
    sessions = store.load_sessions()
    dead = _split_dead(sessions, now)
    if not dead:
        return list(sessions.values()), []

    def sweep(current: dict):
        swept = _sweep(current, now)
        return (list(current.values()), swept), bool(swept)

    try:
        live, swept = store.update_sessions(sweep)
        _log_swept(swept)
        return live, swept
    except (StateUnwritable, RegistryLockTimeout, UnsafeState) as problem:
        # A reader that cannot write (read-only state, a busy lock) still gets the live view;
        # the dead are swept by the next operation that can write.
        store.notices.append(f"could not sweep {len(dead)} dead session(s) now: {problem}")
        gone = {d.record["id"] for d in dead}
        return [r for r in sessions.values() if r["id"] not in gone], []


# -- operations -----------------------------------------------------------------------------


def has_conflict(conflicts: list) -> bool:
    """Does any of `conflicts` share something (a level above info)?"""
    return any(c.level != LEVEL_INFO for c in conflicts)


class Registration:
    """What register_session did. `twins`: live records of the same Claude session id under
    another owner (the session resumed in two terminals); `replaced`: this owner's records
    of an earlier conversation (before /clear), dropped."""

    __slots__ = ("session", "created", "conflicts", "swept", "twins", "replaced")

    def __init__(self, session: dict, created: bool, conflicts: list, swept: list, twins=(), replaced=()) -> None:
        self.session = session
        self.created = created
        self.conflicts = conflicts
        self.swept = swept
        self.twins = list(twins)
        self.replaced = list(replaced)

    @property
    def has_conflict(self) -> bool:
        return has_conflict(self.conflicts)


def register_session(
    cwd: str | None = None,
    project: str | None = None,
    *,
    session_id: str | None = None,
    owner: Owner | None = None,
    store: Store | None = None,
    now: float | None = None,
    replace_owner_records: bool = False,
) -> Registration:
    """Register (or refresh) the caller's session. Idempotent for the same session or owner.

    replace_owner_records (with a session_id): the owner runs one conversation at a time (a
    Claude Code process), so its records under other session ids are an earlier one's
    (`/clear` gives a new id in the same process): they are dropped, the record re-keyed.
    """
    if project is not None:
        validate_project_name(project)
    cwd = validate_cwd(cwd if cwd is not None else current_directory())
    if session_id is not None:
        validate_session_id(session_id)
    owner = owner or resolve_owner()
    owner.watch()  # before the record appears: others may judge it from another PID namespace
    ctx = Context(cwd, project, owner, session_id)
    store = store or open_store()
    now = time.time() if now is None else now

    def change(sessions: dict):
        swept = _sweep(sessions, now)
        with_branch_now(sessions.values())  # stored too: the next reader starts fresher
        replaced = []
        if replace_owner_records and session_id is not None:
            for record in list(sessions.values()):
                if owner_record_matches(record["owner"], owner) and record.get("session_id") not in (session_id, None):
                    replaced.append(sessions.pop(record["id"]))
        existing = _find_own_record(sessions, ctx)
        known_id = session_id if session_id is not None else (existing or {}).get("session_id")
        if existing is not None and session_id is not None and existing.get("session_id") is None:
            del sessions[existing["id"]]  # re-keyed under the session id it now has
            rid = _new_id(sessions, session_id, owner)
        else:
            rid = existing["id"] if existing else _new_id(sessions, session_id, owner)
        record = {
            "id": rid,
            "session_id": known_id,
            "kind": owner.kind,
            "project": ctx.project,
            "project_key": ctx.project_key,
            "project_explicit": ctx.project_explicit,
            "worktree": ctx.worktree,
            "branch": ctx.branch,
            "cwd": cwd,
            "owner": owner.to_record(),
            "started_at": existing["started_at"] if existing else now,
            "last_seen": now,
            "holds": existing.get("holds", []) if existing else [],
        }
        if replaced and existing is None:
            record["started_at"] = min(r["started_at"] for r in replaced)  # the same process all along
        sessions[record["id"]] = record
        conflicts = _conflicts_of(sessions.values(), ctx, record["id"])
        twins = [
            r for r in sessions.values()
            if session_id is not None and r.get("session_id") == session_id and not owner_record_matches(r["owner"], owner)
        ]
        return Registration(record, existing is None, conflicts, swept, twins, replaced), True

    registration = store.update_sessions(change)
    _log_swept(registration.swept)
    _log_sessions("session.ended", registration.replaced, how="replaced by a new conversation (/clear)")
    if registration.created:
        rec = registration.session
        _log_sessions("session.started", [rec], kind=rec["kind"], worktree=rec["worktree"], branch=rec.get("branch"))
    return registration


def validate_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
        raise BadInput("session id must be 1 to 128 characters")
    if any(not (c.isascii() and (c.isalnum() or c in "-_.:")) for c in session_id):
        raise BadInput(f"session id {session_id!r} may contain only letters, digits and - _ . :")
    return session_id


def _find_own_record(sessions: dict, ctx: Context) -> dict | None:
    mine = [record for record in sessions.values() if owner_record_matches(record["owner"], ctx.owner)]  # type: ignore[arg-type]
    if ctx.session_id is not None:
        keyed = [r for r in mine if r["id"] == ctx.session_id or r.get("session_id") == ctx.session_id]
        if keyed:
            return keyed[0]
        # The owner registered before its session id was known (a shell helper, then a hook):
        # that record becomes this session's.
        unkeyed = [r for r in mine if r.get("session_id") is None]
        return max(unkeyed, key=lambda r: r["last_seen"]) if unkeyed else None
    # No session id: the owner's own record, whichever way it was registered (a hook keys
    # by session id, a shell helper of the same Claude process may not know it).
    return max(mine, key=lambda record: record["last_seen"]) if mine else None


def _new_id(sessions: dict, session_id: str | None, owner: Owner) -> str:
    if session_id is not None:
        # The same id live under another owner: a session resumed in two terminals.
        return session_id if session_id not in sessions else f"{session_id}.{owner.pid}"
    while True:
        candidate = "s-" + os.urandom(4).hex()
        if candidate not in sessions:
            return candidate


def _conflicts_of(records, ctx: Context, own_id: str | None = None) -> list[Conflict]:
    found = [
        classify(record, ctx)
        for record in records
        if record["id"] != own_id and not ctx.owns(record)
    ]
    found.sort(key=lambda c: (-LEVEL_ORDER[c.level], c.other["started_at"]))
    return found


def _is_session(record: dict, session_id: str, owner: Owner | None) -> bool:
    """The record of session `session_id`: its exact id, or the id Claude Code gave it when
    `owner` runs it (the same id resumed in another terminal is that terminal's session)."""
    if record["id"] == session_id:
        return True
    return record.get("session_id") == session_id and owner is not None and owner_record_matches(record["owner"], owner)


class Removal:
    __slots__ = ("removed", "swept")

    def __init__(self, removed: list, swept: list) -> None:
        self.removed = removed
        self.swept = swept


def unregister_sessions(
    *,
    pid: int | None = None,
    session_id: str | None = None,
    owner: Owner | None = None,
    store: Store | None = None,
    now: float | None = None,
) -> Removal:
    """Remove the sessions of `pid`, or session `session_id`, or else the caller's own."""
    if pid is None and session_id is None and owner is None:
        owner = resolve_owner()
    store = store or open_store()
    now = time.time() if now is None else now

    def matches(record: dict) -> bool:
        if session_id is not None:
            return _is_session(record, session_id, owner)
        if pid is not None:  # a PID of this machine: the same PID on another one is another process
            return record["owner"]["pid"] == pid and not on_another_kernel(record["owner"])
        return owner_record_matches(record["owner"], owner)  # type: ignore[arg-type]

    def change(sessions: dict):
        removed = [record for record in sessions.values() if matches(record)]
        for record in removed:
            del sessions[record["id"]]
        swept = _sweep(sessions, now)
        return Removal(removed, swept), bool(removed or swept)

    removal = store.update_sessions(change)
    _log_sessions("session.ended", removal.removed, how="unregister")
    _log_swept(removal.swept)
    return removal


def heartbeat(
    *,
    session_id: str | None = None,
    owner: Owner | None = None,
    store: Store | None = None,
    now: float | None = None,
) -> list[dict]:
    """Refresh last_seen of the caller's sessions; NotRegistered when it has none.

    Written atomically but not fsynced (durable=False), because nothing rests on it: while an
    owner's liveness can be checked (its PID, its life lock) last_seen decides nothing, and it
    is only shown ("last sign of life"). A crash of this kernel that undoes the write also
    killed every session it could concern; dead records it swept are swept again at the next
    operation. The two fsyncs were most of what a heartbeat cost a busy machine, on every
    prompt and every turn's end (docs/BENCHMARKS.md). Registration and removal stay durable.
    For the same reason a heartbeat that finds its records seen less than HEARTBEAT_REFRESH_S
    ago, and nobody to sweep, writes nothing (a `claude -p` run's prompt and turn end follow
    its start within a second): no rename on the local store, no write (an AOF fsync) on the
    shared one; what is shown is at most that many seconds old."""
    owner = owner or resolve_owner()
    owner.watch()  # started again if its watchers were killed
    store = store or open_store()
    now = time.time() if now is None else now

    swept_here: list = []

    def change(sessions: dict):
        swept = _sweep(sessions, now)
        swept_here[:] = swept
        touched = []
        stale = False
        for record in sessions.values():
            mine = _is_session(record, session_id, owner) if session_id is not None else owner_record_matches(record["owner"], owner)
            if mine:
                if not 0 <= now - record["last_seen"] < HEARTBEAT_REFRESH_S:  # a clock set back: written too
                    record["last_seen"] = now
                    stale = True
                if owner.life and not record["owner"].get("life"):
                    record["owner"]["life"] = True  # a record from before watchers has one now
                    stale = True
                touched.append(record)
        return touched, stale or bool(swept)

    touched = store.update_sessions(change, durable=False)
    _log_swept(swept_here)
    if not touched:
        who = f"session {session_id}" if session_id else f"owner pid {owner.pid} ({owner.comm})"
        raise NotRegistered(f"no live session registered for {who}", "run 'sessionward register' first")
    return touched


class CheckResult:
    __slots__ = ("context", "conflicts", "swept")

    def __init__(self, context: Context, conflicts: list, swept: list) -> None:
        self.context = context
        self.conflicts = conflicts
        self.swept = swept

    @property
    def level(self) -> str | None:
        return self.conflicts[0].level if self.conflicts else None

    @property
    def has_conflict(self) -> bool:
        return has_conflict(self.conflicts)


def find_conflicts(
    project: str | None = None,
    cwd: str | None = None,
    *,
    owner: Owner | None = None,
    session_id: str | None = None,
    store: Store | None = None,
    now: float | None = None,
) -> CheckResult:
    """Classify every other live session against the caller's project and worktree.

    Without `cwd`, the caller stands where its own registered session works (the origin's
    flow is `register <project> <cwd>`, then `check <project>` from anywhere); a caller with
    no session stands in the current directory.
    """
    if project is not None:
        validate_project_name(project)
    if cwd is not None:
        validate_cwd(cwd)
    owner = owner or resolve_owner()
    live, swept = load_live_sessions(store, now)
    if cwd is None:
        here = validate_cwd(current_directory())
        probe = Context(here, project, owner, session_id)
        own = [record for record in live if probe.owns(record)]
        cwd = own[0]["cwd"] if own and os.path.isdir(own[0]["cwd"]) else here
    ctx = Context(validate_cwd(cwd), project, owner, session_id)
    return CheckResult(ctx, _conflicts_of(live, ctx), swept)


def find_dead_sessions(store: Store | None = None, now: float | None = None) -> list[DeadSession]:
    """Who is dead and why, changing nothing."""
    store = store or open_store()
    now = time.time() if now is None else now
    return _split_dead(store.load_sessions(), now)


def prune_dead_sessions(store: Store | None = None, now: float | None = None) -> list[DeadSession]:
    """Remove every dead record now; return what was removed."""
    store = store or open_store()
    now = time.time() if now is None else now

    def change(sessions: dict):
        swept = _sweep(sessions, now)
        return swept, bool(swept)

    swept = store.update_sessions(change)
    _log_swept(swept)
    return swept


def sweep_stray_life_files(store: Store | None = None, dry_run: bool = False) -> list[str]:
    """Life files (identity.life) that no watcher holds and no session or lock holder names:
    left by watchers killed together with, or apart from, an owner nobody recorded. Removed
    here (`sessionward prune --apply`; doctor counts them, `dry_run`), the one place that does;
    a file a record names is the sweep's (a free lock means its owner is dead). Returns the
    names found (removed unless dry_run)."""
    from sessionward.identity import life

    try:
        names = [name for name in os.listdir(life.life_dir()) if not name.startswith(".")]  # .tmp: being made
    except OSError:
        return []
    if not names:
        return []
    owners = _recorded_owners(store)
    named = {life_key(o.get("boot_id"), o.get("pidns"), o.get("pid"), o.get("start_time")) for o in owners}
    stray = [name for name in sorted(names) if name not in named and life.probe(name) == life.FREE]
    return stray if dry_run else [name for name in stray if forget_life(name)]


def _recorded_owners(store: Store | None = None) -> list[dict]:
    """The owner records the state names: every session's, every lock holder's (and its session's)."""
    from sessionward.locks import NamedLock, known_lock_names

    owners = [record["owner"] for record in (store or open_store()).load_sessions().values()]
    for name in known_lock_names():
        try:
            meta = NamedLock(name).status().meta or {}
        except SessionwardError:
            continue
        owners += [o for o in (meta.get("holder"), (meta.get("session") or {}).get("owner")) if type(o) is dict]
    return owners


def find_unwatched_owners(store: Store | None = None) -> list[dict]:
    """Owners recorded in this PID namespace that live, yet no watcher pair holds their life
    lock: both of the pair were killed (or are stopped) by hand. Here their PID still tells
    they live; from another PID namespace they look dead, and on the shared store their
    leases (their sessions', their locks') lapse within its TTL. Their next hook, or a
    heartbeat, lock or claim command acting for them, starts a pair again (Owner.watch)."""
    from sessionward.identity import life, read_process, this_host

    here = this_host()
    found: list[dict] = []
    looked_at = set()  # life keys: one owner may be named by its sessions and by its locks
    for owner in _recorded_owners(store):
        if not owner.get("life") or type(owner.get("pid")) is not int:
            continue  # written without a watcher (none could start): judged by its PID alone, as it says
        if owner.get("boot_id") != here.boot_id or owner.get("pidns") != here.pidns:
            continue
        key = life_key(owner.get("boot_id"), owner.get("pidns"), owner["pid"], owner.get("start_time"))
        if key is None or key in looked_at:
            continue
        looked_at.add(key)
        info = read_process(owner["pid"])
        if info is None or info.is_zombie or info.start_time != owner.get("start_time"):
            continue  # gone: the sweep's, not a watcher's
        # FREE: its life file is here and nobody holds it (a killed pair leaves it behind).
        # MISSING tells nothing: on the shared store the record may come from another state
        # directory on this machine (another user, another SESSIONWARD_HOME), whose pair holds
        # the life file there and renews the lease.
        if life.probe(key) == life.FREE:
            found.append(owner)
    return found


def find_unknown_sessions(store: Store | None = None, now: float | None = None) -> list[tuple]:
    """(record, verdict) of each session whose owner's liveness cannot be told from here (on
    another kernel): kept, never swept on age; a person clears them (force_remove_sessions)."""
    store = store or open_store()
    now = time.time() if now is None else now
    seen: dict = {}
    judged = [(record, session_liveness(record, now, seen)) for record in store.load_sessions().values()]
    return [(record, verdict) for record, verdict in judged if not verdict.known]


class ForcedRemoval:
    """A session removed by hand (force_remove_sessions), with the verdict it had."""

    __slots__ = ("record", "verdict")

    def __init__(self, record: dict, verdict) -> None:
        self.record = record
        self.verdict = verdict

    def to_json(self) -> dict:
        return {"session": session_view(self.record, self.verdict), "reason": self.verdict.reason}


def force_remove_sessions(ids: list, store: Store | None = None, now: float | None = None) -> list[ForcedRemoval]:
    """Remove the sessions named by `ids` (full ids, or short ones as `sessionward list`
    prints them: a prefix of 8 characters or more) whatever their liveness is but "known alive": an unknown owner (another
    kernel) or a dead one goes; one known to live is refused (SessionAlive, nothing removed),
    since its next hook would register it again: it must be stopped first. An id naming no
    session, or more than one, is BadInput. All or nothing."""
    store = store or open_store()
    now = time.time() if now is None else now

    def change(sessions: dict):
        chosen = [_resolve_session_id(sessions, wanted) for wanted in dict.fromkeys(ids)]
        seen: dict = {}
        judged = [ForcedRemoval(record, session_liveness(record, now, seen)) for record in dict(
            (record["id"], record) for record in chosen).values()]
        alive = [j for j in judged if j.verdict.alive and j.verdict.known]
        if alive:
            raise SessionAlive(alive)
        for removal in judged:
            del sessions[removal.record["id"]]
            owner = removal.record["owner"]
            forget_life(life_key(owner.get("boot_id"), owner.get("pidns"), owner["pid"], owner.get("start_time")))
        return judged, bool(judged)

    removed = store.update_sessions(change)
    for removal in removed:
        _log_sessions("session.removed", [removal.record], reason=removal.verdict.reason)
    return removed


def _resolve_session_id(sessions: dict, wanted: str) -> dict:
    from sessionward._humanize import short_session_id as short_id

    if wanted in sessions:
        return sessions[wanted]
    matches = [record for record in sessions.values() if short_id(record["id"]) == wanted]
    if not matches:
        matches = [record for record in sessions.values() if _names_session(wanted, record["id"])]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(sorted(record["id"] for record in matches))
        raise BadInput(f"session id {wanted!r} names {len(matches)} sessions ({names}): give the full id")
    raise BadInput(f"no session {wanted!r} is registered", "'sessionward list' shows the ids")


def _names_session(wanted: str, session_id: str) -> bool:
    """Is `wanted` the id as people read it, longer than short_session_id: a prefix of at least
    8 characters (short_session_ids lengthens colliding ones), keeping a twin's ".PID"?"""
    base, dot, twin = wanted.rpartition(".") if "." in wanted[8:] else (wanted, "", "")
    if len(base) < 8 or not session_id.startswith(base):
        return False
    return not dot or session_id.endswith("." + twin)

