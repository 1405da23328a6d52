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
All four go through this interface (open_store, open_lock, open_claims, note_fence), on
both backends: the local files, and the shared store (store.redis_registry, redis_locks,
redis_claims, redis_notes).

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
           STATE/sessionward/claims/NN.json    claim shards and ended.json, under claims.lock
                                               (permanent) (store.local_claims)
           the note's own directory            the note fence: a flock on the directory
                                               (store.local_notes)
  redis://, rediss://, unix://  the shared store (docs/SHARED_STORE.md): one Redis or Valkey
         server for sessions on several kernels. store.shared: the connection (one per
         process), the user's key prefix, the epoch and the highest fence this host last saw;
         the registry (store.redis_registry), the locks (store.redis_locks), claims
         (store.redis_claims), note fences (store.redis_notes), a lost state's check and
         re-seed (store.redis_state), the owners' leases renewed by their watchers
         (store.redis_lives: how other kernels' sessions and holders are judged alive).
         Chosen, it also tells identity.life to have watchers renew there.

Calling sequence of a lock (sessionward.locks; the manual is in store.local_locks):
    facts = open_lock(name)                    # LockFacts: holder, queue, fence of one lock
    with facts.transition(deadline) as guard:  # every change inside one (local: under the
        state = facts.read()                   # guard's flock; shared: each step one script)
        taken = facts.take(guard, meta, pid, state)   # (created, fence, replaced), or None: taken

Calling sequence of the claims (sessionward.claims; the manual is in store.local_claims):
    facts = open_claims(state_dir, lock_timeout_s)     # ClaimFacts
    facts.claims_on(path), claims_on_each(paths), all_claims(), ended()   # raw, no lock
    facts.update_claims(path, change, fresh, keep_s)   # change(raw) -> new list; pure
    facts.update_ended(change, keep_s)

Calling sequence of a note write (sessionward.notes):
    fence = note_fence(target, timeout_s)      # NoteFence: the note's exclusion, taken
    read the note; fence.check(current, new)   # right before the replace: may refuse
    replace the note; fence.written(new); fence.close()

Calling sequence of the registry:
    store = open_store()                       # the current backend
    sessions = store.load_sessions()           # a consistent snapshot, no lock taken
    result = store.update_sessions(change)     # change(sessions) -> (result, changed), run
                                               # once under the store's lock on the latest
                                               # state; written back atomically if changed
    store.update_sessions(change, durable=False)  # a heartbeat: may be lost to a crash of
                                               # this kernel, never torn (registry.heartbeat)
It is a bug to call update_sessions from inside `change` (the lock is not re-entrant), and
to fork inside it (StoreForked). On the local store `change` runs exactly once. On the shared
store it may run twice: the store reads without its lock and writes only if nobody wrote
since, and when somebody did it runs `change` again, under the lock, on the newer state
(store.redis_registry); only the last run's result is written and returned. So a `change`
must depend on nothing but the sessions it is given, and leave nothing behind but its result
(a caller's variable it sets, not appends to) and what is harmless to do twice (a dead
owner's life file forgotten).

Errors: RegistryLockTimeout, ClaimsLockTimeout, NoteLockTimeout (exit 1) when a lock stays
busy; on the shared store NoteFenced, NoteLagging (exit 1), LeaseLost (exit 1: an update's
guard or a lock's lease lapsed under it, nothing written), StoreStateLost, StoreUnavailable
(exit 3, one line; never retried, never a hang); StateUnwritable,
UnsafeState (exit 3); StateTooNew (exit 3, file untouched); a corrupt file is kept aside
and reported in `notices` (StateCorrupt), not raised: the operation completes.

This module imports nothing at load: hooks import it on their hot path. setting() imports
sessionward.config only when SESSIONWARD_STORE is unset and a configuration file exists; a backend's module is imported only
when it is used.
"""

import os

LOCAL = "local"
ENV_VAR = "SESSIONWARD_STORE"
SHARED = "shared"
SHARED_SCHEMES = ("redis://", "rediss://", "unix://")
_chosen: tuple = ((), LOCAL)  # (what it was chosen from, the backend)
_shared_url = ""  # the URL, when the backend is SHARED
_shared_origin = ENV_VAR  # what named it (setting()), for the advice of StoreUnavailable


class Store:
    """Interface every backend implements (store.local.LocalStore, store.redis_registry.RedisStore).

    `version`: registry_version()'s token for the registry as this store's last
    update_sessions left it, taken while that update still excluded every other (under the
    local flock; by the shared store's script that read or wrote), "" before one or after one
    failed. Exact where a read after the update is not: another process may write in between.

    `locks_held_at_read`: whether any lock was held when this store's last read of the
    registry was made, where that read tells it (the shared store's do, in the same reply:
    locks_may_be_held then costs no round trip); None where it does not (the local store's
    listdir costs no more than a memo would)."""

    notices: list
    version: str = ""
    locks_held_at_read: bool | None = None

    def load_sessions(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def update_sessions(self, change, durable: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def setting() -> tuple[str, str, str | None]:
    """(the store's setting, where it came from, why it cannot be known or None):
    SESSIONWARD_STORE when set (the environment wins, as for every setting), else `store` in
    sessionward.toml (its path), else ("local", "default", None). The store is the exception
    to a configuration file left out for an error (sessionward.config: Config.store_problem):
    its `store` still counts, and a `store` that cannot be read is a reason to refuse, never
    the local files while other processes use the shared store."""
    value = os.environ.get("SESSIONWARD_STORE", "")
    if value:
        return value, ENV_VAR, None
    from sessionward import paths

    if paths.config_file_missing():  # the usual case: the default, without importing config
        return LOCAL, "default", None
    from sessionward.config import load_config

    config = load_config()
    if config.store_problem is not None:
        return "", paths.config_path(), config.store_problem
    if config.sources["store"] == "file":
        return config.store, paths.config_path(), None
    return LOCAL, "default", None


def current() -> str:
    """The backend of this process: LOCAL, or SHARED for a redis://, rediss:// or unix://
    URL (shared_url() gives it), or StoreNotBuilt for anything else. Decided once,
    re-decided only when what decides it changes (the variable, or which configuration file
    is read)."""
    global _chosen
    env = os.environ
    key = (env.get(ENV_VAR, ""), env.get("SESSIONWARD_CONFIG"), env.get("CLAUDE_CONFIG_DIR"), env.get("HOME"))
    if key == _chosen[0]:
        return _chosen[1]
    value, origin, problem = setting()
    from sessionward.errors import StoreNotBuilt

    if problem is not None:
        raise StoreNotBuilt(None, problem, origin)
    value = value.strip()
    if value in ("", LOCAL):
        if _chosen[1] == SHARED:  # this process used the shared store before (the demo, tests)
            from sessionward.identity.life import renew_on_shared_store

            renew_on_shared_store(None)  # watchers it starts from now on renew nothing there
        _chosen = (key, LOCAL)
        return LOCAL

    if value.startswith(SHARED_SCHEMES):
        global _shared_url, _shared_origin
        _shared_url, _shared_origin = value, origin
        _watch_on_shared_store(value)
        _chosen = (key, SHARED)
        return SHARED
    raise StoreNotBuilt(shown(value), "expected 'local' or a redis://, rediss:// or unix:// URL", origin)


def _watch_on_shared_store(url: str) -> None:
    """Owners' watchers renew their leases on the shared store (store.redis_lives): told of
    it when one starts, so a hook that starts none loads nothing of the leases for it."""
    from sessionward.identity.life import renew_on_shared_store

    def settings() -> tuple:
        from sessionward.store.shared import lease_ttl_ms, prefix

        return url, prefix(), lease_ttl_ms()

    renew_on_shared_store(settings)


def shared_url() -> str:
    """The shared store's URL, when current() is SHARED (else "")."""
    return _shared_url if current() == SHARED else ""


def shared_origin(url: str) -> str:
    """What named the shared store at `url`, as messages tell where to fix it:
    SESSIONWARD_STORE, or the path of the sessionward.toml that says `store = URL`."""
    return _shared_origin if url == _shared_url else ENV_VAR


def change_token() -> tuple:
    """What `watch` polls on the shared store besides its local files: () on the local store;
    on the shared one, the change counter every shared write bumps and how many owners'
    leases run (store.shared.change_token, one round trip), or ("unreachable",) so that the
    view takes a snapshot and tells why."""
    if current() != SHARED:
        return ()
    from sessionward.errors import SessionwardError
    from sessionward.store import shared

    try:
        return shared.change_token(shared.connection(_shared_url))
    except SessionwardError:
        return ("unreachable",)


def description() -> str:
    """Which store this process uses, as a view's header says it: "local store", or
    "shared store URL" (its password never shown)."""
    if current() == SHARED:
        return f"shared store {shown(_shared_url)}"
    return "local store"


def shown(value: str) -> str:
    """The setting as it may be printed: a shared store's URL as every message shows it
    (resp.Target.display: without its password, the user name kept); anything else as it
    is, but a password in it replaced by ***."""
    if value.startswith(SHARED_SCHEMES):
        from sessionward.errors import SessionwardError
        from sessionward.store import resp

        try:
            return resp.parse_store_url(value).display
        except SessionwardError:
            pass  # a URL it cannot parse: masked below
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
        take(guard, meta, pid, replacing) -> (created, fence, replaced) | None
                                           the lock is ours, with a fence larger than any
                                           before (the holder annex `meta` gets it);
                                           `replacing`: the state it was judged free or
                                           orphaned in; None: someone else holds it now
        still_mine(created, pid) -> LockState | None   the lock is still the one we took
        remove(state) -> kept_as | None    free it (an unreadable holder is kept aside)
        lost_lease(token, holder) -> LeaseLost | None   the lease `holder` (an owner record)
                                           took with `token` ("": its last one not yet
                                           told of) lapsed; told once
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

    def lost_lease(self, token: str, holder: dict):  # pragma: no cover - interface
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


def registry_version(updated_by: Store | None = None) -> str:
    """A token that differs after any change of the registry (heartbeat_memo compares two):
    cheaply, without the backend's modules. Locally the registry file's identity (every write
    replaces it: a new inode, mtime and size; "none" without one); on the shared store its
    update counter and the server's epoch (one MGET; a server that lost the counter starts it
    again from its clock, store.redis_registry). "" when there is no telling (the file
    unreadable). `updated_by`: a store that just updated the registry: the version its update
    left (Store.version), known without asking again, when it has one."""
    if updated_by is not None and updated_by.version:
        return updated_by.version
    if current() == SHARED:
        from sessionward.store import shared

        return shared.registry_version_and_lock(shared.connection(_shared_url), shared.prefix())[0]
    from sessionward import paths

    return file_version(paths.registry_path())


def registry_version_and_lock(name: str) -> tuple[str, bool]:
    """(registry_version(), whether the named lock may be held), asked together and cheaply
    (sessionward.locks not imported): the Stop hook needs both at every turn's end. The lock:
    its file (present only while held), or its key on the shared store (present only while
    its lease runs), read in the same MGET as the version: one round trip, not two (each a
    wait on the server: docs/BENCHMARKS.md). False: nobody holds it; True: look closer
    (locks.NamedLock.status)."""
    if current() == SHARED:
        from sessionward.store import shared

        return shared.registry_version_and_lock(shared.connection(_shared_url), shared.prefix(), name)
    from sessionward import paths

    return registry_version(), os.path.lexists(paths.lock_file_path(name))


def file_version(path: str) -> str:
    """registry_version()'s token for the local registry file at `path`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "none"
    except OSError:
        return ""
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_ctime_ns}-{st.st_size}"


def locks_may_be_held(read_by: Store | None = None) -> bool:
    """False when no lock at all is held (nor left half-taken), told cheaply: the hooks ask
    before loading sessionward.locks. Locally one listdir (paths.lock_files_present); on the
    shared store one script (shared.locks_held). When `read_by` is a store whose last read of
    the registry told it (Store.locks_held_at_read), that answer, as of that read: no round
    trip more. True: look closer."""
    told = read_by.locks_held_at_read if read_by is not None else None
    if told is not None:
        return told
    if current() == SHARED:
        from sessionward.store import shared

        return shared.locks_held(shared.connection(_shared_url))
    from sessionward import paths

    return paths.lock_files_present()


def lock_names(state_dir: str | None = None) -> list:
    """The names of the current backend's locks (unvalidated: the caller drops bad ones)."""
    if current() == SHARED:
        from sessionward.store import shared

        names = shared.connection(_shared_url).call("SMEMBERS", shared.locks_key(shared.prefix()))
        return sorted(name.decode() for name in names)
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


class ClaimFacts:
    """Interface of the claim records in a backend (store.local_claims.LocalClaims, and
    store.redis_claims.RedisClaims on the shared store): per file the list of claims, and
    the list of ended owners; what they mean is sessionward.claims's. Readers take no lock
    and return what is stored, unvalidated (None when nothing is):

        claims_on(path) -> raw list         claims_on_each(paths) -> {path: raw list}
        all_claims() -> [(path, raw list)]  ended() -> raw list of {"owner", "at"}
        update_claims(path, change, fresh, keep_s)   change(raw) -> the new list, run once
                                            on the latest state under the backend's
                                            exclusion (the shared store may run it again
                                            after a conflicting write: it must be pure);
                                            fresh(raw) -> what of a list is still kept;
                                            keep_s: how long an untouched list is kept
        update_ended(change, keep_s)        change(raw entries) -> the new entries
    ClaimsLockTimeout (exit 1) when the exclusion stays busy."""

    where: str  # what names the claims in messages (the local backend: their directory)

    def claims_on(self, path: str):  # pragma: no cover - interface
        raise NotImplementedError

    def claims_on_each(self, paths: list) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def all_claims(self) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def ended(self):  # pragma: no cover - interface
        raise NotImplementedError

    def update_claims(self, path: str, change, fresh, keep_s: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def update_ended(self, change, keep_s: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def open_claims(state_dir: str | None = None, lock_timeout_s: float = 2.0) -> ClaimFacts:
    """The claim records of the current backend; `lock_timeout_s` bounds how long an update
    waits for the claims' exclusion (a hook must answer)."""
    if current() == SHARED:
        from sessionward.store.redis_claims import RedisClaims

        return RedisClaims(lock_timeout_s)
    from sessionward.store.local_claims import LocalClaims

    return LocalClaims(state_dir, lock_timeout_s)


class NoteFence:
    """Interface of the exclusion one note write runs under (store.local_notes: a flock on the
    note's directory; store.redis_notes: a lease and a fence on the shared store). The
    policy (what is written, expect_sha256) is sessionward.notes's. Made by note_fence();
    then, with the note's bytes read under it:

        waited_s                      how long taking it waited
        check(current, new)           right before the replace: raises when this write may
                                      not land (the shared store: LeaseLost, NoteFenced,
                                      NoteLagging (exit 1), StoreStateLost (exit 3))
        written(new)                  after the replace: what the note holds now
        close()                       always, written or not
    NoteLockTimeout (exit 1, naming the holder) when another writer keeps it past timeout_s."""

    waited_s: float

    def check(self, current: bytes | None, new: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def written(self, new: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def note_fence(target, timeout_s: float) -> NoteFence:
    """Take the note fence of the note at `target` (a sessionward._userpath.Target, its
    directory open) in the current backend, waiting up to `timeout_s`."""
    if current() == SHARED:
        from sessionward.store.redis_notes import RedisNoteFence

        return RedisNoteFence(target, timeout_s)
    from sessionward.store.local_notes import LocalNoteFence

    return LocalNoteFence(target, timeout_s)
