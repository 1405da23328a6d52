"""One view of every session, for `sessionward watch`: who needs their person, who is busy
with what, who is in whose way, who holds which lock and which files.

take_snapshot() reads through the feature APIs only (registry.load_live_sessions, which
sweeps the dead as every read does, with the locks each owner holds; activity; claims) and
returns rows ready to show, sorted as a person wants them: sessions waiting for their person
first (a permission dialog before idle input), then those in a conflict, then busy, idle and
recently ended ones.

change_token() is what `watch` polls to know that a new snapshot is worth taking: a few
stat() calls on the files every change goes through (the registry, each activity file, the
claims directory, the status stamp that every lock transition and every watcher's death renews,
the state directory where NAME.lock files come and go) and, on the shared store, one small
script (store.change_token: the counter every shared write bumps, and how many owners'
leases run), since another host's sessions, locks and claims touch no file here;
transcript_token() is the same for
the Claude Code transcript of each session waiting for permission (a refused dialog shows
there alone, see sessionward.activity). They cost a few microseconds, so a
view can poll it several times a second and stay idle otherwise.
"""

import os
import time

from sessionward import activity, paths, store

ENDED_SHOWN_S = 600.0  # an ended session stays in the view this long, then goes
STALE_SWEEP_EVERY_S = 60.0
RECENT_S = 2.0
HEAD_BYTES = 160  # an activity record's state, since and at: enough to tell two writes apart

SORT_KEYS = ("attention", "project", "age", "last")  # `watch`'s sort order, cycled with `s`
_WAIT_RANK: dict = {activity.WAIT_PERMISSION: 0, activity.WAIT_INPUT: 1}
_STATE_RANK = {activity.BUSY: 3, activity.IDLE: 4, None: 4, activity.ENDED: 6}
_LEVEL_RANK: dict = {"strong": 0, "warning": 1, "info": 2}


class Row:
    """One session as the view shows it (text cells are ready; `record`, `activity` and
    `claims` are there for the details)."""

    __slots__ = ("id", "label", "project", "worktree", "branch", "where", "state", "wait", "activity_text",
                 "started_at", "last_at", "locks", "claims", "conflict", "conflicts_with", "record", "activity")
    id: str
    label: str
    project: str | None
    worktree: str | None
    branch: str | None
    where: str | None
    state: str | None
    wait: str | None
    activity_text: str
    started_at: float | None
    last_at: float | None
    locks: list
    claims: list
    conflict: str | None
    conflicts_with: list
    record: dict | None
    activity: dict | None

    def __init__(self, **fields) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    @property
    def waiting(self) -> bool:
        return self.state == activity.WAITING

    def attention_rank(self) -> tuple:
        if self.state == activity.WAITING:
            first = _WAIT_RANK.get(self.wait, 2)
        elif self.conflict in ("strong", "warning") and self.state != activity.ENDED:
            first = 2
        else:
            first = _STATE_RANK.get(self.state, 4)
        return (first, _LEVEL_RANK.get(self.conflict, 2), self.project or "", self.worktree or "", self.id)

    def to_json(self) -> dict:
        return {"id": self.id, "project": self.project, "worktree": self.worktree, "branch": self.branch,
                "where": self.where, "activity": self.activity, "started_at": self.started_at,
                "last_activity_at": self.last_at, "locks": self.locks, "conflict": self.conflict,
                "conflicts_with": self.conflicts_with,
                "claims": [{"path": path, "tool": c.get("tool"), "write": c.get("write"), "at": c.get("at")}
                           for path, c in self.claims]}


class Snapshot:
    __slots__ = ("rows", "taken_at", "projects", "notices", "transcripts")

    def __init__(self, rows: list, taken_at: float, notices: list) -> None:
        self.rows = rows
        self.taken_at = taken_at
        self.projects = sorted({r.project for r in rows if r.project})
        self.notices = notices
        self.transcripts: list = []  # of the sessions waiting: a refused dialog shows only there

    def waiting_count(self) -> int:
        return sum(1 for r in self.rows if r.waiting)


def change_token(state_dir: str | None = None, now: float | None = None) -> tuple:
    """Changes whenever anything take_snapshot() shows may have changed (see the module doc),
    but for the transcripts: transcript_token()."""
    from sessionward.status_stamp import stamp_path
    from sessionward.store.local_claims import claims_dir

    top = state_dir or paths.state_dir()
    token: list = []
    for path in (os.path.join(top, paths.REGISTRY_NAME), claims_dir(top), stamp_path(top), top):
        try:
            info = os.stat(path)
            token.append((info.st_mtime_ns, info.st_size, info.st_ino))
        except OSError:
            token.append(None)
    token.append(_activity_token(activity.activity_dir(top), time.time() if now is None else now))
    token.append(store.change_token())  # the shared store: other hosts write nothing here
    return tuple(token)


def transcript_token(transcripts) -> tuple:
    """Changes when one of `transcripts` (a snapshot's Snapshot.transcripts) is written: a
    refused permission dialog shows there alone (sessionward.activity). One stat each."""
    token: list = []
    for path in transcripts:
        try:
            info = os.stat(path)
            token.append((info.st_mtime_ns, info.st_size))
        except OSError:
            token.append(None)
    return tuple(token)


