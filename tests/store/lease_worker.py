"""A real process holding or racing for a shared-store lease (tests/store/test_redis_leases.py).

    lease_worker.py race   URL NAME OWNER TTL_MS      ready, then on a stdin line: try once
    lease_worker.py cycles URL NAME OWNER N HOLD_MS   N acquire/hold/release cycles
    lease_worker.py hold   URL NAME OWNER TTL_MS      acquire, renew every TTL/3 until killed
Prints one line per event; a LeaseLost is printed as "lost: MESSAGE" (exit 1).
"""

import sys
import time

from sessionward.errors import LeaseLost
from sessionward.store import resp
from sessionward.store.redis_leases import RedisLeases, new_token

PREFIX = resp.key_prefix("tester")


def say(*words) -> None:
    print(*words, flush=True)


def main(mode: str, url: str, name: str, owner: str, *rest: str) -> int:
    conn = resp.connect(resp.parse_store_url(url), reply_timeout_s=2.0)
    leases = RedisLeases(conn, PREFIX)
    token = new_token(owner)
    if mode == "race":
        say("ready")
        sys.stdin.readline()
        lease = leases.try_acquire(name, token, int(rest[0]))
        say(f"won {lease.fence}" if lease else "lost")
    elif mode == "cycles":
        cycles, hold_s = int(rest[0]), int(rest[1]) / 1000
        for _ in range(cycles):
            lease = leases.acquire(name, token, 10_000, timeout_s=60, poll_s=0.002)
            start = time.monotonic_ns()
            time.sleep(hold_s)
            end = time.monotonic_ns()
            leases.release(lease)
            say(start, end, lease.fence)
    elif mode == "hold":
        ttl_ms = int(rest[0])
        lease = leases.acquire(name, token, ttl_ms, timeout_s=30)
        say(f"held {lease.fence}")
        try:
            while True:
                time.sleep(ttl_ms / 3000)
                leases.renew(lease)
        except LeaseLost as lost:
            say(f"lost: {lost}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
