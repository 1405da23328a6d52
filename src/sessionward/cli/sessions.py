"""register, unregister, heartbeat, list, check, prune, whoami: the registry on the command line."""

import time

from sessionward import registry
from sessionward._humanize import short_session_id, short_session_ids
from sessionward.cli.render import Output, age_of
from sessionward.errors import EXIT_CONFLICT, EXIT_ENVIRONMENT, EXIT_OK
from sessionward.identity import describe_checkout, owner_record_matches, resolve_owner, resolve_session_id
from sessionward.identity.where import HERE, UNKNOWN_ADVICE, liveness_note, owner_where, where_label
from sessionward.store import open_store


def _finish(command: str, data: dict, lines, exit_code: int, store, remarks=()) -> Output:
    # A corrupt file found (and kept aside) on the way is an environment problem: exit 3,
    # even though the command itself completed on a fresh registry.
    if store.notices and exit_code == EXIT_OK:
        exit_code = EXIT_ENVIRONMENT
    return Output(command, data, lines, exit_code, store.notices, remarks)


_HEADLINE = {
    "strong": ("works in this same worktree", "work in this same worktree"),
    "warning": ("works on this project in another worktree", "work on this project in other worktrees"),
    "info": ("works on another project", "work on other projects"),
}
_ADVICE = {
    "strong": "edits and git commands here can overwrite each other's work: prefer a separate "
    "worktree (git worktree add ../<dir> -b <branch>), or agree who edits what",
    "warning": "shared notes, memory and resume files are saved under the /end lock: "
    "save with /end or end_with_lock, never by hand",
}


def session_row(record: dict, style, now: float, label: str | None = None) -> str:
    """One line naming a session: its short id (`label`, when several are shown together),
    project, worktree, branch, pid and where it runs (when not here), how it is known alive
    (when not by its PID), age, what it holds."""
    verdict = registry.session_liveness(record, now)
    parts = [
        label or short_session_id(record["id"]),
        f"project {record['project']}",
        style.path(record["worktree"]),
        f"branch {record['branch']}" if record.get("branch") else "no branch",
        registry.owner_label(record, verdict),
    ]
    if verdict.known and liveness_note(verdict):
        parts.append(liveness_note(verdict))  # an unknown one is in the owner's label already
    parts.append(f"up {age_of(record['started_at'], now)}")
    if record.get("holds"):
        parts.append("holds " + ", ".join(record["holds"]))
    return "  ".join(parts)


def conflict_lines(conflicts: list, style, now: float) -> list[str]:
    """Conflicts grouped by level (strongest first), each session on its row, advice once."""
    lines = []
    labels = short_session_ids(c.other["id"] for c in conflicts)
    for level in ("strong", "warning", "info"):
        group = [c for c in conflicts if c.level == level]
        if not group:
            continue
        count = len(group)
        lines.append(f"{style.level(level)}: {count} session{'s' if count > 1 else ''} {_HEADLINE[level][count > 1]}")
        lines += [f"  {session_row(c.other, style, now, labels[c.other['id']])}{_doing(c.other, style, now)}" for c in group]
        if level in _ADVICE:
            lines.append(f"  -> {_ADVICE[level]}")
    return lines


def _doing(record: dict, style, now: float) -> str:
    """On a terminal, what the session does now (sessionward.activity), when its hooks said."""
    if not style.tty or not record.get("session_id"):
        return ""
    from sessionward import activity

    current = activity.read_activity(record["session_id"])
    return f"  {style.state(activity.describe(current, now), current['state'])}" if current else ""


def swept_lines(swept: list) -> list[str]:
    return [
        f"swept dead session {short_session_id(gone.record['id'])} "
        f"(project {gone.record['project']}, pid {gone.record['owner']['pid']}): {gone.reason}"
        for gone in swept
    ]


