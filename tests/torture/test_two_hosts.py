"""Torture: two hosts sharing one Redis (the shared store), and nothing else.

Each "host" is a real `unshare -fpu --mount-proc` (tests/torture/test_namespaces.py's
Namespace): its own hostname, its own boot id (a file bind-mounted over
/proc/sys/kernel/random/boot_id in its mount namespace), its own PID namespace, and its own
state directory (SESSIONWARD_HOME, HOME): no file is shared, only the server, a real
redis-server on 127.0.0.1 with AOF. Each host reaches it through its own loopback TCP proxy
(Proxy), which the test stops (every connection cut, new ones closed at once) and resumes:
a network partition of that host alone. Leases last TTL_MS here
(SESSIONWARD_TEST_LEASE_TTL_MS, test-only; 30 s by default): the watchers renew every third.

What must hold (issue 13's tests):
  - each host sees the other's sessions, alive by their leases;
  - a lock held on A blocks B, naming A's holder;
  - A killed whole (kill -9 of its PID 1) -> B gets the lock once A's lease lapsed, never
    before, and A's sessions are dead to B from then on;
  - an idle live session on A, for many TTLs without any command on A, is never lost, nor
    the lock it holds;
  - A partitioned -> B takes over after the TTL and not before; A's holder, back, is told
    LeaseLost naming B at its next operation (its release), and frees nothing of B's;
  - the negative control: with the token compare off (SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED=1)
    A's stale release frees B's lock.
Counted in the torture summary as part "two hosts": a live session lost is a lost update, a
moment two hosts held `end` a double holder.
"""

import importlib.util
import json
import os
import socket
import sys
import threading
import time

import pytest

from store.redis_server import RedisServer, need_redis_server

_spec = importlib.util.spec_from_file_location("_namespaces", os.path.join(os.path.dirname(__file__), "test_namespaces.py"))
ns = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ns)

pytestmark = pytest.mark.skipif(not ns._can_unshare(), reason="needs root and unshare -p -u -m")

PART = "two hosts"
TTL_MS = 2000
TTL_S = TTL_MS / 1000
SLACK_S = 1.0  # a loaded 2-core machine: how late a lapse may be seen after it happened
BOOT_A = "aaaaaaaa-0000-4000-8000-00000000000a"
BOOT_B = "bbbbbbbb-0000-4000-8000-00000000000b"


class Proxy:
    """A loopback TCP proxy to the server: pause() cuts every connection and closes new ones
    at once (a partition), resume() lets them through again."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.paused = False
        self.open: set = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self) -> None:
        with self.lock:
            self.paused = True
            cut, self.open = self.open, set()
        for s in cut:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def resume(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.pause()
        self.listener.close()


class Host:
    """One simulated machine: a Namespace with its own state directory, reaching the shared
    store through its own Proxy."""

    def __init__(self, space, env: dict, proxy: Proxy) -> None:
        self.space, self.env, self.proxy = space, env, proxy
        self.name = space.hostname

    def run(self, *args, env=None):
        return self.space.run(*args, env={**self.env, **(env or {})})

    def json(self, *args) -> dict:
        done = self.run(*args, "--json")
        return json.loads(done.stdout)

    def keeper(self) -> int:
        return self.space.spawn(["sleep", "3600"], env=self.env)



@pytest.fixture
def two_hosts(tally, tmp_path):
    """(t, server, [host A, host B]) with one redis-server on 127.0.0.1; all torn down after."""
    need_redis_server()
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", tcp=True).start()
    t = tally(PART)
    cli = ns.Cli(t, str(tmp_path))
    hosts = []
    try:
        for name, boot in (("host-a", BOOT_A), ("host-b", BOOT_B)):
            base = tmp_path / name
            (base / "home").mkdir(parents=True)
            proxy = Proxy(server.port)
            env = {"SESSIONWARD_HOME": str(base / "state"), "HOME": str(base / "home"),
                   "SESSIONWARD_STORE": f"redis://127.0.0.1:{proxy.port}/0", "SESSIONWARD_TEST_LEASE_TTL_MS": str(TTL_MS)}
            hosts.append(Host(ns.Namespace(cli, tmp_path, hostname=name, boot_id=boot), env, proxy))
        assert hosts[0].space.pidns != hosts[1].space.pidns and hosts[0].space.boot_id == BOOT_A
        yield t, server, hosts
    finally:
        for host in hosts:
            host.space.close()
            host.proxy.close()
        server.cleanup()


def sessions_seen(host: Host) -> dict:
    """{project: liveness} of the sessions `host` lists (judged there)."""
    return {s["project"]: s["liveness"] for s in host.json("list")["result"]["sessions"]}


def lock_state(host: Host) -> dict:
    [state] = host.json("lock", "status", "end")["result"]["locks"]
    return state


def lease_left_s(server) -> float:
    """What the server says is left of the end lock's lease (-2: no lock)."""
    with server.connect() as conn:
        return conn.call("PTTL", "sessionward:{root}:lock:end") / 1000


