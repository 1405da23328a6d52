"""The store: where the registry lives, behind one small interface.

A Store holds the session registry as a mapping of session id -> record (a plain dict, see
`sessionward.registry` for its fields) and offers exactly two operations:

  load_sessions()          a consistent snapshot, without taking any lock
  update_sessions(change, durable=True)
                           run `change(sessions) -> (result, changed)` as one transaction:
                           under the store's lock, on the latest state; written back
                           atomically when `changed` is true; returns `result`.
                           durable=False (a heartbeat) may lose the write to a crash of
                           this kernel, never tear it: what it writes is worth nothing
                           once the kernel is gone (see registry.heartbeat)

What it does not do: decide liveness, conflicts or policy (that is the registry's job), or
retry `change` (it runs exactly once per call, so it may have side effects on its result).
It is a bug to call update_sessions from inside `change` (the lock is not re-entrant).

Problems found on the way (a corrupt file kept aside) are appended to `notices` instead of
failing the operation: the caller reports them. Stores are chosen once, by open_store().
"""


class Store:
    """Interface every store implements (LocalStore now; a shared store later)."""

    notices: list

    def load_sessions(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def update_sessions(self, change, durable: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def open_store(lock_timeout_s: float | None = None) -> Store:
    """The store this process should use. Today: the local JSON registry. `lock_timeout_s`
    bounds how long an update waits for the store's lock (hooks wait less than commands)."""
    from sessionward.store.local import LocalStore

    return LocalStore() if lock_timeout_s is None else LocalStore(lock_timeout_s=lock_timeout_s)
