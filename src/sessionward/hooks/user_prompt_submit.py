"""UserPromptSubmit: heartbeat. A session that was never registered (sessionward installed
mid-session, or its record lost), or was ended by /end, is registered now (its person typed
again), and told of conflicts as at start. A record made by a command that knew no session id
(/start's line on a Claude Code without CLAUDE_CODE_SESSION_ID) is keyed by it now, so every
message names the session one way. (Stop only heartbeats: see hooks.stop.)

A prompt a few seconds after the last heartbeat, with the registry unchanged since, has
nothing to do (heartbeat_memo): the registry is not even read."""

import time

from sessionward import heartbeat_memo
from sessionward.hooks import HookEvent, hook_store
from sessionward.store import registry_version


def handle(event: HookEvent) -> dict | None:
    return heartbeat_or_register(event, "UserPromptSubmit")


def heartbeat_or_register(event: HookEvent, event_name: str) -> dict | None:
    now = time.time()
    if heartbeat_memo.is_recent(event.session_id, event.owner, registry_version(), now):
        event.owner.watch()  # as registry.heartbeat does: a killed watcher pair starts again
        return None
    from sessionward.errors import NotRegistered
    from sessionward.registry import heartbeat, register_session

    store = hook_store()
    try:
        touched = heartbeat(owner=event.owner, store=store, now=now)
    except NotRegistered:
        touched = None
    if touched is not None:
        if event.session_id and not any(record.get("session_id") for record in touched):
            # Registered by a command that knew no session id (/start's `!` line where Claude
            # Code sets no CLAUDE_CODE_SESSION_ID, which runs before this hook): key it by the
            # id every hook message uses. Silent: that command told the conflicts already.
            mine = max(touched, key=lambda record: record["last_seen"])
            touched = [register_session(mine["cwd"], mine["project"] if mine.get("project_explicit") else None,
                                        session_id=event.session_id, owner=event.owner, store=store, now=now).session]
        heartbeat_memo.remember(event.session_id, event.owner, registry_version(store), touched)
        return None
    registration = register_session(
        event.cwd, session_id=event.session_id, owner=event.owner, store=store, now=now, replace_owner_records=True
    )
    heartbeat_memo.remember(event.session_id, event.owner, registry_version(store), [registration.session])
    from sessionward.hooks.session_start import conflict_answer

    return conflict_answer(event_name, registration, now, store)