# What the Stop hook does once its MGET found the end lock's key (store.registry_version_and_lock;
# tests/hooks/test_payloads.py runs the hook itself): release it if this owner holds it.
STOP_HOOK = r"""
import sys
from sessionward.hooks.stop import release_forgotten_end_lock
from sessionward.identity import resolve_owner
print(release_forgotten_end_lock(resolve_owner(int(sys.argv[1]))), flush=True)
"""


def test_each_host_sees_the_others_sessions_and_a_lock_on_a_blocks_b(two_hosts, tmp_path):
    t, server, (a, b) = two_hosts
    twins = a.keeper(), b.keeper()  # the first process of each host: one PID on both
    assert twins[0] == twins[1], twins
    for host, project, owner in ((a, "alpha", twins[0]), (b, "beta", twins[1])):
        work = tmp_path / project
        work.mkdir()
        done = host.run("register", project, str(work), "--pid", str(owner), "--quiet")
        assert done.returncode == 0, done.stderr
    for me, other, project in ((a, b, "beta"), (b, a, "alpha")):
        seen = sessions_seen(me)
        assert set(seen) == {"alpha", "beta"}, seen
        assert seen[project]["alive"] is True and seen[project]["how"] == "lease", seen[project]
        assert seen[project]["reason"].startswith("process ") and f"on {other.name} is running" in seen[project]["reason"]
    holder = twins[0]
    assert a.run("lock", "acquire", "end", "--pid", str(holder), "--timeout", "0", "--quiet").returncode == 0
    # B's session ends its turn: its Stop hook releases an end lock its own process holds; A's
    # holder has B's owner's PID, on another machine: not B's (regression: a PID compare freed it).
    out = str(tmp_path / "stop.out")
    b.space.wait(b.space.spawn([sys.executable, "-c", STOP_HOOK, str(twins[1])], env=b.env, out=out))
    assert open(out).read() == "None\n", open(out).read()
    assert [s["holds"] for s in b.json("list")["result"]["sessions"] if s["project"] == "beta"] == [[]]
    refused = b.run("lock", "acquire", "end", "--timeout", "1", "--pid", str(b.keeper()))
    assert refused.returncode == 1
    assert f"still held after 1.0 s by pid {holder} (sleep) on host-a, " in refused.stderr, refused.stderr
    state = lock_state(b)
    assert state["held"] and state["pid"] == holder and state["where"] == "host host-a" and state["fence"] >= 1
    assert 0 < state["lease_left_s"] <= TTL_S and state["liveness"]["how"] == "lease"
    t.operations += 8
    t.check()


def test_a_killed_host_loses_its_lock_after_the_ttl_and_not_before(two_hosts, tmp_path):
    t, server, (a, b) = two_hosts
    _keepers.clear()
    (tmp_path / "w").mkdir()
    assert a.run("register", "alpha", str(tmp_path / "w"), "--pid", str(a.keeper()), "--quiet").returncode == 0
    assert a.run("lock", "acquire", "end", "--pid", str(a.keeper()), "--timeout", "0", "--quiet").returncode == 0
    a.space.kill()  # kill -9 of its PID 1: every process of host A, its watchers too
    killed = time.monotonic()
    lapses = killed + lease_left_s(server)  # the server's word: renewed last at most TTL/3 ago
    t.faults_injected += 1
    assert lapses - killed > TTL_S * 2 / 3 - 0.2, "the lease was not being renewed"
    while True:
        done = b.run("lock", "acquire", "end", "--timeout", "0", "--quiet", "--pid", str(b_keeper(b)))
        now = time.monotonic()
        if done.returncode == 0:
            break
        assert "still held" in done.stderr, done.stderr
        assert now < lapses + SLACK_S, f"B still refused {now - lapses:.2f} s after A's lease lapsed"
    if now < lapses:
        t.problem("double_holders", f"B got the lock {lapses - now:.3f} s before A's lease lapsed")
    assert sessions_seen(b) == {}, "A's session outlived its lease"  # dead to B now: swept
    t.figures["lock free after the kill s"] = round(now - killed, 2)
    t.check()


