"""Stop (the end of a turn): heartbeat, and release the `end` lock if this session still
holds it, so a /end that forgot its release never blocks the other sessions.

Stop never registers: a session without a record at the end of its turn was ended on
purpose (/end unregisters it, in this very turn) and stays ended until its person types
again (UserPromptSubmit registers it then, as it does a session sessionward was installed
into mid-way). A turn's end a few seconds after the last heartbeat, with the registry
unchanged since, skips it (heartbeat_memo)."""

import time

from sessionward import heartbeat_memo, paths
from sessionward.hooks import HookEvent, hook_store
from sessionward.store import registry_version, registry_version_and_lock


def handle(event: HookEvent) -> dict | None:
    now = time.time()
    # Both asked at once (one round trip on the shared store). The turn has ended: this
    # session's process takes no lock between this read and the release below.
    version, end_may_be_held = registry_version_and_lock(paths.END_LOCK)
    if heartbeat_memo.is_recent(event.session_id, event.owner, version, now):
        event.owner.watch()  # as registry.heartbeat does: a killed watcher pair starts again
    else:
        from sessionward.errors import NotRegistered
        from sessionward.registry import heartbeat

        store = hook_store()
        try:
            touched = heartbeat(owner=event.owner, store=store, now=now)
        except NotRegistered:
            pass  # ended (/end), or not yet registered: the next prompt registers it
        else:
            heartbeat_memo.remember(event.session_id, event.owner, registry_version(store), touched)
    released = release_forgotten_end_lock(event.owner) if end_may_be_held else None
    if released is None:
        return None
    return {"systemMessage": f"sessionward: released the end lock this session still held at the end of its turn ({released})"}


def release_forgotten_end_lock(owner) -> str | None:
    """Release `end` when the session's own process holds it (taken by /end's `lock acquire`);
    leave it when a separate live process holds it for this session (an end_with_lock or
    `lock run` command still saving). Returns the holder's description, or None. The hook
    calls it only when the lock may be held (the usual turn end: sessionward.locks not even
    imported)."""
    from sessionward._humanize import short_path
    from sessionward.locks import END_LOCK, NamedLock, held_by_process

    lock = NamedLock(END_LOCK, owner=owner)
    state = lock.status()
    if not held_by_process(state, owner):
        return None
    described = state.describe(short_path)  # read in the TUI, beside the other hooks' ~ paths
    lock.release()
    return described
