"""The store: where sessionward's shared state lives, behind one interface, chosen once.

Purpose: every fact two sessions must agree on goes through a store, so that a second
backend (a shared Redis, for sessions on several kernels) can hold the same facts with the
same promises. The facts:
  registry     session id -> record (sessionward.registry defines the fields)
  locks        per named lock: the holder (PID file + holder annex), the FIFO wait queue,
               the guard every transition runs under (sessionward.locks, _lockfile)
  claims       per file: who read or edited it, when, leaving what (sessionward.claims)
  note fences  the per-note lock a write or append runs under (sessionward.notes)

What it does not protect: anything written by a process that does not go through it (an
editor, `rm ~/.claude/end.lock`), and nothing about policy: liveness, conflicts and guards
are decided by the features above it, on what it returns.

Backends, chosen once per process by current():
  local  (default; SESSIONWARD_STORE unset, empty or "local") the files, unchanged on disk,
         at the origin's paths and formats: STATE is ~/.claude (or $CLAUDE_CONFIG_DIR, or
         SESSIONWARD_HOME); who owns which file:
           STATE/obsidian_sessions.json        registry, replaced atomically (store.local)
           STATE/sessionward/registry.lock     its permanent flock file, never deleted
           STATE/end.lock, STATE/NAME.lock     a lock's holder PID, exists only while held
           STATE/sessionward/locks/NAME.*      holder annex (.holder.json), guard + queue
                                               (.guard, permanent)
           STATE/sessionward/claims/*.json     claim shards, under claims.lock (permanent)
           the note's own directory            the note fence: a flock on the directory
  redis://, rediss://, unix://  the shared store: not built yet. current() raises
         StoreNotBuilt (exit 3, one line; a hook fails open), so that no process works on
         local files while others would use the shared one.

Calling sequence (the registry; the other facts keep their modules' APIs for now):
    store = open_store()                       # the current backend
    sessions = store.load_sessions()           # a consistent snapshot, no lock taken
    result = store.update_sessions(change)     # change(sessions) -> (result, changed), run
                                               # once under the store's lock on the latest
                                               # state; written back atomically if changed
    store.update_sessions(change, durable=False)  # a heartbeat: may be lost to a crash of
                                               # this kernel, never torn (registry.heartbeat)
It is a bug to call update_sessions from inside `change` (the lock is not re-entrant), and
to fork inside it (StoreForked). update_sessions never retries `change`.

Errors: RegistryLockTimeout (exit 1) when the lock stays busy; StateUnwritable,
UnsafeState (exit 3); StateTooNew (exit 3, file untouched); a corrupt file is kept aside
and reported in `notices` (StateCorrupt), not raised: the operation completes.

This module imports nothing: hooks import it on their hot path. A backend's module is
imported only when it is used.
"""

import os

LOCAL = "local"
SHARED_SCHEMES = ("redis://", "rediss://", "unix://")
_chosen: tuple = ("", LOCAL)  # (the SESSIONWARD_STORE value it was chosen from, the backend)


class Store:
    """Interface every backend implements (LocalStore now; the shared store next)."""

    notices: list

    def load_sessions(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def update_sessions(self, change, durable: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def current() -> str:
    """The backend of this process: "local", or StoreNotBuilt for a shared store's URL (or
    anything else). Decided from SESSIONWARD_STORE once, re-decided only if it changes."""
    global _chosen
    value = os.environ.get("SESSIONWARD_STORE", "")
    if value == _chosen[0]:
        return _chosen[1]
    if value.strip() in ("", LOCAL):
        _chosen = (value, LOCAL)
        return LOCAL
    from sessionward.errors import StoreNotBuilt

    if value.startswith(SHARED_SCHEMES):
        raise StoreNotBuilt(value, "the shared (Redis) store is not built yet; this sessionward has the local store only")
    raise StoreNotBuilt(value, "expected 'local' or a redis://, rediss:// or unix:// URL")


def open_store(lock_timeout_s: float | None = None) -> Store:
    """The registry of the current backend. `lock_timeout_s` bounds how long an update waits
    for the store's lock (hooks wait less than commands)."""
    current()
    from sessionward.store.local import LocalStore

    return LocalStore() if lock_timeout_s is None else LocalStore(lock_timeout_s=lock_timeout_s)
