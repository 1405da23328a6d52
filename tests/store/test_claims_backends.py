"""The claims API (sessionward.claims) on both store backends, the local files and a real
redis-server: the same records, the same answers; on Redis the records live on the server
(no local file), expire after HISTORY_S, are not appended to its AOF (no fsync per
PostToolUse), and 16 real processes lose no claim (negative control: without the compare in
the update script they do)."""

import os
import subprocess
import sys
import time

import pytest

from sessionward import claims
from sessionward.claims import (
    HISTORY_S,
    all_claims,
    claims_on,
    claims_on_each,
    end_claims,
    record_claim,
    take_over,
)
from sessionward.store import resp, shared
from sessionward.store.local_claims import claims_dir

T0 = 1_700_000_000.0


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "work" / "notes.md"
    path.parent.mkdir()
    path.write_text("hello\n")
    return str(path)


def record(path, owner, tool="Edit", now=T0, **kwargs):
    return record_claim(path, owner=owner, session_id=kwargs.pop("session_id", f"sess-{owner.pid}"), tool=tool,
                        now=now, **kwargs)


def server_keys(server) -> list:
    with server.connect() as conn:
        return sorted(conn.call("KEYS", "*"))


def test_records_are_where_the_backend_keeps_them(claims_backend, target, owners):
    record(target, owners())
    if claims_backend == "redis":
        assert not os.path.exists(claims_dir())  # nothing went to the local files
        prefix = shared.prefix().encode()
        assert prefix + b"claims:" + target.encode() in server_keys_of_current()
    else:
        assert os.path.isdir(claims_dir())


def server_keys_of_current() -> list:
    from sessionward import store

    return shared.connection(store.shared_url()).call("KEYS", "*")


def test_one_claim_per_owner_two_owners_newest_last(claims_backend, target, owners):
    a, b = owners(), owners()
    first = record(target, a, tool="Read", now=T0)
    assert claims_on(target) == [first]
    second = record(target, b, now=T0 + 1)
    again = record(target, a, now=T0 + 2)
    assert claims_on(target) == [second, again]
    assert claims_on(target + ".other") == []


def test_many_paths_and_all_claims(claims_backend, tmp_path, owners):
    me = owners()
    paths = [str(tmp_path / f"f{i}.txt") for i in range(5)]
    made = {p: record(p, me, now=T0 + i) for i, p in enumerate(paths)}
    assert claims_on_each(paths + [str(tmp_path / "none")]) == {**{p: [c] for p, c in made.items()},
                                                                 str(tmp_path / "none"): []}
    assert sorted(all_claims(), key=lambda pc: pc[0]) == sorted(((p, c) for p, c in made.items()), key=lambda pc: pc[0])


def test_ending_marks_earlier_claims_ended_and_not_later_ones(claims_backend, target, owners):
    me, other = owners(), owners()
    record(target, me, now=T0)
    record(target, other, now=T0 + 1)
    end_claims(me, T0 + 5)
    mine, theirs = claims_on(target)
    assert mine["ended"] == T0 + 5 and theirs["ended"] is None
    record(target, me, now=T0 + 10)  # the same process goes on after /clear
    assert [c["ended"] for c in claims_on(target)] == [None, None]
    end_claims(me, T0 + 20)
    assert [c["ended"] for c in claims_on(target)] == [None, T0 + 20]
    assert [c["ended"] for _, c in all_claims()] == [None, T0 + 20]


def test_a_take_over_is_carried_to_later_claims(claims_backend, target, owners):
    me = owners()
    take_over(target, owner=me, session_id="s", now=T0)
    later = record(target, me, now=T0 + 3)
    assert later["taken"] == T0 and claims.taken_at(claims_on(target)) == T0


def test_claims_past_the_history_go_at_the_next_write(claims_backend, target, owners):
    old, new = owners(), owners()
    record(target, old, now=T0)
    kept = record(target, new, now=T0 + HISTORY_S + 1)
    assert claims_on(target) == [kept]


def test_on_redis_a_record_expires_after_the_history(shared_store, target, owners):
    record(target, owners(), now=time.time())
    end_claims(owners(), time.time())
    prefix = shared.prefix().encode()
    with shared_store.connect() as conn:
        for key in (prefix + b"claims:" + target.encode(), prefix + b"claims-ended"):
            ttl_ms = conn.call("PTTL", key)
            assert HISTORY_S * 1000 - 60_000 < ttl_ms <= HISTORY_S * 1000, key


