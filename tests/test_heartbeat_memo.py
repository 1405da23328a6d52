"""The heartbeat's memo (sessionward.heartbeat_memo): a heartbeat within HEARTBEAT_REFRESH_S
of a whole one, by the same owner, with the registry unchanged since, has nothing to do.
That it then loads nothing of the registry: hooks/test_hook_cost.py; that a change of the
registry in between (an /end) is seen: hooks/test_payloads.py, on both stores."""

import os

from sessionward import heartbeat_memo, status_stamp, store
from sessionward.heartbeat_memo import HEARTBEAT_REFRESH_S, is_recent, remember


class Owner:
    def __init__(self, pid: int, start_time: int, pidns: int = 4026531836) -> None:
        self.pid, self.start_time, self.pidns, self.boot_id = pid, start_time, pidns, "c53a9d36-cd1c-4fd0-8319"


A, A_AGAIN, B = Owner(10, 500), Owner(10, 500), Owner(10, 501)  # B: PID 10 reused
IN_A_CONTAINER = Owner(10, 500, pidns=4026532999)  # the same PID and start tick, another PID namespace


def seen(last_seen: float, life: bool = True) -> dict:
    """An owner's record as the memo reads it: when it was seen, whether its watcher pair runs."""
    return {"last_seen": last_seen, "owner": {"pid": 10, "start_time": 500, "life": life}}


def test_recent_only_for_the_same_owner_and_version_within_the_refresh(tmp_path):
    state = str(tmp_path)
    remember("s1", A, "v1", [seen(100.0), seen(97.5)], state_dir=state)
    assert is_recent("s1", A_AGAIN, "v1", 97.5, state_dir=state)
    assert is_recent("s1", A, "v1", 97.5 + HEARTBEAT_REFRESH_S - 0.01, state_dir=state)  # the oldest record decides
    assert not is_recent("s1", A, "v1", 97.5 + HEARTBEAT_REFRESH_S, state_dir=state)  # due: a whole heartbeat
    assert not is_recent("s1", A, "v1", 97.0, state_dir=state)  # the clock went back
    assert not is_recent("s1", A, "v2", 98.0, state_dir=state)  # the registry changed since
    assert not is_recent("s1", B, "v1", 98.0, state_dir=state)  # another process (resumed, or a PID reused)
    assert not is_recent("s1", IN_A_CONTAINER, "v1", 98.0, state_dir=state)
    assert not is_recent("s2", A, "v1", 98.0, state_dir=state)  # another session
    assert not is_recent(None, A, "v1", 98.0, state_dir=state)
    assert not is_recent("s1", A, "", 98.0, state_dir=state)  # no telling: never recent


def test_nothing_is_remembered_without_a_usable_key_or_version_or_a_watcher_pair(tmp_path):
    # a record that does not say its owner's pair runs must get it written by a whole
    # heartbeat once one does (a pair that could not start before): never skipped
    state = str(tmp_path)
    for session_id, version, touched in (("../x", "v", [seen(1.0)]), (".x", "v", [seen(1.0)]),
                                         ("s", "", [seen(1.0)]), ("s", "a b", [seen(1.0)]),
                                         ("s", "v", []), (None, "v", [seen(1.0)]),
                                         ("s", "v", [seen(1.0), seen(1.0, life=False)])):
        remember(session_id, A, version, touched, state_dir=state)
    assert not os.path.exists(status_stamp.status_dir(state))


def test_a_damaged_memo_is_not_recent(tmp_path):
    state = str(tmp_path)
    remember("s1", A, "v1", [seen(100.0)], state_dir=state)
    path = os.path.join(status_stamp.status_dir(state), "s1" + heartbeat_memo.SEEN_SUFFIX)
    owner = "10:500:4026531836:c53a9d36-cd1c-4fd0-8319"
    for text in ("", "garbage\n", f"x {owner} v1\n", f"100.0 {owner}\n", f"nan {owner} v1\n", "100.0 10:500 v1\n"):
        with open(path, "w") as f:
            f.write(text)
        assert not is_recent("s1", A, "v1", 101.0, state_dir=state), text
    with open(path, "w") as f:
        f.write(f"100.0 {owner} v1\n")  # the control: written whole, it is read
    assert is_recent("s1", A, "v1", 101.0, state_dir=state)


def test_the_local_registry_version_changes_with_every_write(tmp_path, monkeypatch):
    from sessionward.store.local import LocalStore

    monkeypatch.setenv("SESSIONWARD_HOME", str(tmp_path))
    monkeypatch.delenv("SESSIONWARD_STORE", raising=False)
    assert store.registry_version() == "none"
    st = LocalStore(str(tmp_path))
    seen = set()
    for i in range(5):  # same size, same second: still another version each time
        st.update_sessions(lambda sessions, i=i: (sessions.update(x={"n": i % 2}), True), durable=False)
        seen.add(store.registry_version())
    assert len(seen) == 5 and store.registry_version() == store.registry_version()
