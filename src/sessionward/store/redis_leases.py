"""Leases, fences and the epoch on the shared store (Redis or Valkey), as server-side scripts.

Purpose: a named lock that several kernels share, with the promises of the local one: at
most one holder at a time, a holder that stops renewing loses it after its TTL and not
before, and a holder whose lease lapsed is told at its next operation (LeaseLost, naming
who holds it now), never silently. Each transition is one Lua script, so it is atomic on
the server, and every deadline is the server's clock (PX expiry, TIME): clocks of the
hosts never meet.

What it does not protect: work done by a holder between its lease lapsing and its next
operation. That is what fences are for: each acquire returns a fencing number (INCR of a
per-lock counter), writes that the lock protects carry it, and fenced_write_allowed()
refuses one below the highest recorded for that resource, so a holder that paused past its
lease cannot overwrite what a newer holder wrote. Nor does it renew by itself: the caller
renews every third of the TTL while the owner lives (checked where the owner runs).

Keys, under the user's prefix P (resp.key_prefix, e.g. "sessionward:{alice}:"):
    P lock:NAME    the holder's token, with a PX expiry (exists only while held)
    P fence:NAME   the lock's fencing counter (permanent)
    P mark:RES     the highest fence a write to resource RES was allowed with (permanent)
    P epoch        a random id set at first use: gone or new means the server lost state
    P reseed       set when a loss is detected: fenced writes are refused while it exists
    P floor        every fence handed out after a reseed is above it
A token is "OWNER#random" (new_token): the owner part names the holder in messages.

Calling sequence:
    leases = RedisLeases(conn, prefix, known_epoch)   # the epoch this host last saw, or ""
    lease = leases.try_acquire("end", new_token("host:pid"), ttl_ms)   # Lease, or None if held
    leases.renew(lease)            # every ttl/3 while the owner lives; LeaseLost if lapsed
    if leases.fenced_write_allowed("note:x.md", lease.fence, lease.epoch): write
    leases.release(lease)          # LeaseLost if it lapsed meanwhile (nothing is deleted)
    leases.holder("end")           # Holder or None
Acquiring again with the same token is "mine": a retried acquire whose reply was lost gets
its own lease back (with the same fence, its TTL restarted), it does not lose to itself.

Restarts: run the server with AOF (appendfsync always): then a kill -9 of the server loses
nothing. Without persistence the counters start over, and a stale holder's fence could
outrank a new one's; the epoch catches that: a script that finds the epoch key gone while
its caller knew one (or while the lock's counter or the resource's mark still exists) sets
a new epoch and the reseed flag. Fenced writes then raise StoreStateLost until reseed()
sets every counter (and the floor) above every recorded mark, the marks found on the
server and the highest one the caller knows from elsewhere. A host that first talks to the
server after a loss with no remembered epoch cannot tell a loss from first use: hosts keep
the epoch they last saw.

Errors: LeaseLost (exit 1); StoreStateLost, StoreUnavailable, StoreCommandFailed (exit 3).
It is a bug to renew or release with a Lease of another RedisLeases' prefix, and a no-op to
acquire a lock one already holds (the same token): the TTL restarts.
"""

import os
import time

from sessionward.errors import LeaseLost, StoreStateLost
from sessionward.store.resp import Script
from sessionward.store.shared import CHECK_EPOCH_LUA, EPOCH_KEY, NEXT_FENCE_LUA, SERVER_MS_LUA

# KEYS lock fence epoch reseed floor; ARGV token ttl_ms known_epoch candidate_epoch
ACQUIRE_LUA = SERVER_MS_LUA + NEXT_FENCE_LUA + CHECK_EPOCH_LUA + """
local now = server_ms()
local status, epoch = check_epoch(KEYS[3], KEYS[4], ARGV[3], ARGV[4], KEYS[2])
local reseed = redis.call('EXISTS', KEYS[4])
local ttl = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'mine', tonumber(redis.call('GET', KEYS[2]) or '0'), epoch, status, reseed, now, now + ttl}
end
if held then
  return {'busy', tonumber(redis.call('GET', KEYS[2]) or '0'), epoch, status, reseed, now,
          now + redis.call('PTTL', KEYS[1]), held}
end
local fence = next_fence(KEYS[2], KEYS[5])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return {'acquired', fence, epoch, status, reseed, now, now + ttl}
"""

