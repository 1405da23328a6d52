"""The store: where sessionward's shared state lives, behind one interface, chosen once.

Purpose: every fact two sessions must agree on goes through a store, so that a second
backend (a shared Redis, for sessions on several kernels) can hold the same facts with the
same promises. The facts:
  registry     session id -> record (sessionward.registry defines the fields)
  locks        per named lock: the holder (PID file + holder annex), the FIFO wait queue,
               the fence counter, the guard every transition runs under (open_lock;
               the rules are sessionward.locks's)
  claims       per file: who read or edited it, when, leaving what (sessionward.claims)
  note fences  the per-note lock a write or append runs under (sessionward.notes)
Through this interface so far: the registry and the locks, on both backends. Claims and note
fences still keep their own files in their modules (the paths below); they move here next,
unchanged on disk.

What it does not protect: anything written by a process that does not go through it (an
editor, `rm ~/.claude/end.lock`), and nothing about policy: liveness, conflicts and guards
are decided by the features above it, on what it returns.

Backends, chosen once per process by current(), from SESSIONWARD_STORE or, when that is
unset or empty, `store = "..."` in sessionward.toml (setting() says which, and doctor shows it):
  local  (default; the setting absent, empty or "local") the files, unchanged on disk,
         at the origin's paths and formats: STATE is ~/.claude (or $CLAUDE_CONFIG_DIR, or
         SESSIONWARD_HOME); who owns which file:
           STATE/obsidian_sessions.json        registry, replaced atomically (store.local)
           STATE/sessionward/registry.lock     its permanent flock file, never deleted
           STATE/end.lock, STATE/NAME.lock     a lock's holder PID, exists only while held
           STATE/sessionward/locks/NAME.*      holder annex (.holder.json), guard + queue +
                                               fence counter (.guard, permanent)
                                               (store.local_locks)
           STATE/sessionward/claims/*.json     claim shards, under claims.lock (permanent)
           the note's own directory            the note fence: a flock on the directory
  redis://, rediss://, unix://  the shared store (docs/SHARED_STORE.md): one Redis or Valkey
         server for sessions on several kernels. store.shared: the connection (one per
         process), the user's key prefix, the epoch this host last saw; the registry
         (store.redis_registry), the locks (store.redis_locks), the owners' leases renewed
         by their watchers (store.redis_lives: how other kernels' sessions and holders are
         judged alive). Chosen, it also tells identity.life to have watchers renew there.

Calling sequence of a lock (sessionward.locks; the manual is in store.local_locks):
    facts = open_lock(name)                    # LockFacts: holder, queue, fence of one lock
    with facts.transition(deadline) as guard:  # every change inside one (local: under the
        state = facts.read()                   # guard's flock; shared: each step one script)
        taken = facts.take(guard, meta, pid, state)   # (created, fence), or None: taken meanwhile

Calling sequence of the registry:
    store = open_store()                       # the current backend
    sessions = store.load_sessions()           # a consistent snapshot, no lock taken
    result = store.update_sessions(change)     # change(sessions) -> (result, changed), run
                                               # once under the store's lock on the latest
                                               # state; written back atomically if changed
    store.update_sessions(change, durable=False)  # a heartbeat: may be lost to a crash of
                                               # this kernel, never torn (registry.heartbeat)
It is a bug to call update_sessions from inside `change` (the lock is not re-entrant), and
to fork inside it (StoreForked). update_sessions never retries `change`.

Errors: RegistryLockTimeout (exit 1) when the lock stays busy; LeaseLost (exit 1) when a
shared-store update's guard lapsed under it (nothing written); StoreUnavailable (exit 3, one
line; never retried, never a hang); StateUnwritable,
UnsafeState (exit 3); StateTooNew (exit 3, file untouched); a corrupt file is kept aside
and reported in `notices` (StateCorrupt), not raised: the operation completes.

This module imports nothing at load: hooks import it on their hot path. setting() imports
sessionward.config only when SESSIONWARD_STORE is unset; a backend's module is imported only
when it is used.
"""

import os

LOCAL = "local"
ENV_VAR = "SESSIONWARD_STORE"
SHARED = "shared"
SHARED_SCHEMES = ("redis://", "rediss://", "unix://")
_chosen: tuple = ((), LOCAL)  # (what it was chosen from, the backend)
_shared_url = ""  # the URL, when the backend is SHARED
# Whether a shared URL is accepted (False: refused before any state is touched, so that no
# process works on local files while others would use the shared store). The registry and the
# locks have their shared backends; claims and note fences are being wired beside them.
SHARED_BUILT = True