def run_register(values: dict) -> Output:
    store = open_store()
    owner = resolve_owner(values["pid"], shell_pid=values["shell_pid"])
    reg = registry.register_session(
        values["cwd"], values["project"], session_id=resolve_session_id(values["session"]), owner=owner, store=store
    )
    now = time.time()
    data = {
        "session": registry.session_view(reg.session),
        "created": reg.created,
        "conflicts": [c.to_json() for c in reg.conflicts],
        "swept": [d.to_json() for d in reg.swept],
    }

    def lines(style):
        if values["quiet"]:
            return []
        rec = reg.session
        verb = "registered" if reg.created else "refreshed"
        branch = f" ({rec['branch']})" if rec.get("branch") else ""
        head = (
            f"{verb} session {short_session_id(rec['id'])}: project {rec['project']}, worktree "
            f"{style.path(rec['worktree'])}{branch}, owner pid {rec['owner']['pid']} ({rec['owner']['comm']})"
        )
        return [head] + swept_lines(reg.swept) + conflict_lines(reg.conflicts, style, now)

    return _finish("register", data, lines, EXIT_OK, store)


def run_unregister(values: dict) -> Output:
    store = open_store()
    owner = None if values["pid"] else resolve_owner(shell_pid=values["shell_pid"])
    removal = registry.unregister_sessions(pid=values["pid"], session_id=values["session"], owner=owner, store=store)
    data = {"removed": removal.removed, "swept": [d.to_json() for d in removal.swept]}

    def lines(style):
        if values["quiet"]:
            return []
        out = [
            f"unregistered session {short_session_id(rec['id'])} (project {rec['project']}, pid {rec['owner']['pid']})"
            for rec in removal.removed
        ]
        if not removal.removed:
            target = (
                f"session {values['session']}" if values["session"]
                else f"pid {values['pid']}" if values["pid"] else "the calling process"
            )
            out.append(f"no session registered for {target}; nothing to do")
        return out + swept_lines(removal.swept)

    return _finish("unregister", data, lines, EXIT_OK, store)


def run_heartbeat(values: dict) -> Output:
    store = open_store()
    owner = resolve_owner(values["pid"], shell_pid=values["shell_pid"])
    touched = registry.heartbeat(session_id=resolve_session_id(values["session"]), owner=owner, store=store)

    def lines(style):
        if values["quiet"]:
            return []
        return [f"heartbeat: session {short_session_id(rec['id'])} (project {rec['project']})" for rec in touched]

    return _finish("heartbeat", {"sessions": touched}, lines, EXIT_OK, store)


_HOW = {"pid": "by PID", "life lock": "by life lock", "unknown": "unknown"}
# The conflict level in words, as `list` names each session's relation to the caller's checkout.
_WITH_YOU = {"strong": ("same worktree", "1;31"), "warning": ("same project", "1;33")}


def _with_you(records: list, me) -> dict:
    """{session id: (words, colour)} for the sessions that share the caller's project or
    worktree (the current directory's): the conflict level in words. Empty when it cannot
    be told (a deleted current directory)."""
    try:
        ctx = registry.Context(registry.validate_cwd(registry.current_directory()), None, me)
    except Exception:  # noqa: BLE001 - a nicety of the table, never a reason to fail
        return {}
    return {rec["id"]: _WITH_YOU[level] for rec in records if not ctx.owns(rec)
            for level in [registry.classify(rec, ctx).level] if level in _WITH_YOU}


