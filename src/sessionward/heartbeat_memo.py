"""The heartbeat's memo: what a session's last heartbeat found, so that the next one, within
HEARTBEAT_REFRESH_S and with the registry unchanged since, knows it has nothing to do.

Purpose: UserPromptSubmit and Stop heartbeat on every prompt and at every turn's end, and a
heartbeat that writes nothing (registry.heartbeat: the caller's records were seen less than
HEARTBEAT_REFRESH_S ago, nobody to sweep) still read the registry, judged every owner in it
and imported the registry and its store: about a millisecond of a hook's ten, most of what a
heartbeat cost over a bare interpreter (docs/BENCHMARKS.md). The memo answers "nothing to do"
with a stat (one MGET on the shared store) and a read of one small file.

It goes by the registry's version, not by time alone: the memo holds the version the
heartbeat (or the registration: SessionStart, and UserPromptSubmit registering) left
(store.registry_version(store): the file's identity on the local store, taken under the
store's flock; the update counter and the server's epoch on the shared one, returned by the
script that read or wrote), so any change made since, by any process, even an instant later
(a record removed by /end or by hand, a session registered, a store restarted empty), makes
the next heartbeat a whole one. What a memo defers, by at most HEARTBEAT_REFRESH_S, is only
the sweep of an owner that died since (every other operation, and the next whole heartbeat,
still does it).

The caller still makes sure its owner's watcher pair runs (Owner.watch: one open and one
flock), as a whole heartbeat does: a pair killed meanwhile would leave the session dead to
other PID namespaces until then. No memo is kept while the records do not say that a pair
runs (it could not start, or the owner can have none): the whole heartbeat that writes it in
once one does is never skipped.

File: STATE/sessionward/status/<session id>.seen, one line "<last_seen> <pid>:<start_time>:
<pidns>:<boot id> <version>": the oldest last_seen among the owner's records, the owner it was
written for (a resumed session id in a new process is not that owner), the version. Replaced
whole, never fsynced (losing it costs one whole heartbeat); hooks.status_line removes one a
day old.
"""

import os

from sessionward import status_stamp

# A heartbeat rewrites the caller's records only when they were seen this long ago or more
# (registry.heartbeat); so what is shown as their last sign of life is at most this old.
HEARTBEAT_REFRESH_S = 10.0
SEEN_SUFFIX = ".seen"


def _memo_path(session_id: str, state_dir: str | None) -> str | None:
    if not session_id or "/" in session_id or session_id.startswith("."):
        return None
    return os.path.join(status_stamp.status_dir(state_dir), session_id + SEEN_SUFFIX)


def _owner_key(owner) -> str:
    """The process, as identity.same_process tells one (containers sharing ~/.claude: the same
    PID and start tick in two PID namespaces are two processes)."""
    return f"{owner.pid}:{owner.start_time}:{owner.pidns}:{owner.boot_id}"


def is_recent(session_id: str | None, owner, version: str, now: float, state_dir: str | None = None) -> bool:
    """True when this session's last heartbeat, by this owner, found the registry at `version`
    (what it is now) and the owner's records seen less than HEARTBEAT_REFRESH_S before `now`:
    a heartbeat now would write nothing and find nobody to sweep that it did not find then."""
    path = _memo_path(session_id or "", state_dir)
    if path is None or not version:
        return False
    fields = status_stamp.read_first_line(path).split(" ")
    if len(fields) != 3 or fields[1] != _owner_key(owner) or fields[2] != version:
        return False
    try:
        seen = float(fields[0])
    except ValueError:
        return False
    return 0 <= now - seen < HEARTBEAT_REFRESH_S  # a clock set back: a whole heartbeat


def remember(session_id: str | None, owner, version: str, touched: list, state_dir: str | None = None) -> None:
    """After a heartbeat or registration that left `touched` (the owner's records) with the
    registry at `version` (the one its update left: store.registry_version(store)): keep
    that for is_recent. Never raises."""
    path = _memo_path(session_id or "", state_dir)
    if path is None or not version or not touched or " " in version:
        return
    if not all(record["owner"].get("life") for record in touched):
        return  # a pair that starts later must be written into them (registry.heartbeat does)
    seen = min(record["last_seen"] for record in touched)
    status_stamp.replace_small_file(path, f"{seen!r} {_owner_key(owner)} {version}\n".encode())
