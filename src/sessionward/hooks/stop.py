"""Stop (the end of a turn): heartbeat, and release the `end` lock if this session still
holds it, so a /end that forgot its release never blocks the other sessions."""

import os

from sessionward.hooks import HookEvent
from sessionward.hooks.user_prompt_submit import heartbeat_or_register


def handle(event: HookEvent) -> dict | None:
    heartbeat_or_register(event, "Stop", tell=False)
    released = release_forgotten_end_lock(event.owner)
    if released is None:
        return None
    return {"systemMessage": f"sessionward: released the end lock this session still held at the end of its turn ({released})"}


def release_forgotten_end_lock(owner) -> str | None:
    """Release `end` when the session's own process holds it (taken by /end's `lock acquire`);
    leave it when a separate live process holds it for this session (an end_with_lock or
    `lock run` command still saving). Returns the holder's description, or None."""
    from sessionward import paths

    if not os.path.lexists(paths.lock_file_path(paths.END_LOCK)):
        return None  # not held by anyone (the usual turn end): sessionward.locks not even imported
    from sessionward.locks import END_LOCK, NamedLock

    lock = NamedLock(END_LOCK, owner=owner)
    state = lock.status()
    if not state.held or state.pid != owner.pid:
        return None
    described = state.describe()
    lock.release()
    return described
