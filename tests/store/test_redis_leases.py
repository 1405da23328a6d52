"""Leases, fences and the epoch (sessionward.store.redis_leases) against a real redis-server:
many real processes, an interval-overlap sweep, "exactly one winner", kill -9 of holders
and of the server, SIGSTOP pauses; negative controls run the same checks on deliberately
broken scripts to show the checks can fail."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessionward.errors import LeaseLost, StoreStateLost
from sessionward.store import resp
from sessionward.store.redis_leases import RedisLeases, Script, new_token

from store.redis_server import RedisServer, need_redis_server

WORKER = str(Path(__file__).with_name("lease_worker.py"))
PREFIX = resp.key_prefix("tester")  # the workers' prefix


def worker(server, mode, *args, **popen):
    return subprocess.Popen([sys.executable, WORKER, mode, server.url, *map(str, args)],
                            stdout=subprocess.PIPE, text=True, **popen)


def leases_of(server, cls=RedisLeases, known_epoch=""):
    return cls(server.connect(reply_timeout_s=2.0), PREFIX, known_epoch)


# -- exclusion -----------------------------------------------------------------------------


@pytest.mark.slow
def test_exactly_one_winner_among_16_processes(redis_server):
    racers = [worker(redis_server, "race", "end", f"racer{i}", 10_000, stdin=subprocess.PIPE) for i in range(16)]
    try:
        assert [p.stdout.readline().strip() for p in racers] == ["ready"] * 16
        for p in racers:  # all connected and waiting: release them together
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=30)[0].strip() for p in racers]
    finally:
        for p in racers:
            p.kill()
    winners = [r for r in results if r.startswith("won")]
    assert winners == ["won 1"] and results.count("lost") == 15
    assert leases_of(redis_server).holder("end").owner == f"racer{results.index('won 1')}"


@pytest.mark.slow
def test_no_two_holders_overlap_over_many_cycles(redis_server):
    procs, cycles = 16, 20
    workers = [worker(redis_server, "cycles", "end", f"cycler{i}", cycles, 2) for i in range(procs)]
    outputs = [p.communicate(timeout=120)[0] for p in workers]
    assert [p.returncode for p in workers] == [0] * procs
    intervals = sorted(tuple(map(int, line.split())) for out in outputs for line in out.splitlines())
    assert len(intervals) == procs * cycles
    overlaps = [(a, b) for a, b in zip(intervals, intervals[1:]) if b[0] < a[1]]
    assert overlaps == []
    # fences strictly increase in the order the lock was held: each acquire got a new one
    assert [f for _, _, f in intervals] == list(range(1, procs * cycles + 1))


def test_a_retried_acquire_is_mine_not_a_loss(redis_server):
    leases = leases_of(redis_server)
    token = new_token("host:1")
    first = leases.try_acquire("end", token, 5_000)
    again = leases.try_acquire("end", token, 5_000)  # as if the first reply had been lost
    assert again is not None and again.fence == first.fence == 1
    assert leases.try_acquire("end", new_token("host:2"), 5_000) is None


# -- lapse, renewal, LeaseLost ------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_holder_lapses_after_its_ttl_and_not_before(redis_server):
    ttl_ms = 600
    holder = worker(redis_server, "hold", "end", "doomed", ttl_ms)
    try:
        assert holder.stdout.readline().startswith("held")
        time.sleep(0.3)  # it has renewed at least once
        holder.kill()
        holder.wait()
        leases = leases_of(redis_server)
        deadline = leases.holder("end").expires_at_ms  # server clock, after its last renewal
        token = new_token("successor")
        while (lease := leases.try_acquire("end", token, ttl_ms)) is None:
            time.sleep(0.005)
    finally:
        holder.kill()
    got_at = lease.expires_at_ms - ttl_ms  # the server's time at the acquire
    assert deadline <= got_at < deadline + 250


@pytest.mark.slow
def test_renewal_keeps_a_live_holder_for_many_ttls(redis_server):
    ttl_ms = 300
    holder = worker(redis_server, "hold", "end", "steady", ttl_ms)
    try:
        assert holder.stdout.readline().startswith("held")
        leases = leases_of(redis_server)
        stolen, checks, until = None, 0, time.monotonic() + 12 * ttl_ms / 1000
        while time.monotonic() < until and stolen is None:
            stolen = leases.try_acquire("end", new_token("thief"), ttl_ms)
            assert leases.holder("end").owner == "steady"
            checks += 1
            time.sleep(0.02)
        assert stolen is None and checks > 100 and holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_a_paused_holder_is_told_lease_lost_naming_the_new_holder(redis_server):
    ttl_ms = 300
    holder = worker(redis_server, "hold", "end", "sleeper", ttl_ms)
    try:
        assert holder.stdout.readline() == "held 1\n"
        os.kill(holder.pid, signal.SIGSTOP)  # a laptop lid closed, a VM paused
        leases = leases_of(redis_server)
        lease = leases.acquire("end", new_token("newcomer"), 10_000, timeout_s=5)
        assert lease is not None and lease.fence == 2
        os.kill(holder.pid, signal.SIGCONT)
        out, _ = holder.communicate(timeout=10)
    finally:
        holder.kill()
    assert holder.returncode == 1
    assert out.startswith("lost: lease on lock end lapsed ")
    assert "now held by newcomer (fence 2)" in out
    assert leases.holder("end").owner == "newcomer"  # the paused holder took nothing back


# -- negative controls: the same check against broken scripts ------------------------------


BROKEN_RELEASE = Script("redis.call('DEL', KEYS[1]) return {1, 0}")  # no token compare
BROKEN_FENCED_WRITE = Script("return {'ok', ARGV[1]}")  # no high-water mark


class ReleaseWithoutTokenCompare(RedisLeases):
    RELEASE = BROKEN_RELEASE


class WriteWithoutFenceCheck(RedisLeases):
    FENCED_WRITE = BROKEN_FENCED_WRITE


def stale_release_problems(server, cls) -> list:
    """A lapses, B acquires, A releases late: A must be told, B must keep the lock."""
    a, b = leases_of(server, cls), leases_of(server, cls)
    stale = a.try_acquire("end", new_token("stale"), 100)
    time.sleep(0.2)
    fresh = b.try_acquire("end", new_token("fresh"), 10_000)
    problems = []
    try:
        a.release(stale)
        problems.append("the stale release was not told LeaseLost")
    except LeaseLost as lost:
        if lost.holder != "fresh" or lost.fence != fresh.fence:
            problems.append(f"LeaseLost named {lost.holder} fence {lost.fence}")
    now = b.holder("end")
    if now is None or now.owner != "fresh":
        problems.append("the new holder's lock was freed by the stale release")
    return problems


def late_write_problems(server, cls) -> list:
    """A (fence 1) pauses past its lease, B (fence 2) writes, A's late write must be refused."""
    a, b = leases_of(server, cls), leases_of(server, cls)
    old = a.try_acquire("end", new_token("paused"), 100)
    time.sleep(0.2)
    new = b.try_acquire("end", new_token("newer"), 10_000)
    problems = []
    if not b.fenced_write_allowed("note:plan.md", new.fence, new.epoch):
        problems.append("the new holder's write was refused")
    if a.fenced_write_allowed("note:plan.md", old.fence, old.epoch):
        problems.append("the late write with the old fence landed")
    return problems


