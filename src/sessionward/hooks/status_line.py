"""`sessionward status-line`: one compact row for Claude Code's statusLine.

Reads the statusLine JSON on stdin (session_id, cwd, workspace.current_dir, ...); prints
who else works here: other sessions in this worktree, on this project elsewhere, and who
holds the end lock. Empty or broken input is fine: the current directory stands in.
Runs every few seconds while Claude Code is idle, so it only reads (the dead it finds are
left to the next hook to sweep) and never waits for a lock.
"""

import os
import time


def status_row(raw: bytes, environ=None) -> str:
    from sessionward import _jsoncodec as jsoncodec
    from sessionward.identity import describe_checkout, owner_record_matches, resolve_owner
    from sessionward.registry import Context, LEVEL_STRONG, LEVEL_WARNING, classify, session_liveness
    from sessionward.store import open_store

    env = os.environ if environ is None else environ
    try:
        payload = jsoncodec.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        payload = {}
    payload = payload if type(payload) is dict else {}
    workspace = payload.get("workspace") if type(payload.get("workspace")) is dict else {}
    cwd = workspace.get("current_dir") or payload.get("cwd")
    if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd or not os.path.isdir(cwd):
        cwd = os.getcwd()
    try:
        owner = resolve_owner(environ=env)
    except Exception:  # noqa: BLE001 - a row without "me" still counts the others
        owner = None
    now = time.time()
    ctx = Context(cwd, None, owner, None)
    seen: dict = {}
    here = elsewhere = 0
    for record in open_store().load_sessions().values():
        if owner is not None and owner_record_matches(record["owner"], owner):
            continue
        if not session_liveness(record, now, seen):
            continue
        level = classify(record, ctx).level
        here += level == LEVEL_STRONG
        elsewhere += level == LEVEL_WARNING
    project = describe_checkout(cwd).project
    parts = []
    if here:
        parts.append(f"{here} other session{'s' if here > 1 else ''} in this worktree")
    if elsewhere:
        parts.append(f"{elsewhere} on {project} elsewhere")
    if not parts:
        parts.append(f"no other session on {project}")
    parts.append(_end_holder(owner))
    return "sessionward: " + " · ".join(p for p in parts if p)


def _end_holder(owner) -> str:
    from sessionward.locks import END_LOCK, NamedLock

    state = NamedLock(END_LOCK).status()
    if not state.held:
        return ""
    session = ((state.meta or {}).get("session") or {})
    # A `lock run` command of this session holds it under its own PID: the session is ours.
    if owner is not None and owner.pid in (state.pid, (session.get("owner") or {}).get("pid")):
        return "end lock: this session"
    who = session.get("id") or f"pid {state.pid}"
    who = who[:8] if len(who) > 12 else who
    return f"end lock: {who}"
