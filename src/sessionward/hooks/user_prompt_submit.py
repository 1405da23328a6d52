"""UserPromptSubmit: heartbeat. A session that was never registered (sessionward installed
mid-session, or its record lost), or was ended by /end, is registered now (its person typed
again), and told of conflicts as at start. (Stop only heartbeats: see hooks.stop.)"""

import time

from sessionward.hooks import HookEvent, hook_store


def handle(event: HookEvent) -> dict | None:
    return heartbeat_or_register(event, "UserPromptSubmit")


def heartbeat_or_register(event: HookEvent, event_name: str) -> dict | None:
    from sessionward.errors import NotRegistered
    from sessionward.registry import heartbeat, register_session

    now = time.time()
    store = hook_store()
    try:
        heartbeat(owner=event.owner, store=store, now=now)
        return None
    except NotRegistered:
        pass
    registration = register_session(
        event.cwd, session_id=event.session_id, owner=event.owner, store=store, now=now, replace_owner_records=True
    )
    from sessionward.hooks.session_start import conflict_answer

    return conflict_answer(event_name, registration, now)
