"""The registry on a real redis-server (store.redis_registry): the local store's semantics.

* No lost update (test_concurrent_updates_lose_nothing): 16 processes run 30 updates each
  (add w{i}-s{j}, remove it again when j is odd), each also counting itself in one shared
  record (read, +1): the final set and the count are known exactly. Its negative
  control (SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK=1: read, change, write back, no guard) loses
  some (likely, not certain: up to three attempts). Under that contention most updates find
  their first, unguarded view stale and are done again under the guard: both paths run.
* An update whose view went stale writes nothing of it
  (test_an_update_whose_view_went_stale_is_done_again_on_the_newer_state): paused inside
  its first, unguarded `change` while another update commits, its write is refused and its
  `change` runs again on the newer state: both counts land, the other writer's record stays.
* A guarded writer whose guard lapsed writes nothing
  (test_a_writer_paused_past_its_guard_writes_nothing): its view made stale once, its second
  `change` (under the guard) sleeps past GUARD_LEASE_MS while another writer gets in and
  commits; the paused one is told (LeaseLost) and its record never lands.
* An update is one writing script when nobody races it (test_an_update_is_one_write):
  counted on the server (its count of changes), since each is an fsync at appendfsync always.
* Owners' leases (test_an_idle_owner_stays_alive_and_its_exit_drops_its_lease): the watcher of
  a registered owner renews its lease on the server every third of the TTL, for many TTLs
  without any hook; when the owner exits its watcher drops it at once.
"""

import os
import subprocess
import sys
import time

import pytest

from sessionward import store
from sessionward.store import redis_registry, shared

from helpers import run_cli
from store.test_local_store import record

WORKERS = 16
UPDATES = 30

WORKER = r"""
import os, sys
from sessionward.store import open_store
sys.path.insert(0, sys.argv[3])
from store.test_local_store import record
i, pid = int(sys.argv[1]), int(sys.argv[2])
st = open_store(lock_timeout_s=60)
def count(sessions):  # every update also counts itself in one shared record: read, then +1
    counter = sessions.setdefault("counter", record("counter", pid))
    counter["last_seen"] += 1
for j in range(%d):
    rid = f"w{i}-s{j}"
    def add(sessions):
        count(sessions)
        sessions[rid] = record(rid, pid)
        return None, True
    st.update_sessions(add)
    if j %% 2:
        def drop(sessions):
            count(sessions)
            sessions.pop(rid, None)
            return None, True
        st.update_sessions(drop)
""" % UPDATES


@pytest.fixture
def on_redis(redis_server, monkeypatch):
    monkeypatch.setenv("SESSIONWARD_STORE", redis_server.url)
    yield redis_server
    from sessionward.identity import life, process
    from sessionward.store import shared

    shared.disconnect()
    process.use_shared_lives(None)
    life.renew_on_shared_store(None)


def run_workers(env_extra: dict) -> set:
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, **env_extra)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(os.getpid()), tests_dir], env=env)
             for i in range(WORKERS)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    sessions = store.open_store().load_sessions()
    counted = sessions.pop("counter")["last_seen"] - 1.0  # record() starts it at 1.0
    return set(sessions), counted


