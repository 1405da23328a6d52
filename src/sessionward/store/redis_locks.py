"""Named locks on the shared store (Redis or Valkey): one lock's facts as leases.

The protocol (FIFO queue, re-entrance, take-over of a dead holder, release rules) is
sessionward.locks's, the same for every backend; this module keeps the facts on the server.
Keys, for a lock NAME, under the user's prefix P (resp.key_prefix):

  P lock:NAME     the holder's token, with a PX expiry: exists only while held (the lease)
  P fence:NAME    the fencing counter, permanent (INCR at every take; store.redis_leases's key)
  P annex:NAME    hash: json (the holder annex sessionward.locks writes), token, fence
  P guard:NAME    one transition's exclusion: a token, PX GUARD_LEASE_MS
  P queue:NAME    the FIFO wait queue, {"schema", "waiters": [...]} (what NAME.guard holds locally)
  P holds:OWNER   what the holder's watcher renews (store.redis_lives), OWNER its life key
  P expiry:NAME   "TOKEN MS": when the current lease lapses unless renewed (told to a holder
  P lapsed:NAME   whose lease lapsed: when); lapsed: the one before it
  P locks         set: the names of every lock ever taken (lock status --all, cleanup)

Taking a lock is one script (TAKE): SET with the holder's token and a PX expiry, only if
the lock is free or still holds the dead holder's token the caller judged (a take-over);
INCR of the fence, returned; "mine" when the key holds our token already (a retried take
whose reply was lost). Deadlines are the server's clock (PX, TIME). The lease is renewed
every third of its TTL by the holder's watcher while the holder lives, checked where it runs
(store.redis_lives); released only on a token match (RELEASE). A holder whose lease lapsed
is told at its next release: LeaseLost, naming the new holder and its fence (lost_lease).

Liveness of a holder (read): on this kernel (its boot id is ours) the exact checks of the
local store (PID, life lock), so a dead holder is taken over at once; on another kernel, its
lease: held while the key exists, free once it lapsed (LEASE_TTL after its kernel stopped
renewing, never before).

The guard (RedisGuard) is a short lease too: the queue's bookkeeping runs under it. A guard
that lapsed under a paused waiter can let two waiters reorder the queue, never both hold the
lock: TAKE itself compares, and a take that finds the lock taken answers None.

Test-only: SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED=1 turns the token compare of a release
off (the lock there is taken for ours, and deleted whoever holds it), so tests can show that
without it a stale release frees the new holder's lock (the negative control).

What it does not protect: the origin's files. There is no ~/.claude/end.lock with the
shared store (`cat`, `rm` of it do nothing); `lock status`, `lock release --force` do.
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec
from sessionward import status_stamp
from sessionward._lockfile import GUARD_TIMEOUT_S, WAITER_SILENCE_S, Guard, LockState, _decode_guard, _waiter_alive
from sessionward.errors import GuardTimeout, LeaseLost
from sessionward.identity import record_liveness, same_process, this_host
from sessionward.identity.life import life_key
from sessionward.identity.process import Liveness, known_boot_id
from sessionward.store import LockFacts, shared, shown
from sessionward.store.redis_lives import _SERVER_MS, lease_ttl_ms
from sessionward.store.resp import Script

GUARD_LEASE_MS = 2000  # a transition takes microseconds; a paused one is passed after this
_POLL_FIRST_S = 0.0002
_POLL_CAP_S = 0.002

# KEYS guard queue; ARGV token guard_ms
GUARD_ENTER_LUA = _SERVER_MS + """
local now = server_ms()
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {1, now, redis.call('GET', KEYS[2]) or ''}
end
return {0, now, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
"""

# KEYS guard; ARGV token
GUARD_EXIT_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS guard queue; ARGV token doc ("" deletes)
QUEUE_SAVE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS lock annex fence
READ_LUA = _SERVER_MS + """
local now = server_ms()
local held = redis.call('GET', KEYS[1])
if not held then return {now, ''} end
local annex = redis.call('HMGET', KEYS[2], 'token', 'json', 'fence')
if annex[1] ~= held then annex = {'', '', 0} end
return {now, held, redis.call('PTTL', KEYS[1]), annex[2] or '', tonumber(annex[3] or '0') or 0}
"""

# KEYS lock fence annex holds locks floor expiry lapsed; ARGV token ttl_ms annex expected name.
# `expected`: the token of the dead holder the caller judged ("" for a free lock).
TAKE_LUA = _SERVER_MS + """
local now = server_ms()
local ttl = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'mine', tonumber(redis.call('HGET', KEYS[3], 'fence') or '0'), now}
end
if held and held ~= ARGV[4] then return {'busy', 0, now} end
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(redis.call('GET', KEYS[6]) or '0')
if fence <= floor then
  fence = floor + 1
  redis.call('SET', KEYS[2], fence)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'json', ARGV[3], 'fence', fence)
