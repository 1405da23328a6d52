"""register, unregister, heartbeat, list, check, prune, whoami: the registry on the command line."""

import time

from sessionward import registry
from sessionward.cli.render import Output, age_of
from sessionward.errors import EXIT_CONFLICT, EXIT_ENVIRONMENT, EXIT_OK
from sessionward.identity import describe_checkout, owner_record_matches, resolve_owner, resolve_session_id
from sessionward.store import open_store


def _finish(command: str, data: dict, lines, exit_code: int, store) -> Output:
    # A corrupt file found (and kept aside) on the way is an environment problem: exit 3,
    # even though the command itself completed on a fresh registry.
    if store.notices and exit_code == EXIT_OK:
        exit_code = EXIT_ENVIRONMENT
    return Output(command, data, lines, exit_code, store.notices)


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


def session_row(record: dict, style, now: float) -> str:
    """One line naming a session: id, project, worktree, branch, pid, age, what it holds."""
    parts = [
        record["id"],
        f"project {record['project']}",
        style.path(record["worktree"]),
        f"branch {record['branch']}" if record.get("branch") else "no branch",
        registry.owner_label(record),
        f"up {age_of(record['started_at'], now)}",
    ]
    if record.get("holds"):
        parts.append("holds " + ", ".join(record["holds"]))
    return "  ".join(parts)


def conflict_lines(conflicts: list, style, now: float) -> list[str]:
    """Conflicts grouped by level (strongest first), each session on its row, advice once."""
    lines = []
    for level in ("strong", "warning", "info"):
        group = [c for c in conflicts if c.level == level]
        if not group:
            continue
        count = len(group)
        lines.append(f"{style.level(level)}: {count} session{'s' if count > 1 else ''} {_HEADLINE[level][count > 1]}")
        lines += [f"  {session_row(c.other, style, now)}" for c in group]
        if level in _ADVICE:
            lines.append(f"  -> {_ADVICE[level]}")
    return lines


def swept_lines(swept: list) -> list[str]:
    return [
        f"swept dead session {gone.record['id']} (project {gone.record['project']}, pid {gone.record['owner']['pid']}): {gone.reason}"
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
        "session": reg.session,
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
            f"{verb} session {rec['id']}: project {rec['project']}, worktree "
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
            f"unregistered session {rec['id']} (project {rec['project']}, pid {rec['owner']['pid']})"
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
        return [f"heartbeat: session {rec['id']} (project {rec['project']})" for rec in touched]

    return _finish("heartbeat", {"sessions": touched}, lines, EXIT_OK, store)


def run_list(values: dict) -> Output:
    store = open_store()
    live, swept = registry.load_live_sessions(store)
    live.sort(key=lambda r: (r["project"], r["worktree"], r["started_at"]))
    now = time.time()
    try:
        me = resolve_owner()
    except Exception:  # noqa: BLE001 - marking "you" is a nicety, never a reason to fail
        me = None
    data = {"sessions": live, "swept": [d.to_json() for d in swept]}

    def lines(style):
        out = swept_lines(swept)
        if not live:
            return out + ["no live sessions"]
        rows = []
        for rec in live:
            mine = me is not None and owner_record_matches(rec["owner"], me)
            rows.append([
                "*" if mine else " ",
                rec["id"],
                rec["project"],
                style.path(rec["worktree"]),
                rec.get("branch") or "-",
                registry.owner_label(rec).removeprefix("pid "),
                rec["kind"],
                age_of(rec["started_at"], now),
                age_of(rec["last_seen"], now),
            ])
        headers = ["", "ID", "PROJECT", "WORKTREE", "BRANCH", "PID", "KIND", "UP", "SEEN"]
        if not style.tty:  # piped: machine-friendly columns; the "yours" marker is for eyes
            headers, rows = headers[1:], [row[1:] for row in rows]
        out += style.table(headers, rows)
        if style.tty:
            mine = any(row[0] == "*" for row in rows)
            out.append(f"{len(live)} live session{'s' if len(live) != 1 else ''}" + ("; * = yours" if mine else ""))
        return out

    return _finish("list", data, lines, EXIT_OK, store)


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
        out += swept_lines(result.swept)
        if not result.conflicts:
            return out + ["no other live session"]
        out += conflict_lines(result.conflicts, style, now)
        if not result.has_conflict:
            out.append("no conflict: the other sessions work on other projects")
        return out

    return _finish("check", data, lines, EXIT_CONFLICT if result.has_conflict else EXIT_OK, store)


def run_prune(values: dict) -> Output:
    from sessionward.errors import UsageError

    if values["apply"] and values["dry_run"]:
        raise UsageError("prune: --apply and --dry-run exclude each other")
    store = open_store()
    if values["apply"]:
        dead = registry.prune_dead_sessions(store)
    else:
        dead = registry.find_dead_sessions(store)
    data = {"applied": bool(values["apply"]), "dead": [d.to_json() for d in dead]}

    def lines(style):
        if not dead:
            return ["no dead sessions"]
        verb = "removed" if values["apply"] else "dead"
        out = [
            f"{verb}: session {d.record['id']} (project {d.record['project']}, worktree "
            f"{style.path(d.record['worktree'])}, pid {d.record['owner']['pid']}): {d.reason}"
            for d in dead
        ]
        if not values["apply"]:
            out.append("dry run: 'sessionward prune --apply' removes them (any other command sweeps them too)")
        return out

    return _finish("prune", data, lines, EXIT_OK, store)


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
