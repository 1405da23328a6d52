"""The registry's records as every backend keeps them (store.local, store.redis_registry):
what a valid record is, what of the records a status line shows, and how long an update
waits for the registry's exclusion.

Purpose: both backends read the same records, and a reader must never trip over one it
cannot use; a record that fails record_is_valid is left out of every read (the local store
keeps the document it came in aside when it is not a document at all). What the fields mean
is sessionward.registry's. This module imports nothing of either backend, so that one does
not load the other's (a hook on the shared store loads nothing of the local files' store).
"""

from sessionward.identity.process import PID_MAX_LIMIT

TYPE_CHECKING = False  # mypy reads the block as true; at run time typing is not imported
if TYPE_CHECKING:
    from typing import Any

REGISTRY_LOCK_TIMEOUT_S = 5.0  # the origin's registry lock timeout
_DISABLE_LOCK_ENV = "SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK"  # test-only: updates without the exclusion


def shown_on_status_lines(sessions: dict) -> dict:
    """What of the registry a status line shows: which sessions there are, whose, and where
    they work. A heartbeat (last_seen) changes none of it, so it renews no status stamp."""
    return {
        key: (rec.get("session_id"), rec.get("project"), rec.get("project_key"), rec.get("project_explicit"),
              rec.get("worktree"), rec.get("branch"), _snapshot(rec.get("owner")))
        for key, rec in sessions.items()
    }


def _snapshot(owner):
    # A copy, not the record's own dict, which `change` may edit in place (a heartbeat sets
    # owner["life"]); owner records are flat, so a shallow copy is a snapshot (repr was 3x slower).
    return dict(owner) if isinstance(owner, dict) else owner


_STRING_FIELDS = ("project", "project_key", "worktree", "cwd", "kind")
_OPTIONAL_STRING_OWNER_FIELDS = ("host", "boot_id")


def record_is_valid(key: str, rec: "Any") -> bool:
    """The fields every reader relies on are there, with the right types (`rec`: any JSON
    value as decoded; anything but such a record is invalid).

    Runs on every record of every read, so it is written for speed: direct indexing inside
    one try, `type(x) is T` instead of isinstance chains.
    """
    try:
        if rec["id"] != key or not key:
            return False
        owner = rec["owner"]
        pid = owner["pid"]
        if type(pid) is not int or not 0 < pid <= PID_MAX_LIMIT:
            return False
        for name in ("start_time", "pidns"):
            value = owner.get(name)
            if value is not None and (type(value) is not int or not 0 <= value < 2**63):
                return False
        for name in _OPTIONAL_STRING_OWNER_FIELDS:
            value = owner.get(name)
            if value is not None and type(value) is not str:
                return False
        for name in _STRING_FIELDS:
            if type(rec[name]) is not str:
                return False
        branch = rec.get("branch")
        if branch is not None and type(branch) is not str:
            return False
        holds = rec.get("holds", ())
        if type(holds) is not list and holds != () or any(type(h) is not str for h in holds):
            return False
        for name in ("started_at", "last_seen"):
            value = rec[name]
            # finite only: inf - inf and NaN - NaN are NaN, which is unequal to itself
            if (type(value) is not float and type(value) is not int) or value - value != 0:
                return False
        for name in _STRING_FIELDS:
            if "\0" in rec[name]:
                return False
    except (KeyError, TypeError, AttributeError):
        return False
    return True
