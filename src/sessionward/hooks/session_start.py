"""SessionStart: register the session (re-keyed on /clear), sweep the dead, and tell the
model about real conflicts only: another live session on the same project or in the same
worktree, or this very session id open in another process. Nothing at all otherwise."""

import time

from sessionward.hooks import HookEvent, hook_store


def handle(event: HookEvent) -> dict | None:
    from sessionward.registry import register_session

    now = time.time()
    store = hook_store()

    def register(_owner=None):
        return register_session(
            event.cwd,
            session_id=event.session_id,
            owner=event.owner,
            store=store,
            now=now,
            replace_owner_records=True,
        )

    if event.defer_watchers:
        from sessionward.identity.life import defer_starts

        # The first SessionStart of a Claude Code process starts its watcher pair: only once
        # answered, so the pair's interpreter does not start beside this hook's own work. Should
        # the pair not start then, registered again: the record says so, as it would have.
        defer_starts(on_failure=register)
    registration = register()
    from sessionward import heartbeat_memo
    from sessionward.store import registry_version

    # the prompt that follows within seconds (`claude -p`) has nothing to do
    heartbeat_memo.remember(event.session_id, event.owner, registry_version(store), [registration.session])
    _clean_orphaned_locks()
    if not (registration.has_conflict or registration.twins):
        return None  # nobody to tell of (conflict_answer would say nothing)
    return conflict_answer("SessionStart", registration, now, store)


def conflict_answer(event_name: str, registration, now: float, store) -> dict | None:
    """additionalContext for the model and one line for the user, when another live session
    shares the project or the worktree, or the session id; None otherwise. `store`: the one
    the registration was made on (whether a lock is held may have come with its read)."""
    from sessionward._humanize import short_session_id
    from sessionward.registry import LEVEL_STRONG, LEVEL_WARNING, describe_sessions, with_holds_now

    strong = [c.other for c in registration.conflicts if c.level == LEVEL_STRONG]
    nearby = [c.other for c in registration.conflicts if c.level == LEVEL_WARNING]
    twins = registration.twins
    if not (strong or nearby or twins):
        return None
    with_holds_now(strong + nearby + twins, store)
    me = registration.session
    lines = ["sessionward: other Claude Code sessions are working near this one right now."]
    user = []
    if twins:
        lines.append(
            f"This same session ({short_session_id(me['session_id'])}) is also open in another process: "
            + describe_sessions(twins, now)
            + ". Both append to one transcript; close one of them."
        )
        user.append(f"this session is also open in pid {twins[0]['owner']['pid']}")
    if strong:
        lines.append(
            f"In this same worktree ({me['worktree']}): "
            + describe_sessions(strong, now)
            + ". Edits to the same files and git commands that switch branches, stash, reset or rebase "
            "affect both sessions; sessionward asks before such git commands and before editing a "
            "file the other session edited recently."
        )
        user.append(_count(strong, "other session") + " in this worktree: " + _named(strong, now))
    if nearby:
        lines.append(
            f"On the same project ({me['project']}) in other worktrees: "
            + describe_sessions(nearby, now)
            + ". Shared notes, memory and the resume file are saved under the end lock: save them with /end."
        )
        user.append(_count(nearby, "other session") + f" on project {me['project']} in other worktrees: "
                    + _named(nearby, now, with_worktree=True))
    return {
        "systemMessage": "sessionward: " + "; ".join(user),
        "hookSpecificOutput": {"hookEventName": event_name, "additionalContext": "\n".join(lines)},
    }


def _named(records: list, now: float, with_worktree: bool = False) -> str:
    """"3f2a9c1e (branch main, started 12m ago), 9b1c0d2e (branch topic, started 1m ago, in
    container devbox)": each session as the person reads it (its short id, its worktree's
    branch now, when it started, where it runs when not here), the first few, then how many
    more ('sessionward list' shows all)."""
    from sessionward._humanize import format_age, short_path, short_session_ids
    from sessionward.identity.where import HERE, owner_where
    from sessionward.registry import MAX_NAMED_SESSIONS

    labels = short_session_ids(r["id"] for r in records)
    named = []
    for record in records[:MAX_NAMED_SESSIONS]:
        facts = [short_path(record["worktree"])] if with_worktree else []
        facts.append(f"branch {record['branch']}" if record.get("branch") else "no branch")
        facts.append(f"started {format_age(now - record['started_at'])} ago")
        where = owner_where(record["owner"])
        if where != HERE:  # the common case stays short
            facts.append(where)
        named.append(f"{labels[record['id']]} ({', '.join(facts)})")
    more = len(records) - MAX_NAMED_SESSIONS
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _clean_orphaned_locks() -> None:
    from sessionward import paths

    try:
        if not paths.lock_files_present():
            return  # the usual start: nothing held, orphaned or half-written; locks not even imported
        from sessionward.locks import cleanup_orphans

        cleanup_orphans()
    except Exception:  # noqa: BLE001 - best effort: the next acquire takes orphans over anyway
        pass