def run_list(values: dict) -> Output:
    store = open_store()
    live, swept = registry.load_live_sessions(store)
    live.sort(key=lambda r: (r["project"], r["worktree"], r["started_at"]))
    now = time.time()
    seen: dict = {}
    verdicts = [registry.session_liveness(rec, now, seen) for rec in live]
    try:
        me = resolve_owner()
    except Exception:  # noqa: BLE001 - marking "you" is a nicety, never a reason to fail
        me = None
    from sessionward import activity

    doing = {rec["id"]: activity.read_activity(rec["session_id"]) if rec.get("session_id") else None for rec in live}
    data = {"sessions": [dict(registry.session_view(r, v), activity=doing[r["id"]]) for r, v in zip(live, verdicts)],
            "swept": [d.to_json() for d in swept]}

    def lines(style):
        out = []
        if not live:
            return out + ["no live sessions"]
        rows = []
        labels = short_session_ids(rec["id"] for rec in live)
        shared = _with_you(live, me) if style.tty else {}
        for rec, verdict in zip(live, verdicts):
            mine = me is not None and owner_record_matches(rec["owner"], me)
            where = where_label(rec["owner"]) + ("" if verdict.known else " (unknown)")
            rows.append([
                "*" if mine else " ",
                labels[rec["id"]],  # full ids: --json
                rec["project"],
                style.path(rec["worktree"]),
                rec.get("branch") or "-",
                f"{rec['owner']['pid']}" + (" (stopped)" if verdict.stopped else ""),
                where,
                rec["kind"],
                age_of(rec["started_at"], now),
                age_of(rec["last_seen"], now),
                style.state(activity.describe(doing[rec["id"]], now), (doing[rec["id"]] or {}).get("state")),
                style.paint(*shared[rec["id"]]) if rec["id"] in shared else "",
            ])
        headers = ["", "ID", "PROJECT", "WORKTREE", "BRANCH", "PID", "WHERE", "KIND", "UP", "SEEN", "ACTIVITY",
                   "WITH YOU"]
        if not style.tty:
            # Piped: machine-friendly columns, WHERE and ACTIVITY appended last so that scripts
            # reading the older columns by position still find them; the "yours" marker, the
            # relation to the caller and notes are for eyes.
            order = [1, 2, 3, 4, 5, 7, 8, 9, 6, 10]
            return out + style.table([headers[i] for i in order], [[row[i] for i in order] for row in rows])
        out += style.table(headers, rows)
        mine = any(row[0] == "*" for row in rows)
        out.append(f"{len(live)} live session{'s' if len(live) != 1 else ''}" + ("; * = yours" if mine else ""))
        hows = [v.how if v.known else "unknown" for v in verdicts]
        if any(how != "pid" for how in hows):  # how liveness was told, when not by PID alone
            out.append("liveness: " + ", ".join(f"{hows.count(h)} {_HOW.get(h, h)}" for h in dict.fromkeys(hows)))
        out += [
            f"{labels[rec['id']]}: {verdict.reason}; {UNKNOWN_ADVICE} with "
            f"'sessionward prune --force {labels[rec['id']]}'"
            for rec, verdict in zip(live, verdicts) if not verdict.known
        ]
        return out

    return _finish("list", data, lines, EXIT_OK, store, swept_lines(swept))


def run_check(values: dict) -> Output:
    store = open_store()
    owner = resolve_owner(values["pid"], shell_pid=values["shell_pid"])
    result = registry.find_conflicts(
        values["project"], values["cwd"], owner=owner, session_id=resolve_session_id(values["session"]), store=store
    )
    now = time.time()
    ctx = result.context
    data = {
        "project": ctx.project,
        "worktree": ctx.worktree,
        "branch": ctx.branch,
        "level": result.level,
        "conflict": result.has_conflict,
        "conflicts": [c.to_json() for c in result.conflicts],
        "swept": [d.to_json() for d in result.swept],
    }

    def lines(style):
        branch = f" (branch {ctx.branch})" if ctx.branch else ""
        out = [f"project {style.bold(ctx.project)}, worktree {style.path(ctx.worktree)}{branch}"]
        if not result.conflicts:
            return out + ["no other live session"]
        out += conflict_lines(result.conflicts, style, now)
        if not result.has_conflict:
            out.append("no conflict: the other sessions work on other projects")
        return out

    return _finish("check", data, lines, EXIT_CONFLICT if result.has_conflict else EXIT_OK, store,
                   swept_lines(result.swept))


