"""Owners' lives on the shared store: how sessions and lock holders on other kernels are
known to be alive, as server-side scripts.

Purpose: a PID proves nothing on another kernel, and a flock on a shared file may not even
be shared there. So every owner (a session's Claude Code process or shell, a lock's holder)
has a lease on the shared store, renewed while it lives by its watcher (identity.life: a
pair of processes that lives exactly as long as its owner, on the owner's kernel), every
third of LEASE_TTL_MS, and dropped when the owner exits. Others read: present = alive
(idle or busy, however long), absent = dead. A host that dies (or is cut off) stops
renewing: its owners are dead LEASE_TTL_MS after the last renewal, and not before.

Keys, under the user's prefix P (resp.key_prefix):
    P alive          sorted set: owner key -> the server time (ms) its lease lapses at
    P holds:OWNER    hash: lock name -> the token of the lease OWNER holds on it (or held,
                     until OWNER is told that it lapsed)
    P changes        the change counter finish() INCRs (store.shared: `watch` polls it)
    P lock:NAME      a lock's holder token, PX expiry (store.redis_locks; renewed here too,
    P expiry:NAME    with the time it lapses at unless renewed again)
OWNER is the owner's life key (identity.life.life_key: boot id, PID namespace, PID, start
time), the name of its life file on its own kernel.

Calling sequence (the watcher, identity/_watching.py, and store.redis_registry):
    renew(conn, prefix, owner, ttl_ms)       # every ttl/3 while the owner lives: its entry
                                             # in P alive and the leases of the locks it holds
    finish(conn, prefix, owner)              # the owner exited: entry gone, its locks freed
    lives(conn, prefix) -> ({owner: ms left}, server now)   # readers (one call)

Why 30 s (store.shared.LEASE_TTL_MS): a dead host's sessions and locks are free after at
most 30 s, a person's patience for "someone else holds /end"; a renewal every 10 s costs
each watcher process one wakeup and one short script call (bench/: no measurable CPU), and a
host must lose three renewals in a row (a 10 s network stall, a suspended laptop) before its
live sessions are taken for dead. SESSIONWARD_TEST_LEASE_TTL_MS (test-only) shortens it.

This module imports only the scripts' runner (store.resp) and store.shared: the watcher
loads it; the hooks do not (a lease's length is store.shared.lease_ttl_ms).
"""

from sessionward.store.resp import Script
from sessionward.store.shared import SERVER_MS_LUA, changes_key

# KEYS alive holds; ARGV owner ttl_ms prefix. A lock whose lease is no longer the one
# recorded is not renewed, and its entry stays: a release or a forced release removes the
# entry with the lock, so one still here lapsed, and it is what its holder is told of at its
# next operation on that lock (store.redis_locks: lost_lease, which removes it then).
RENEW_LUA = SERVER_MS_LUA + """
local now = server_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local held = redis.call('HGETALL', KEYS[2])
for i = 1, #held, 2 do
  local key = ARGV[3] .. 'lock:' .. held[i]
  if redis.call('GET', key) == held[i + 1] then
    redis.call('PEXPIRE', key, ttl)
    redis.call('SET', ARGV[3] .. 'expiry:' .. held[i], held[i + 1] .. ' ' .. (now + ttl))
  end
end
return now
"""

# KEYS alive holds changes; ARGV owner prefix
FINISH_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
local held = redis.call('HGETALL', KEYS[2])
local freed = 0
for i = 1, #held, 2 do
  local key = ARGV[2] .. 'lock:' .. held[i]
  if redis.call('GET', key) == held[i + 1] then
    redis.call('DEL', key)
    freed = freed + 1
  end
end
redis.call('DEL', KEYS[2])
redis.call('INCR', KEYS[3])
return freed
"""

# KEYS alive
LIVES_LUA = SERVER_MS_LUA + """
local now = server_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}
"""

RENEW = Script(RENEW_LUA)
FINISH = Script(FINISH_LUA)
LIVES = Script(LIVES_LUA)


def _keys(prefix: str, owner: str) -> list:
    return [prefix + "alive", f"{prefix}holds:{owner}"]


def renew(conn, prefix: str, owner: str, ttl_ms: int) -> int:
    """Renew `owner`'s life and the leases of the locks it holds; the server's time (ms)."""
    return conn.run_script(RENEW, _keys(prefix, owner), [owner, int(ttl_ms), prefix])


def finish(conn, prefix: str, owner: str) -> int:
    """`owner` exited: its life entry goes and the locks it still held are freed (their
    tokens compared: a lock taken by someone else since stays theirs). How many were freed."""
    return conn.run_script(FINISH, _keys(prefix, owner) + [changes_key(prefix)], [owner, prefix])


def lives(conn, prefix: str) -> tuple:
    """({owner key: ms left of its lease}, the server's time in ms), lapsed entries dropped."""
    now, flat = conn.run_script(LIVES, [prefix + "alive"], [])
    table = {}
    for i in range(0, len(flat), 2):
        table[flat[i].decode()] = int(float(flat[i + 1])) - now
    return table, now