def test_an_idle_session_on_a_and_its_lock_are_never_lost_over_many_ttls(two_hosts, tmp_path):
    t, server, (a, b) = two_hosts
    (tmp_path / "w").mkdir()
    owner = a.keeper()
    assert a.run("register", "alpha", str(tmp_path / "w"), "--pid", str(owner), "--quiet").returncode == 0
    assert a.run("lock", "acquire", "end", "--pid", str(owner), "--timeout", "0", "--quiet").returncode == 0
    until = time.monotonic() + 6 * TTL_S  # nothing runs on A meanwhile: only its watcher
    looks = 0
    while time.monotonic() < until:
        seen = sessions_seen(b)
        looks += 1
        if seen.get("alpha", {}).get("alive") is not True:
            t.problem("lost_updates", f"A's idle session was lost to B after {looks} looks: {seen}")
            break
        held = lock_state(b)
        if not (held["held"] and held["pid"] == owner):
            t.problem("lost_updates", f"A's idle session lost its lock after {looks} looks: {held}")
            break
        b.run("prune", "--apply", "--quiet")
        time.sleep(0.2)
    assert set(sessions_seen(a)) == {"alpha"}
    t.operations += looks
    t.figures["idle TTLs"] = 6
    t.check()


HOLDER = r"""
import os, sys, time
from sessionward.identity import resolve_owner
from sessionward.locks import Holder, NamedLock
go, owner = sys.argv[1], resolve_owner(int(sys.argv[2]))
lock = NamedLock("end", holder=Holder.session_owner(owner), owner=owner)
print("fence", lock.acquire(timeout=0).fence, flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
try:
    print("released", lock.release().was, flush=True)
except Exception as error:
    print(type(error).__name__, error, flush=True)
"""


def _partition_and_take_over(a, b, server, tmp_path, env=None) -> tuple:
    """A holds `end` (a Python holder waiting for a go file), is cut off; B waits for it.
    Returns (what A's release said, B's holder state after it, seconds B got it after the lapse)."""
    out, go = str(tmp_path / "a-holder.out"), tmp_path / "go"
    a.space.spawn([sys.executable, "-c", HOLDER, str(go), str(a.keeper())], env={**a.env, **(env or {})}, out=out)
    ns.wait_for(lambda: os.path.exists(out) and "fence" in open(out).read(), 30, "A's holder took the lock")
    a.proxy.pause()
    cut = time.monotonic()
    lapses = cut + lease_left_s(server)
    while True:
        done = b.run("lock", "acquire", "end", "--timeout", "0", "--quiet", "--pid", str(b_keeper(b)))
        now = time.monotonic()
        if done.returncode == 0:
            break
        assert now < lapses + SLACK_S, f"B still refused {now - lapses:.2f} s after A's lease lapsed: {done.stderr}"
    a.proxy.resume()
    go.write_text("go")
    ns.wait_for(lambda: "released" in open(out).read() or "Lost" in open(out).read(), 30, "A's holder finished")
    return open(out).read().splitlines()[-1], lock_state(b), now - lapses


_keepers: dict = {}


def b_keeper(b: Host) -> int:
    if b.name not in _keepers:
        _keepers[b.name] = b.keeper()
    return _keepers[b.name]


def test_a_partitioned_host_loses_its_lock_after_the_ttl_and_is_told(two_hosts, tmp_path):
    t, server, (a, b) = two_hosts
    _keepers.clear()
    said, state, late = _partition_and_take_over(a, b, server, tmp_path)
    t.faults_injected += 1
    if late < 0:
        t.problem("double_holders", f"B got the lock {-late:.3f} s before A's lease lapsed")
    print(f"\nA's holder, back from the partition, was told: {said}")
    assert said.startswith("LeaseLost lease on lock end lapsed "), said
    assert f"now held by pid {b_keeper(b)} on host-b (fence {state['fence']})" in said, said
    assert state["held"] and state["pid"] == b_keeper(b), "A's stale release freed B's lock"
    t.operations += 4
    t.check()


def test_negative_control_without_the_token_compare_a_stale_release_frees_b(two_hosts, tmp_path):
    t, server, (a, b) = two_hosts
    _keepers.clear()
    said, state, _late = _partition_and_take_over(a, b, server, tmp_path, {"SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED": "1"})
    assert said == "released held", said  # A believed it still held the lock...
    assert state["held"] is False, state  # ...and freed B's
    t.operations += 4
    t.record()