def test_on_redis_a_claim_record_costs_the_server_no_aof_write(shared_store, target, owners):
    # With `appendfsync always` the server fsyncs its AOF before answering any write appended
    # to it: a claim record (every PostToolUse) is kept out of it (redis_claims._update). The
    # ended owners (once per session) go to it as usual: the control that the size moves.
    def aof_size() -> int:
        with shared_store.connect() as conn:
            info = conn.call("INFO", "persistence").decode()
        assert "aof_enabled:1" in info
        return int(info.split("aof_current_size:")[1].split()[0])

    owner = owners()
    before = aof_size()
    for i in range(3):
        record(target, owner, now=time.time() + i)
    assert aof_size() == before
    assert [c["owner"]["pid"] for c in claims_on(target)] == [owner.pid]  # in the server's memory all the same
    end_claims(owner, time.time())
    assert aof_size() > before


def test_on_redis_an_unreadable_record_reads_as_none_and_is_rewritten(shared_store, target, owners):
    with shared_store.connect() as conn:
        conn.call("SET", shared.prefix() + "claims:" + target, "{not json")
    assert claims_on(target) == []
    made = record(target, owners())
    assert claims_on(target) == [made]


def test_on_redis_a_server_that_is_down_is_one_error_not_a_hang(shared_store, target, tmp_path):
    shared_store.kill()
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        claims_on(target)
    assert type(info.value).__name__ == "StoreUnavailable" and time.monotonic() - started < 1.0
    from helpers import run_cli

    result = run_cli("claim", "take", target, "--pid", str(os.getpid()))
    assert result.returncode == 3 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "unavailable" in result.stderr


# -- many processes ----------------------------------------------------------------------------

CHILD = r"""
import os, sys, time
from sessionward import claims
from sessionward.identity import resolve_owner
if os.environ.get("TEST_CLAIMS_NO_COMPARE") == "1":  # the broken update: writes whatever it read before
    from sessionward.store import redis_claims
    from sessionward.store.resp import Script
    compare = "if current ~= ARGV[1] then return 0 end"
    assert compare in redis_claims.COMPARE_AND_SET_LUA  # else this control breaks nothing
    redis_claims.COMPARE_AND_SET = Script(redis_claims.COMPARE_AND_SET_LUA.replace(compare, ""))
owner = resolve_owner(os.getpid())
go, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.0005)
for i in range(rounds):
    claims.record_claim(path, owner=owner, session_id="s%d" % os.getpid(), tool="Edit",
                        now=time.time(), state={"size": i, "mtime_ns": i, "digest": None})
"""


def run_writers(tmp_path, path, processes=16, rounds=20, broken=False) -> tuple[dict, list]:
    go = str(tmp_path / "go")
    if os.path.exists(go):
        os.unlink(go)
    env = dict(os.environ, TEST_CLAIMS_NO_COMPARE="1" if broken else "0")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, go, path, str(rounds)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * processes
        open(go, "w").close()
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * processes, errors
    latest = {c["owner"]["pid"]: c["state"]["size"] for c in claims_on(path)}
    return latest, [p.pid for p in procs]


@pytest.mark.slow
def test_sixteen_processes_lose_no_claim(claims_backend, tmp_path, target):
    latest, pids = run_writers(tmp_path, target)
    assert latest == {pid: 19 for pid in pids}


@pytest.mark.slow
def test_negative_control_on_redis_without_the_compare_claims_are_lost(shared_store, tmp_path, target):
    """The same workload with the update script's compare removed must lose claims, or the
    test above could not catch an update that is not atomic."""
    for _attempt in range(5):
        latest, pids = run_writers(tmp_path, target, broken=True)
        if latest != {pid: 19 for pid in pids}:
            return
        with shared_store.connect() as conn:
            conn.call("DEL", shared.prefix() + "claims:" + target)
    pytest.fail("16 writers without the compare never lost a claim in 5 runs: the test cannot see it")


def test_the_prefix_is_the_users(shared_store):
    import pwd

    assert shared.prefix() == resp.key_prefix(pwd.getpwuid(os.geteuid()).pw_name)