def expected() -> tuple:
    return ({f"w{i}-s{j}" for i in range(WORKERS) for j in range(UPDATES) if j % 2 == 0},
            WORKERS * (UPDATES + UPDATES // 2))


@pytest.mark.slow
def test_concurrent_updates_lose_nothing(on_redis):
    assert run_workers({}) == expected()


@pytest.mark.slow
def test_without_the_guard_updates_are_lost(on_redis):
    outcomes = []
    for _ in range(3):
        on_redis.connect().call("FLUSHDB")
        found = run_workers({"SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK": "1"})
        outcomes.append((len(found[0] ^ expected()[0]), expected()[1] - found[1]))
        if found != expected():
            return
    pytest.fail(f"3 unguarded runs kept every update {outcomes}: the workload cannot catch a missing guard")


PAUSED = r"""
import sys, time
from sessionward.errors import LeaseLost
from sessionward.store import open_store
sys.path.insert(0, sys.argv[2])
from store.test_local_store import record
runs = []
def change(sessions):
    runs.append(1)
    if len(runs) == 1:  # unguarded: made stale by the test's update, then done again under the guard
        print("first", flush=True)
        sys.stdin.readline()
        return None, True
    print("in", flush=True)
    time.sleep(float(sys.argv[3]))  # paused past the guard's lease
    sessions["paused"] = record("paused", int(sys.argv[1]))
    return None, True
try:
    open_store().update_sessions(change)
except LeaseLost as lost:
    print("lost", lost, flush=True)
else:
    print("written", flush=True)
"""


def test_a_writer_paused_past_its_guard_writes_nothing(on_redis):
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pause = redis_registry.GUARD_LEASE_MS / 1000 + 0.5
    paused = subprocess.Popen([sys.executable, "-c", PAUSED, str(os.getpid()), tests_dir, str(pause)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert paused.stdout.readline() == "first\n"

    def bump(sessions):
        sessions["bump"] = record("bump", os.getpid())
        return None, True

    def newcomer(sessions):
        sessions.pop("bump", None)
        sessions["newcomer"] = record("newcomer", os.getpid())
        return None, True

    store.open_store().update_sessions(bump)  # the paused writer's first view is stale now
    paused.stdin.write("go\n")
    paused.stdin.close()
    assert paused.stdout.readline() == "in\n"  # its second run, under the guard
    started = time.monotonic()
    store.open_store().update_sessions(newcomer)  # waits for the paused one's guard to lapse, no longer
    waited = time.monotonic() - started
    assert redis_registry.GUARD_LEASE_MS / 1000 - 0.5 < waited < pause, waited
    out = paused.stdout.read()
    assert paused.wait(timeout=30) == 0
    assert out.startswith("lost lease on lock registry lapsed: "), out
    assert set(store.open_store().load_sessions()) == {"newcomer"}


STALE = r"""
import sys, time
from sessionward.store import open_store
sys.path.insert(0, sys.argv[2])
from store.test_local_store import record
runs = []
def change(sessions):
    runs.append(1)
    counter = sessions.setdefault("counter", record("counter", int(sys.argv[1])))
    counter["last_seen"] += 1
    if len(runs) == 1:
        print("in", flush=True)
        sys.stdin.readline()  # paused until the other writer has committed
    return None, True
open_store().update_sessions(change)
print("runs", len(runs), flush=True)
"""


def test_an_update_whose_view_went_stale_is_done_again_on_the_newer_state(on_redis):
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paused = subprocess.Popen([sys.executable, "-c", STALE, str(os.getpid()), tests_dir],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert paused.stdout.readline() == "in\n"

    def newcomer(sessions):  # not kept waiting: the paused update holds no guard
        counter = sessions.setdefault("counter", record("counter", os.getpid()))
        counter["last_seen"] += 1
        sessions["newcomer"] = record("newcomer", os.getpid())
        return None, True

    started = time.monotonic()
    store.open_store().update_sessions(newcomer)
    assert time.monotonic() - started < redis_registry.GUARD_LEASE_MS / 1000 / 2
    paused.stdin.write("go\n")
    paused.stdin.close()
    assert paused.stdout.read() == "runs 2\n"
    assert paused.wait(timeout=30) == 0
    sessions = store.open_store().load_sessions()
    assert set(sessions) == {"counter", "newcomer"}
    assert sessions["counter"]["last_seen"] == 3.0  # 1.0, +1 by each: neither count lost


def test_an_update_is_one_write(on_redis, monkeypatch):
    st = store.open_store()
    conn = shared.connection(on_redis.url)
    writes = []
    run_script = conn.run_script

    def changes() -> int:
        info = conn.call("INFO", "persistence").decode()
        return int(info.split("rdb_changes_since_last_save:")[1].split()[0])

    def counted(script, keys, args):
        before = changes()
        reply = run_script(script, keys, args)
        if changes() != before:
            writes.append(script)
        return reply

    monkeypatch.setattr(conn, "run_script", counted)

    def register(sessions):
        sessions["s1"] = record("s1", os.getpid())
        return None, True

    def beat(sessions):
        sessions["s1"]["last_seen"] += 1
        return None, True

    st.update_sessions(register)
    assert writes == [redis_registry.TRY_COMMIT]  # the fsyncs of one update at appendfsync always
    writes.clear()
    st.update_sessions(beat, durable=False)
    assert writes == [redis_registry.TRY_COMMIT]
    writes.clear()
    st.update_sessions(lambda sessions: (None, False))  # nothing changed: no write
    assert writes == []
    assert st.load_sessions()["s1"]["last_seen"] == 2.0


def test_an_idle_owner_stays_alive_and_its_exit_drops_its_lease(on_redis, monkeypatch, tmp_path):
    monkeypatch.setenv("SESSIONWARD_TEST_LEASE_TTL_MS", "600")
    owner = subprocess.Popen(["sleep", "600"])
    try:
        assert run_cli("register", "p", str(tmp_path), "--pid", str(owner.pid), "--quiet").returncode == 0
        conn = on_redis.connect()
        alive = shared.prefix() + "alive"
        [key] = conn.call("ZRANGE", alive, 0, -1)
        assert f"-{owner.pid}-" in key.decode()  # its life key: boot id, PID namespace, PID, start time
        for _ in range(10):  # 5 TTLs, no hook at all: its watcher renews
            time.sleep(0.3)
            left = conn.call("ZSCORE", alive, key)
            now_ms = int(conn.call("TIME")[0]) * 1000
            assert left is not None and float(left) > now_ms, "the idle owner's lease lapsed"
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 0.5  # well inside one TTL: the watcher drops it as the owner exits
        while conn.call("ZSCORE", alive, key) is not None:
            assert time.monotonic() < deadline, "the lease outlived its owner"
            time.sleep(0.01)
    finally:
        owner.kill()
        owner.wait()


def test_the_registry_version_changes_with_every_commit_and_with_the_servers_epoch(on_redis):
    # heartbeat_memo compares two of these: a heartbeat whose memo holds the version now has
    # nothing to do. Any commit (another process's too), and a server that lost its data and
    # counted up again under a new epoch, must give another version.
    st = store.open_store()
    empty = store.registry_version()

    def register(sessions):
        sessions["s1"] = record("s1", os.getpid())
        return None, True

    st.update_sessions(register)
    once = store.registry_version()
    assert once != empty and store.registry_version() == once  # a read changes nothing
    other = subprocess.run([sys.executable, "-c", "from sessionward.store import open_store\n"
                            "open_store().update_sessions(lambda s: (s.pop('s1'), True))"], capture_output=True, text=True)
    assert other.returncode == 0, other.stderr
    other_version = store.registry_version()
    assert other_version not in (once, empty)
    conn = shared.connection(on_redis.url)
    p = shared.prefix()
    # A server that lost its keys (no AOF, a FLUSHDB), no epoch made yet by a lock or a note:
    # the same number of commits since must not give the same version again (it starts from
    # the server's clock, not from 0)
    conn.call("DEL", p + "registry:version", p + "sessions")
    st.update_sessions(register)
    st.update_sessions(lambda s: (s.pop("s1"), True))
    assert store.registry_version() != other_version
    conn.call("SET", p + "epoch", "a1")
    before = store.registry_version()
    conn.call("SET", p + "epoch", "b2")  # a server restarted empty, its counter back where it was
    assert store.registry_version() != before


def test_a_read_brings_the_leases_of_other_kernels_only(on_redis, monkeypatch):
    # identity.process consults a lease only for an owner whose boot id is known and not this
    # kernel's; ours stay on the server (on one machine a read brings none back, however many
    # sessions run). A boot id that merely starts like ours is another kernel's; one that
    # life_key writes "unknown" (characters it does not take) is consulted, so it is brought.
    # A lapsed lease is not brought, and a read removes nothing (it appends nothing to the AOF).
    from sessionward.identity import process

    here = process.this_host().boot_id
    conn = shared.connection(on_redis.url)
    alive = shared.prefix() + "alive"
    now_ms = int(time.time() * 1000)
    others = {"0f1e2d3c-0000-4000-8000-00000000000a-4026531836-77-1001", f"{here}-1-4026531836-77-1001",
              "unknown-4026531836-77-1001"}
    mine = {f"{here}-4026531836-77-1001"}
    for member in others | mine:
        conn.call("ZADD", alive, now_ms + 600_000, member)
    conn.call("ZADD", alive, now_ms - 1_000, "0f1e2d3c-0000-4000-8000-00000000000b-4026531836-78-1001")  # lapsed
    st = store.open_store()
    st.load_sessions()
    assert set(process._shared_lives) == others
    assert all(500_000 < left <= 600_000 for left in process._shared_lives.values())  # ms left, by the server's clock
    assert conn.call("ZCARD", alive) == 5  # nothing removed by a read
    process.use_shared_lives(None)
    st.update_sessions(lambda sessions: (None, False))  # an update's read too
    assert set(process._shared_lives) == others
    def register(sessions):
        sessions["s1"] = record("s1", os.getpid())
        return None, True

    st.update_sessions(register)  # a write takes the lapsed ones out
    assert set(m.decode() for m in conn.call("ZRANGE", alive, 0, -1)) >= others | mine
    assert conn.call("ZSCORE", alive, "0f1e2d3c-0000-4000-8000-00000000000b-4026531836-78-1001") is None
    # This kernel's boot id one life_key writes "unknown": ours cannot be told apart, all are brought
    monkeypatch.setattr(process, "_this_host", process.HostId(process.this_host().hostname, "Boot-ID-In-Capitals", None))
    st.load_sessions()
    assert set(process._shared_lives) >= others | mine
    # This kernel's boot id unknown: no lease is ever consulted, none is brought
    monkeypatch.setattr(process, "_this_host", process.HostId(process.this_host().hostname, process.BOOT_ID_UNKNOWN, None))
    st.load_sessions()
    assert process._shared_lives == {}


def test_an_update_done_again_under_the_guard_knows_the_version_its_commit_made(on_redis):
    # Store.version after the guarded path (the unguarded write found its view stale): the
    # version COMMIT made, what registry_version() reads right after.
    st = store.open_store()
    conn = shared.connection(on_redis.url)
    runs = []

    def change(sessions):
        runs.append(1)
        if len(runs) == 1:  # another writer commits between this read and its write
            conn.call("INCR", shared.prefix() + shared.REGISTRY_VERSION_KEY)
        sessions["s1"] = record("s1", os.getpid())
        return None, True

    st.update_sessions(change)
    assert len(runs) == 2  # done again, under the guard
    assert st.version == store.registry_version() and st.version.startswith(
        conn.call("GET", shared.prefix() + shared.REGISTRY_VERSION_KEY).decode() + "@")


def test_every_read_says_whether_a_lock_is_held_and_a_failed_one_says_nothing(on_redis):
    # Store.locks_held_at_read: what with_holds_now and the hooks that name other sessions'
    # locks go by, without asking the server again. It must follow the lock at each read (LOAD,
    # PEEK, BEGIN), and a read that failed (here the guard held past the timeout) must not leave
    # an earlier answer behind: store.locks_may_be_held then asks the server itself.
    from sessionward.errors import RegistryLockTimeout
    from sessionward.locks import NamedLock

    st = store.open_store()
    touch = lambda sessions: (None, True)  # noqa: E731 - a write of nothing: PEEK, then TRY_COMMIT
    st.load_sessions()
    assert st.locks_held_at_read is False
    lock = NamedLock("end")
    lock.acquire(timeout=1)
    st.load_sessions()
    assert st.locks_held_at_read is True
    lock.release()
    st.update_sessions(touch)
    assert st.locks_held_at_read is False and not store.locks_may_be_held(st)

    conn = shared.connection(on_redis.url)
    conn.call("SET", shared.prefix() + "registry:guard", "elsewhere:1#token", "PX", 60000)
    lock.acquire(timeout=1)
    quick = redis_registry.RedisStore(on_redis.url, lock_timeout_s=0.05)
    quick.load_sessions()
    assert quick.locks_held_at_read is True
    lock.release()
    quick.load_sessions()
    assert quick.locks_held_at_read is False
    lock.acquire(timeout=1)
    with pytest.raises(RegistryLockTimeout):
        quick.update_sessions(touch)
    assert quick.locks_held_at_read is None and store.locks_may_be_held(quick)
    lock.release()
    conn.call("DEL", shared.prefix() + "registry:guard")
    st.update_sessions(lambda sessions: (None, True))
    assert st.locks_held_at_read is False

