"""Who and where: processes, the owner of a session, and the checkout it works in.

    process   ProcessInfo, this_host(), owner_is_alive(): PID + start time + host id
              (boot id BOOT_ID_UNKNOWN when unreadable: unknown, never another boot)
    life      ensure_watcher(), probe(): life locks, liveness across PID namespaces
    owner     resolve_owner(): which long-lived process a session's life is tied to
    checkout  describe_checkout(): project, worktree and branch, read from git's files;
              branch_now(): a recorded worktree's branch as it is now

Everything here reads /proc and small files; nothing spawns a process (hooks call it),
except life.ensure_watcher(), which starts an owner's watcher once.
"""

from sessionward.identity.checkout import Checkout, branch_now, describe_checkout
from sessionward.identity.owner import Owner, owner_record_matches, resolve_owner, resolve_session_id
from sessionward.identity.process import (
    BOOT_ID_UNKNOWN,
    HostId,
    Liveness,
    ProcessInfo,
    owner_is_alive,
    process_started_at,
    read_process,
    record_liveness,
    same_process,
    this_host,
    where_it_runs,
)

__all__ = [
    "BOOT_ID_UNKNOWN",
    "Checkout",
    "HostId",
    "Liveness",
    "Owner",
    "ProcessInfo",
    "branch_now",
    "describe_checkout",
    "owner_is_alive",
    "owner_record_matches",
    "process_started_at",
    "record_liveness",
    "where_it_runs",
    "read_process",
    "resolve_owner",
    "resolve_session_id",
    "same_process",
    "this_host",
]