# KEYS lock fence; ARGV token ttl_ms
RENEW_LUA = SERVER_MS_LUA + """
local now = server_ms()
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return {1, now, now + tonumber(ARGV[2])}
end
return {0, now, held or '', tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

# KEYS lock fence; ARGV token. Deletes only on a token match: a holder whose lease lapsed
# must not free the lock of the one who took it since.
RELEASE_LUA = SERVER_MS_LUA + """
local now = server_ms()
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, now}
end
return {0, now, held or '', tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

# KEYS lock fence
HOLDER_LUA = SERVER_MS_LUA + """
local now = server_ms()
local held = redis.call('GET', KEYS[1])
if not held then return {'', 0, now, 0} end
return {held, tonumber(redis.call('GET', KEYS[2]) or '0'), now, now + redis.call('PTTL', KEYS[1])}
"""

# KEYS mark epoch reseed; ARGV fence known_epoch candidate_epoch. Refuses a fence below the
# mark and records a higher one, in one step: two writers cannot both pass an old mark.
FENCED_WRITE_LUA = CHECK_EPOCH_LUA + """
local status, epoch = check_epoch(KEYS[2], KEYS[3], ARGV[2], ARGV[3], KEYS[1])
if status ~= 'ok' then return {status, epoch} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'reseed', epoch} end
local fence = tonumber(ARGV[1])
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence < mark then return {'below', mark} end
if fence > mark then redis.call('SET', KEYS[1], fence) end
return {'ok', fence}
"""

# KEYS epoch reseed floor; ARGV prefix floor candidate_epoch. KEYS (the command) walks only
# this user's counters and marks; it runs once, by hand, after a loss.
RESEED_LUA = """
local top = math.max(tonumber(ARGV[2]), tonumber(redis.call('GET', KEYS[3]) or '0') or 0)
for _, pattern in ipairs({ARGV[1] .. 'fence:*', ARGV[1] .. 'mark:*'}) do
  for _, key in ipairs(redis.call('KEYS', pattern)) do
    local value = tonumber(redis.call('GET', key) or '0') or 0
    if value > top then top = value end
  end
end
for _, key in ipairs(redis.call('KEYS', ARGV[1] .. 'fence:*')) do redis.call('SET', key, top) end
redis.call('SET', KEYS[3], top)
redis.call('DEL', KEYS[2])
if not redis.call('GET', KEYS[1]) then redis.call('SET', KEYS[1], ARGV[3]) end
return {top, redis.call('GET', KEYS[1])}
"""


def new_token(owner: str) -> str:
    """A token naming its owner (host:pid, a session) and unique to one acquire."""
    return f"{owner}#{os.urandom(8).hex()}"


def token_owner(token: str) -> str:
    """The owner part of a token, as messages show it."""
    return token.rpartition("#")[0] or token


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class Lease:
    """A held lease: its fence and epoch (carried by fenced writes) and its deadline in
    server milliseconds. `state_lost`: the server lost its state and is not re-seeded yet."""

    __slots__ = ("name", "token", "ttl_ms", "fence", "epoch", "expires_at_ms", "state_lost")

    def __init__(self, name, token, ttl_ms, fence, epoch, expires_at_ms, state_lost) -> None:
        self.name = name
        self.token = token
        self.ttl_ms = ttl_ms
        self.fence = fence
        self.epoch = epoch
        self.expires_at_ms = expires_at_ms
        self.state_lost = state_lost


class Holder:
    """Who holds a lock now, with which fence, until when (server milliseconds)."""

    __slots__ = ("token", "fence", "now_ms", "expires_at_ms")

    def __init__(self, token, fence, now_ms, expires_at_ms) -> None:
        self.token = token
        self.fence = fence
        self.now_ms = now_ms
        self.expires_at_ms = expires_at_ms

    @property
    def owner(self) -> str:
        return token_owner(self.token)


class RedisLeases:
    """The lease and fence operations of one user's keys on one connection."""

    ACQUIRE = Script(ACQUIRE_LUA)
    RENEW = Script(RENEW_LUA)
    RELEASE = Script(RELEASE_LUA)
    HOLDER = Script(HOLDER_LUA)
    FENCED_WRITE = Script(FENCED_WRITE_LUA)
    RESEED = Script(RESEED_LUA)

    def __init__(self, conn, prefix: str, known_epoch: str = "") -> None:
        self.conn = conn
        self.prefix = prefix
        self.known_epoch = known_epoch  # updated by every acquire: the caller may keep it

    def _lock_keys(self, name: str) -> list:
        return [f"{self.prefix}lock:{name}", f"{self.prefix}fence:{name}"]

    def try_acquire(self, name: str, token: str, ttl_ms: int):
        """The lease, or None when another token holds it. Same token: its own lease back."""
        keys = self._lock_keys(name) + [self.prefix + EPOCH_KEY, self.prefix + "reseed", self.prefix + "floor"]
        reply = self.conn.run_script(self.ACQUIRE, keys, [token, int(ttl_ms), self.known_epoch, os.urandom(8).hex()])
        verdict, fence, epoch, _status, reseed, _now, expires = reply[:7]
        self.known_epoch = _text(epoch)
        if verdict == b"busy":
            return None
        return Lease(name, token, int(ttl_ms), fence, self.known_epoch, expires, bool(reseed))

    def acquire(self, name: str, token: str, ttl_ms: int, timeout_s: float, poll_s: float = 0.01):
        """try_acquire until it succeeds or timeout_s passes (then None)."""
        deadline = time.monotonic() + timeout_s
        while True:
            lease = self.try_acquire(name, token, ttl_ms)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            time.sleep(poll_s)

    def renew(self, lease: Lease) -> None:
        """Restart the lease's TTL, or LeaseLost naming who holds the lock now."""
        reply = self.conn.run_script(self.RENEW, self._lock_keys(lease.name), [lease.token, lease.ttl_ms])
        if reply[0] != 1:
            raise self._lost(lease, reply)
        lease.expires_at_ms = reply[2]

    def release(self, lease: Lease) -> None:
        """Delete the lock if this lease still holds it; else LeaseLost, deleting nothing."""
        reply = self.conn.run_script(self.RELEASE, self._lock_keys(lease.name), [lease.token])
        if reply[0] != 1:
            raise self._lost(lease, reply)

    def _lost(self, lease: Lease, reply) -> LeaseLost:
        _, now, held, fence = reply
        holder = token_owner(_text(held)) if held else ""
        return LeaseLost(lease.name, holder, fence if held else 0, lease.expires_at_ms, now)

    def holder(self, name: str):
        """The current Holder of the lock, or None when it is free."""
        token, fence, now, expires = self.conn.run_script(self.HOLDER, self._lock_keys(name), [])
        return Holder(_text(token), fence, now, expires) if token else None

    def fenced_write_allowed(self, resource: str, fence: int, epoch: str) -> bool:
        """True, recording `fence` as the resource's mark, unless a write with a higher
        fence was allowed before (False). StoreStateLost while the server's state is lost."""
        keys = [f"{self.prefix}mark:{resource}", self.prefix + EPOCH_KEY, self.prefix + "reseed"]
        verdict, value = self.conn.run_script(self.FENCED_WRITE, keys, [int(fence), epoch, os.urandom(8).hex()])
        if verdict == b"ok":
            return True
        if verdict == b"below":
            return False
        why = {b"lost": "its epoch key is gone", b"stale": "the epoch changed since this lease was taken",
               b"reseed": "not re-seeded since the loss was found"}.get(verdict, _text(verdict))
        raise StoreStateLost(self.conn.target.display, why)

    def reseed(self, floor: int = 0) -> int:
        """Set every fence counter of this prefix above every recorded mark and above
        `floor` (the highest fence known from elsewhere), clear the refusal; the new floor."""
        keys = [self.prefix + EPOCH_KEY, self.prefix + "reseed", self.prefix + "floor"]
        top, epoch = self.conn.run_script(self.RESEED, keys, [self.prefix, int(floor), os.urandom(8).hex()])
        self.known_epoch = _text(epoch)
        return top