redis.call('HSET', KEYS[4], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[5])
local before = redis.call('GET', KEYS[7])
if before then redis.call('SET', KEYS[8], before) end
redis.call('SET', KEYS[7], ARGV[1] .. ' ' .. (now + ttl))
return {'acquired', fence, now}
"""

# KEYS lock annex holds; ARGV token name. Deletes only on a token match.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

# Test-only (the negative control): deletes whoever holds it.
RELEASE_UNCHECKED_LUA = """
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""
_UNCHECKED = os.environ.get("SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED") == "1"  # read once: children inherit it

# KEYS lock expiry lapsed annex fence; ARGV token: when our lease lapsed (0: not by time) and who holds now
LAPSE_LUA = _SERVER_MS + """
local now = server_ms()
local at = 0
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local v = redis.call('GET', key)
  if v then
    local token, ms = string.match(v, '^(%S+) (%d+)$')
    if token == ARGV[1] then at = tonumber(ms) end
  end
end
local held = redis.call('GET', KEYS[1]) or ''
local json = ''
if held ~= '' and redis.call('HGET', KEYS[4], 'token') == held then json = redis.call('HGET', KEYS[4], 'json') end
return {now, at, held, json, tonumber(redis.call('HGET', KEYS[4], 'fence') or '0') or 0}
"""

GUARD_ENTER = Script(GUARD_ENTER_LUA)
GUARD_EXIT = Script(GUARD_EXIT_LUA)
QUEUE_SAVE = Script(QUEUE_SAVE_LUA)
READ = Script(READ_LUA)
TAKE = Script(TAKE_LUA)
RELEASE = Script(RELEASE_LUA)
RELEASE_UNCHECKED = Script(RELEASE_UNCHECKED_LUA)
LAPSE = Script(LAPSE_LUA)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def _owner_key(record: dict) -> str:
    """The holder's life key (what its watcher renews), or a placeholder nobody renews."""
    key = life_key(record.get("boot_id"), record.get("pidns"), record.get("pid"), record.get("start_time"))
    return key or f"unwatched-{record.get('pid')}"


def _on_this_kernel(record: dict) -> bool:
    here = known_boot_id(this_host().boot_id)
    return here is not None and known_boot_id(record.get("boot_id")) == here