def run_prune(values: dict) -> Output:
    from sessionward.errors import UsageError

    if values["apply"] and values["dry_run"]:
        raise UsageError("prune: --apply and --dry-run exclude each other")
    if values["force"] and (values["apply"] or values["dry_run"]):
        raise UsageError("prune: --force removes the sessions it names at once: no --apply or --dry-run")
    if values["force"] != bool(values["ids"]):
        raise UsageError("prune: --force needs the ids of the sessions to remove" if values["force"]
                         else "prune: removing sessions by id takes --force (prune --force ID...)")
    store = open_store()
    if values["force"]:
        return _prune_forced(values["ids"], store)
    if values["apply"]:
        dead = registry.prune_dead_sessions(store)
        stray = registry.sweep_stray_life_files(store)
    else:
        dead = registry.find_dead_sessions(store)
        stray = registry.sweep_stray_life_files(store, dry_run=True)
    unknown = registry.find_unknown_sessions(store)
    data = {
        "applied": bool(values["apply"]),
        "dead": [d.to_json() for d in dead],
        "unknown": [{"session": registry.session_view(r, v), "reason": v.reason} for r, v in unknown],
        "life_files": stray,
        "forced": [],
    }

    def lines(style):
        verb = "removed" if values["apply"] else "dead"
        out = [f"{verb}: {_named(d.record, style)}: {d.reason}" for d in dead] or ["no dead sessions"]
        if dead and not values["apply"]:
            out.append("dry run: 'sessionward prune --apply' removes them (any other command sweeps them too)")
        out += [
            f"unknown, kept: {_named(record, style)}: {verdict.reason}; {UNKNOWN_ADVICE} with "
            f"'sessionward prune --force {short_session_id(record['id'])}'"
            for record, verdict in unknown
        ]
        if stray:
            count = f"{len(stray)} life file{'s' if len(stray) != 1 else ''} left by killed watchers"
            out.append(f"removed {count}" if values["apply"] else f"{count}: 'sessionward prune --apply' removes them")
        return out

    return _finish("prune", data, lines, EXIT_OK, store)


def _prune_forced(ids: list, store) -> Output:
    removed = registry.force_remove_sessions(ids, store)
    data = {"applied": True, "dead": [], "unknown": [], "life_files": [], "forced": [r.to_json() for r in removed]}

    def lines(style):
        return [f"removed by hand: {_named(r.record, style)}: {r.verdict.reason}" for r in removed]

    return _finish("prune", data, lines, EXIT_OK, store)


def _named(record: dict, style) -> str:
    """A session as prune names what it removes or keeps: id, project, worktree, and where its
    owner ran."""
    owner, where = record["owner"], owner_where(record["owner"])
    return (f"session {short_session_id(record['id'])} (project {record['project']}, worktree "
            f"{style.path(record['worktree'])}, pid {owner['pid']}{'' if where == HERE else ' ' + where})")


def run_whoami(values: dict) -> Output:
    owner = resolve_owner(values["pid"], shell_pid=values["shell_pid"])
    cwd = registry.validate_cwd(registry.current_directory())
    checkout = describe_checkout(cwd)
    data = {
        "owner": owner.to_record(),
        "resolved_via": owner.via,
        "kind": owner.kind,
        "cwd": cwd,
        "project": checkout.project,
        "project_key": checkout.project_key,
        "worktree": checkout.worktree,
        "branch": checkout.branch,
    }

    def lines(style):
        return [
            f"owner     pid {owner.pid} ({owner.comm}), resolved via {owner.via}; kind {owner.kind}",
            f"project   {checkout.project} ({checkout.project_key})",
            f"worktree  {style.path(checkout.worktree)}" + (f" (branch {checkout.branch})" if checkout.branch else ""),
        ]

    return Output("whoami", data, lines)