class Store:
    """Interface every backend implements (LocalStore now; the shared store next)."""

    notices: list

    def load_sessions(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def update_sessions(self, change, durable: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def setting() -> tuple[str, str]:
    """(the store's setting, where it came from): SESSIONWARD_STORE when set (the environment
    wins, as for every setting), else `store` in sessionward.toml (its path), else
    ("local", "default"). A configuration file with an error is left out as a whole, as
    sessionward.config does for every key: the default stands in, and the problem is told."""
    value = os.environ.get("SESSIONWARD_STORE", "")
    if value:
        return value, ENV_VAR
    from sessionward.config import load_config  # only here: the environment decides most calls

    config = load_config()
    if config.sources["store"] == "file" and config.path:
        return config.store, config.path
    return LOCAL, "default"


def current() -> str:
    """The backend of this process: LOCAL, or SHARED for a redis://, rediss:// or unix://
    URL (shared_url() gives it) once SHARED_BUILT, or StoreNotBuilt for anything else. Decided once,
    re-decided only when what decides it changes (the variable, or which configuration file
    is read)."""
    global _chosen
    env = os.environ
    key = (env.get(ENV_VAR, ""), env.get("SESSIONWARD_CONFIG"), env.get("CLAUDE_CONFIG_DIR"), env.get("HOME"))
    if key == _chosen[0]:
        return _chosen[1]
    value, origin = setting()
    value = value.strip()
    if value in ("", LOCAL):
        _chosen = (key, LOCAL)
        return LOCAL
    from sessionward.errors import StoreNotBuilt

    if value.startswith(SHARED_SCHEMES):
        if not SHARED_BUILT:
            why = "the shared (Redis) store is not built yet; this sessionward has the local store only"
            raise StoreNotBuilt(shown(value), why, origin)
        global _shared_url
        _shared_url = value
        _watch_on_shared_store(value)
        _chosen = (key, SHARED)
        return SHARED
    raise StoreNotBuilt(shown(value), "expected 'local' or a redis://, rediss:// or unix:// URL", origin)


def _watch_on_shared_store(url: str) -> None:
    """Owners' watchers renew their leases on the shared store (store.redis_lives)."""
    from sessionward.identity.life import renew_on_shared_store
    from sessionward.store.redis_lives import lease_ttl_ms
    from sessionward.store.shared import prefix

    renew_on_shared_store(url, prefix(), lease_ttl_ms())


def shared_url() -> str:
    """The shared store's URL, when current() is SHARED (else "")."""
    return _shared_url if current() == SHARED else ""


def _not_built(what: str):
    """StoreNotBuilt for a fact whose shared backend is missing (a bug while SHARED_BUILT)."""
    from sessionward.errors import StoreNotBuilt

    return StoreNotBuilt(shown(_shared_url), f"{what} on the shared (Redis) store is not built yet", ENV_VAR)


def shown(value: str) -> str:
    """The setting as it may be printed: a URL's password replaced by ***."""
    scheme, sep, rest = value.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return value
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{path}"


class LockFacts:
    """Interface of one named lock's facts in a backend (store.local_locks.LocalLock now):
    the holder, the FIFO wait queue and the fence counter, changed only inside a transition.
    The rules (who may take, re-enter, release, take over) are sessionward.locks's.

        transition(deadline) -> a context manager holding the lock's guard; inside it:
            .first_waiter(), .join_queue(me), .leave_queue(me)
        read(judge=True) -> LockState      the holder as it is now (a snapshot outside a transition)
        queue() -> [waiter records]        a snapshot of the wait queue
        take(guard, meta, pid, replacing) -> (created, fence) | None
                                           the lock is ours, with a fence larger than any
                                           before (the holder annex `meta` gets it);
                                           `replacing`: the state it was judged free or
                                           orphaned in; None: someone else holds it now
        still_mine(created, pid) -> LockState | None   the lock is still the one we took
        remove(state) -> kept_as | None    free it (an unreadable holder is kept aside)
        lost_lease(token) -> LeaseLost | None   the lease of `token` lapsed by time
        tidy(), close()
    """

    path: str  # what names the lock in messages (the local backend: NAME.lock)

    def transition(self, deadline: float):  # pragma: no cover - interface
        raise NotImplementedError

    def read(self, judge: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def queue(self) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def take(self, guard, meta: dict, pid: int, replacing) -> tuple | None:  # pragma: no cover - interface
        raise NotImplementedError

    def lost_lease(self, token: str):  # pragma: no cover - interface
        raise NotImplementedError

    def still_mine(self, created: tuple, pid: int):  # pragma: no cover - interface
        raise NotImplementedError

    def remove(self, state) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def tidy(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def open_lock(name: str, state_dir: str | None = None) -> LockFacts:
    """The facts of the named lock `name` (validated by the caller) in the current backend."""
    if current() == SHARED:
        from sessionward.store.redis_locks import RedisLock

        return RedisLock(name, _shared_url)
    from sessionward.store.local_locks import LocalLock

    return LocalLock(name, state_dir)


def lock_names(state_dir: str | None = None) -> list:
    """The names of the current backend's locks (unvalidated: the caller drops bad ones)."""
    if current() == SHARED:
        from sessionward.store import shared

        return sorted(name.decode() for name in shared.connection(_shared_url).call("SMEMBERS", shared.prefix() + "locks"))
    from sessionward.store.local_locks import lock_names as local_lock_names

    return local_lock_names(state_dir)


def open_store(lock_timeout_s: float | None = None) -> Store:
    """The registry of the current backend. `lock_timeout_s` bounds how long an update waits
    for the store's lock (hooks wait less than commands)."""
    if current() == SHARED:
        from sessionward.store.redis_registry import RedisStore

        return RedisStore(_shared_url) if lock_timeout_s is None else RedisStore(_shared_url, lock_timeout_s)
    from sessionward.store.local import LocalStore

    return LocalStore() if lock_timeout_s is None else LocalStore(lock_timeout_s=lock_timeout_s)