class RedisLock(LockFacts):
    """One named lock's facts on the shared store at `url` (connects on first use)."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        p = self.prefix = shared.prefix()
        self.path = f"{shown(url)} {p}lock:{name}"  # what names it in messages
        self.guard_key, self.queue_key = f"{p}guard:{name}", f"{p}queue:{name}"
        self.lock_key, self.annex_key, self.fence_key = f"{p}lock:{name}", f"{p}annex:{name}", f"{p}fence:{name}"
        self.expiry_keys = [f"{p}expiry:{name}", f"{p}lapsed:{name}"]

    def conn(self):
        return shared.connection(self.url)

    def transition(self, deadline: float) -> "RedisGuard":
        return RedisGuard(self, deadline)

    def read(self, judge: bool = True) -> LockState:
        reply = self.conn().run_script(READ, [self.lock_key, self.annex_key, self.fence_key], [])
        state = LockState(self.name, self.path)
        if not reply[1]:
            return state
        _now, token, pttl, annex, fence = reply
        state.present, state.raw, state.lease_left_ms = True, token, pttl
        try:
            meta = jsoncodec.loads(annex) if annex else None
        except ValueError:
            meta = None
        if isinstance(meta, dict) and isinstance(meta.get("holder"), dict) and type(meta["holder"].get("pid")) is int:
            meta["fence"] = fence
            state.meta, state.pid = meta, meta["holder"]["pid"]
            since = meta.get("since")
            state.mtime = since if type(since) in (int, float) else time.time()
        if judge:
            state.liveness = self._judge(state)
        return state

    def _judge(self, state: LockState) -> Liveness:
        holder = (state.meta or {}).get("holder")
        if holder is not None and _on_this_kernel(holder):
            return record_liveness(holder, state.meta["since"])  # type: ignore[index]
        left = max(0, state.lease_left_ms or 0) / 1000
        who = f"process {holder['pid']} on {holder.get('host') or '?'}" if holder else "its holder"
        return Liveness(True, f"{who} holds its lease on the shared store ({left:.0f} s left; "
                              "renewed by its watcher while it runs)", how="lease")

    def queue(self) -> list:
        raw = self.conn().call("GET", self.queue_key)
        return _decode_guard(raw or b"")[0]

    def take(self, guard, meta: dict, pid: int, replacing: LockState) -> tuple | None:
        """The lock is ours: (created, fence); None when someone else holds it (a guard that
        lapsed let another in). Takes over `replacing` only if it still holds the lock."""
        token = meta["token"]
        expected = _text(replacing.raw) if replacing.present else ""
        keys = [self.lock_key, self.fence_key, self.annex_key, f"{self.prefix}holds:{_owner_key(meta['holder'])}",
                self.prefix + "locks", self.prefix + "floor", *self.expiry_keys]
        verdict, fence, _now = self.conn().run_script(
            TAKE, keys, [token, lease_ttl_ms(), jsoncodec.dumps(meta), expected, self.name])
        if verdict == b"busy":
            return None
        meta["fence"] = fence
        status_stamp.touch()  # every status line of this host shows the end lock's holder
        return token, fence

    def still_mine(self, created, pid: int) -> LockState | None:
        state = self.read(judge=False)
        return state if state.present and (_text(state.raw) == created or _UNCHECKED) else None

    def remove(self, state: LockState) -> str | None:
        holder = (state.meta or {}).get("holder") or {}
        keys = [self.lock_key, self.annex_key, f"{self.prefix}holds:{_owner_key(holder)}"]
        if self.conn().run_script(RELEASE_UNCHECKED if _UNCHECKED else RELEASE, keys, [_text(state.raw), self.name]):
            status_stamp.touch()
        return None

    def lost_lease(self, token: str) -> LeaseLost | None:
        """LeaseLost when the lease of `token` lapsed by time (not renewed: its holder paused,
        cut off, or without a watcher), naming who holds the lock now; None otherwise (it
        was released, or forced away by a person)."""
        keys = [self.lock_key, *self.expiry_keys, self.annex_key]
        now, at, held, annex, fence = self.conn().run_script(LAPSE, keys, [token])
        if not at or at > now:
            return None
        who = ""
        if held:
            try:
                holder = jsoncodec.loads(annex)["holder"] if annex else {}
                who = f"pid {holder['pid']} on {holder.get('host') or '?'}"
            except (ValueError, KeyError, TypeError):
                who = "another holder"
        return LeaseLost(self.name, who, fence if held else 0, at, now)

    def tidy(self) -> None:
        pass  # nothing is left behind by a take that died: TAKE is one script

    def close(self) -> None:
        pass  # the connection is the process's (store.shared)


class RedisGuard(Guard):
    """The transition of one lock on the shared store: a short lease on P guard:NAME, and
    the wait queue read when it is taken and written back under it (compared)."""

    def __init__(self, lock: RedisLock, deadline: float) -> None:
        super().__init__(lock, deadline)
        self.token = f"{os.getpid()}#{os.urandom(6).hex()}"
        self.now_ms = 0
        self._raw = b""

    def __enter__(self) -> "RedisGuard":
        lock = self.lock
        conn = lock.conn()
        started = time.monotonic()
        delay = _POLL_FIRST_S
        while True:
            reply = conn.run_script(GUARD_ENTER, [lock.guard_key, lock.queue_key], [self.token, GUARD_LEASE_MS])
            if reply[0] == 1:
                self.now_ms, self._raw = reply[1], reply[2] or b""
                return self
            now = time.monotonic()
            if now >= self.deadline:
                who = f"held by process {_text(reply[2]).partition('#')[0]} of some host, {max(0, reply[3]) / 1000:.1f} s left"
                raise GuardTimeout(f"{lock.path} guard", now - started, (who, "retry"))
            time.sleep(min(delay, self.deadline - now))
            delay = min(delay * 2, _POLL_CAP_S)

    def __exit__(self, *exc) -> None:
        try:
            self.lock.conn().run_script(GUARD_EXIT, [self.lock.guard_key], [self.token])
        finally:
            if self._moved:
                status_stamp.touch()

    def _waiters(self) -> list:
        if self._queue is None:
            self._size = len(self._raw)
            self._queue, self._fence = _decode_guard(self._raw)
        return self._queue

    def _save(self) -> None:
        doc = jsoncodec.dumps({"schema": "sessionward/1", "waiters": self._queue}) if self._queue else ""
        # Compared with our guard token: a paused transition whose guard lapsed writes nothing.
        self.lock.conn().run_script(QUEUE_SAVE, [self.lock.guard_key, self.lock.queue_key], [self.token, doc])

    def next_fence(self) -> int:  # pragma: no cover - the fence comes from TAKE, in one script
        raise NotImplementedError("the shared store's fence is handed out by its take script")

    def waiter_alive(self, waiter: dict) -> bool:
        """A waiter on this kernel is judged as locally; one on another kernel is waiting
        while it keeps polling: it refreshes seen_ms (the server's clock) every few ms."""
        if _on_this_kernel(waiter) or known_boot_id(waiter.get("boot_id")) is None:
            return _waiter_alive(waiter)
        seen = waiter.get("seen_ms")
        return type(seen) is int and self.now_ms - seen < WAITER_SILENCE_S * 1000

    def join_queue(self, me: dict) -> None:
        for waiter in self._waiters():
            if same_process(waiter, me):
                seen = waiter.get("seen_ms")
                if type(seen) is not int or self.now_ms - seen > WAITER_SILENCE_S * 250:
                    waiter["seen_ms"], waiter["seen"] = self.now_ms, time.monotonic()
                    self._save()
                return
        self._queue.append(dict(me, boot_id=this_host().boot_id, seen_ms=self.now_ms))  # type: ignore[union-attr]
        self._save()
        self._moved = True