def _activity_token(directory: str, now: float) -> tuple:
    """Activity files are overwritten in place (sessionward.activity): their mtimes, and for
    one written in the last RECENT_S its first bytes too, since two writes within one tick of
    the kernel's clock leave one mtime."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    mtime_ns = entry.stat(follow_symlinks=False).st_mtime_ns
                except OSError:
                    continue
                head = b""
                if now - mtime_ns / 1e9 < RECENT_S:
                    try:
                        with open(entry.path, "rb") as f:
                            head = f.read(HEAD_BYTES)
                    except OSError:
                        pass
                found.append((entry.name, mtime_ns, head))
    except OSError:
        return ()
    return tuple(sorted(found))


def take_snapshot(now: float | None = None, project: str | None = None) -> Snapshot:
    """Every live session (and those ended in the last ENDED_SHOWN_S), as rows; only
    `project`'s when given."""
    from sessionward import claims as claims_api
    from sessionward._humanize import short_session_ids
    from sessionward.identity.where import where_label
    from sessionward.registry import classify, load_live_sessions

    now = time.time() if now is None else now
    notices: list = []
    live, swept = load_live_sessions(now=now)
    notices += [f"swept dead session {d.record.get('id')} ({d.reason})" for d in swept]
    doings = activity.read_all_activity()
    try:
        every_claim = claims_api.all_claims()
    except Exception as exc:  # noqa: BLE001 - claims are advice: the view goes on without them
        notices.append(f"claims not shown: {exc}")
        every_claim = []
    keys = [_activity_key(r) for r in live]
    ended = [(sid, a) for sid, a in doings.items()
             if a["state"] == activity.ENDED and sid not in keys and now - a["since"] < ENDED_SHOWN_S]
    labels = short_session_ids(keys + [sid for sid, _ in ended])
    rows = []
    for record, key in zip(live, keys):
        doing = doings.get(key)
        others = [classify(other, _AsContext(record)) for other in live if other is not record]  # type: ignore[arg-type]
        shared = [c for c in others if c.level != "info"]
        level = min((c.level for c in shared), key=_LEVEL_RANK.get, default=None)  # type: ignore[arg-type]
        mine = [(path, c) for path, c in every_claim if c.get("ended") is None and claims_api.made_by(c, record["owner"])]
        rows.append(Row(
            id=key, label=labels.get(key, key), project=record.get("project"), worktree=record.get("worktree"),
            branch=record.get("branch"), where=where_label(record.get("owner")),
            state=doing["state"] if doing else None, wait=doing.get("wait") if doing else None,
            activity_text=activity.describe(doing, now), started_at=record.get("started_at"),
            last_at=max(doing["at"] if doing else 0, record.get("last_seen") or 0) or None,
            locks=list(record.get("holds") or []), claims=sorted(mine, key=lambda pc: -pc[1]["at"]),
            conflict=level, conflicts_with=[_activity_key(c.other) for c in shared if c.level == level],
            record=record, activity=doing,
        ))
    for sid, doing in ended:
        rows.append(Row(id=sid, label=labels.get(sid, sid), project=doing.get("project"),
                        worktree=doing.get("worktree") or doing.get("cwd"), branch=doing.get("branch"),
                        where=None, state=activity.ENDED, activity_text=activity.describe(doing, now),
                        last_at=doing["at"], locks=[], claims=[], conflicts_with=[], activity=doing))
    for row in rows:
        row.conflicts_with = [labels.get(k, k) for k in row.conflicts_with]
    if project is not None:
        rows = [r for r in rows if r.project == project]
    _sweep_stale_activity(keys, now)
    snapshot = Snapshot(sort_rows(rows, "attention"), now, notices)
    snapshot.transcripts = [doing["transcript"] for doing in doings.values()
                            if doing["state"] == activity.WAITING and doing.get("transcript")]
    return snapshot


def sort_rows(rows: list, key: str) -> list:
    if key == "project":
        return sorted(rows, key=lambda r: (r.project or "~", r.worktree or "", r.id))
    if key == "age":
        return sorted(rows, key=lambda r: (r.started_at is None, r.started_at or 0, r.id))
    if key == "last":
        return sorted(rows, key=lambda r: (-(r.last_at or 0), r.id))
    return sorted(rows, key=Row.attention_rank)


class _AsContext:
    """A record seen as registry.classify's caller context: one conflict rule, in registry."""

    __slots__ = ("worktree", "project", "project_key", "project_explicit")

    def __init__(self, record: dict) -> None:
        self.worktree = record.get("worktree")
        self.project = record.get("project")
        self.project_key = record.get("project_key") or ""
        self.project_explicit = bool(record.get("project_explicit"))


def _activity_key(record: dict) -> str:
    """Activity is kept by Claude Code's session id; a record made from a shell has none."""
    return record.get("session_id") or record["id"]


_last_sweep = [0.0]


def _sweep_stale_activity(live_keys: list, now: float) -> None:
    if now - _last_sweep[0] >= STALE_SWEEP_EVERY_S:
        _last_sweep[0] = now
        activity.remove_stale(live_keys, now)
