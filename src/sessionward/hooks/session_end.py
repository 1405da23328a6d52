"""SessionEnd: unregister, release this session's locks, end its claims: well inside the
1.5 s Claude Code gives all SessionEnd hooks together. Correctness never depends on it: a
session killed without SessionEnd counts as dead to every read at once, and is swept by the
next operation of any other that reads the registry (a heartbeat with nothing to do reads
nothing: heartbeat_memo)."""

import time

from sessionward.hooks import HookEvent

SESSION_END_LOCK_TIMEOUT_S = 0.5


def handle(event: HookEvent) -> dict | None:
    from sessionward.store import open_store

    owner = event.owner
    now = time.time()
    problems = []
    for step in (
        lambda: _unregister(event, owner, open_store(lock_timeout_s=SESSION_END_LOCK_TIMEOUT_S), now),
        lambda: release_owner_locks(owner),
        lambda: _end_claims(owner, now),
    ):
        try:
            step()
        except Exception as error:  # noqa: BLE001 - one failed step must not skip the others
            problems.append(error)
    if problems:
        raise problems[0]
    return None


def _unregister(event: HookEvent, owner, store, now: float) -> None:
    """Unregister, and keep the project, worktree and branch with the session's ended
    activity: the registry forgets them now, `watch` and the views of ended sessions still
    name them (sessionward.activity.note_ended)."""
    from sessionward import activity
    from sessionward.registry import unregister_sessions

    removal = unregister_sessions(owner=owner, store=store, now=now)
    mine = [r for r in removal.removed if event.session_id in (r.get("session_id"), r.get("id"))] or removal.removed
    if mine:
        activity.note_ended(event.session_id, mine[0])


def release_owner_locks(owner) -> list:
    """Release every lock whose holder is the session's own process."""
    from sessionward.store import locks_may_be_held

    if not locks_may_be_held():
        return []  # no lock is held at all (the usual end): sessionward.locks not even imported
    from sessionward.locks import NamedLock, held_by_process, known_lock_names

    released = []
    for name in known_lock_names():
        lock = NamedLock(name, owner=owner)
        state = lock.status()
        if held_by_process(state, owner):
            lock.release()
            released.append(name)
    return released


def _end_claims(owner, now: float) -> None:
    from sessionward.claims import end_claims

    end_claims(owner, now)