def test_a_stale_release_keeps_the_new_holders_lock(redis_server):
    assert stale_release_problems(redis_server, RedisLeases) == []


def test_negative_control_release_without_token_compare_is_caught(redis_server):
    assert stale_release_problems(redis_server, ReleaseWithoutTokenCompare) == [
        "the stale release was not told LeaseLost", "the new holder's lock was freed by the stale release"]


def test_a_late_fenced_write_is_refused(redis_server):
    assert late_write_problems(redis_server, RedisLeases) == []


def test_negative_control_write_without_fence_check_is_caught(redis_server):
    assert late_write_problems(redis_server, WriteWithoutFenceCheck) == ["the late write with the old fence landed"]


# -- server restarts -----------------------------------------------------------------------


def five_fenced_writes_then_kill_9(server: RedisServer):
    """Five leases of `end`, each with a fenced note write, then the server killed (kill -9:
    a crash, nothing flushed on the way out) and started again. Returns the last lease."""
    leases = leases_of(server.start())
    for _ in range(5):
        lease = leases.try_acquire("end", new_token("before"), 10_000)
        assert leases.fenced_write_allowed("note:plan.md", lease.fence, lease.epoch)
        leases.release(lease)
    server.kill()
    server.start()
    return lease


@pytest.mark.slow
def test_kill_9_and_restart_with_aof_keeps_fences_and_marks(tmp_path):
    need_redis_server()
    server = RedisServer(tmp_path, aof=True)
    try:
        lease = five_fenced_writes_then_kill_9(server)
        after = leases_of(server, known_epoch=lease.epoch)
        lease2 = after.try_acquire("end", new_token("after"), 10_000)
        assert (lease2.fence, lease2.epoch, lease2.state_lost) == (6, lease.epoch, False)
        assert not after.fenced_write_allowed("note:plan.md", 4, lease.epoch)  # the mark survived
        assert after.fenced_write_allowed("note:plan.md", lease2.fence, lease2.epoch)
    finally:
        server.cleanup()


@pytest.mark.slow
def test_restart_without_aof_refuses_fenced_writes_until_reseeded(tmp_path):
    need_redis_server()
    server = RedisServer(tmp_path, aof=False)
    try:
        lease = five_fenced_writes_then_kill_9(server)
        # the host remembers the epoch it last saw: the first script after the loss finds it gone
        after = leases_of(server, known_epoch=lease.epoch)
        lease2 = after.try_acquire("end", new_token("after"), 10_000)
        assert lease2.fence == 1 and lease2.state_lost and lease2.epoch != lease.epoch
        for fence, epoch in ((lease.fence, lease.epoch), (lease2.fence, lease2.epoch)):
            with pytest.raises(StoreStateLost, match="lost its state"):
                after.fenced_write_allowed("note:plan.md", fence, epoch)
        after.release(lease2)
        assert after.reseed(floor=lease.fence) == 5  # doctor knows the highest mark (from the notes)
        lease3 = after.try_acquire("end", new_token("reseeded"), 10_000)
        assert lease3.fence == 6 and not lease3.state_lost
        assert after.fenced_write_allowed("note:plan.md", lease3.fence, lease3.epoch)
        with pytest.raises(StoreStateLost):  # the stale holder's epoch stays refused
            after.fenced_write_allowed("note:plan.md", 99, lease.epoch)
    finally:
        server.cleanup()
