"""Named locks on the shared store (Redis or Valkey): one lock's facts as leases.

The protocol (FIFO queue, re-entrance, take-over of a dead holder, release rules) is
sessionward.locks's, the same for every backend; this module keeps the facts on the server.
Keys, for a lock NAME, under the user's prefix P (resp.key_prefix):

  P lock:NAME     the holder's token, with a PX expiry: exists only while held (the lease)
  P fence:NAME    the fencing counter, permanent (INCR at every take; store.redis_leases's key)
  P annex:NAME    hash: json (the holder annex sessionward.locks writes), token, fence
  P queue:NAME    list: the FIFO wait queue, waiter keys (PID:start time:PID namespace:boot id)
  P waiters:NAME  hash: waiter key -> its record ({pid, start_time, pidns, boot_id, since})
  P seen:NAME     hash: waiter key -> when it last said it waits (server ms)
  P holds:OWNER   what the holder's watcher renews (store.redis_lives), OWNER its life key
  P expiry:NAME   "TOKEN MS": when the current lease lapses unless renewed (told to a holder
  P lapsed:NAME   whose lease lapsed: when); lapsed: the one before it
  P locks         set: the names of every lock ever taken (lock status --all, cleanup)
  P changes       the change counter a take and a release INCR (store.shared: `watch` polls it)

Taking a lock is one script (TAKE): SET with the holder's token and a PX expiry, only if
the lock is free or still holds the dead holder's token the caller judged (a take-over);
INCR of the fence, returned; "mine" when the key holds our token already (a retried take
whose reply was lost). Deadlines are the server's clock (PX, TIME). The lease is renewed
every third of its TTL by the holder's watcher while the holder lives, checked where it runs
(store.redis_lives); released only on a token match (RELEASE). A holder whose lease lapsed
is told at its next acquire or release of that lock, also from a new process acting for it
(a `lock` command: the token is read back from P holds:OWNER, which keeps it until then):
LeaseLost, naming the new holder and its fence (lost_lease).

Liveness of a holder (read): on this kernel (its boot id is ours) the exact checks of the
local store (PID, life lock), so a dead holder is taken over at once; on another kernel, its
lease: held while the key exists, free once it lapsed (LEASE_TTL after its kernel stopped
renewing, never before).

There is no guard: every step of a transition (RedisTransition) is one script, atomic on the
server, and nothing is held between two of them, so a waiter stopped or cut off half way
blocks nobody. TAKE itself enforces the queue's order (it takes only for the waiter at its
head, or with an empty queue) and the take-over (only of the token judged dead), so two
waiters can never both hold the lock. With AOF `appendfsync always` every write is an
fsync: an uncontended acquire+release is two writes (TAKE, RELEASE).

Test-only: SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED=1 turns the token compare of a release
off (the lock there is taken for ours, and deleted whoever holds it), so tests can show that
without it a stale release frees the new holder's lock (the negative control).

What it does not protect: the origin's files. There is no ~/.claude/end.lock with the
shared store (`cat`, `rm` of it do nothing); `lock status`, `lock release --force` do.
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, status_stamp
from sessionward._lockfile import WAITER_SILENCE_S, LockState, _waiter_alive, waiter_record
from sessionward.errors import LeaseLost
from sessionward.identity import record_liveness, this_host
from sessionward.identity.life import life_key
from sessionward.identity.process import REAP_GRACE_S, Liveness, known_boot_id
from sessionward.store import LockFacts, shared, shown
from sessionward.store.resp import Script
from sessionward.store.shared import SERVER_MS_LUA, lease_ttl_ms

# KEYS queue waiters seen
SNAPSHOT_LUA = SERVER_MS_LUA + """
local now = server_ms()
local keys = redis.call('LRANGE', KEYS[1], 0, -1)
if #keys == 0 then return {now, {}, {}, {}} end
return {now, keys, redis.call('HMGET', KEYS[2], unpack(keys)), redis.call('HMGET', KEYS[3], unpack(keys))}
"""

# KEYS queue waiters seen; ARGV key record refresh_ms. Joins at the back, or (already in the
# queue) says it still waits, at most every refresh_ms (each write is an fsync with AOF always).
JOIN_LUA = SERVER_MS_LUA + """
local now = server_ms()
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  local seen = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
  if now - seen > tonumber(ARGV[3]) then redis.call('HSET', KEYS[3], ARGV[1], now) end
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], now)
return 1
"""

# KEYS queue waiters seen; ARGV keys to remove (a waiter leaving, or the dead ones judged)
LEAVE_LUA = """
local gone = 0
for _, key in ipairs(ARGV) do
  gone = gone + redis.call('LREM', KEYS[1], 0, key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
end
return gone
"""

# KEYS lock annex fence
READ_LUA = SERVER_MS_LUA + """
local now = server_ms()
local held = redis.call('GET', KEYS[1])
if not held then return {now, ''} end
local annex = redis.call('HMGET', KEYS[2], 'token', 'json', 'fence')
if annex[1] ~= held then annex = {'', '', 0} end
return {now, held, redis.call('PTTL', KEYS[1]), annex[2] or '', tonumber(annex[3] or '0') or 0}
"""

# KEYS lock fence annex holds locks floor expiry lapsed queue waiters seen epoch reseed changes;
# ARGV token ttl_ms annex expected name me known_epoch candidate_epoch. `expected`: the token of
# the dead holder the caller judged ("" for a free lock); `me`: the taker's waiter key: the
# queue must be empty or start with it (FIFO), and it leaves the queue with the take. A take
# checks the epoch as a fenced write does (a loss it finds sets the re-seed flag, which fenced
# note writes obey) but is not refused: a lock's fence guards nothing on the server.
TAKE_LUA = SERVER_MS_LUA + shared.NEXT_FENCE_LUA + shared.CHECK_EPOCH_LUA + """
local now = server_ms()
local ttl = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'mine', tonumber(redis.call('HGET', KEYS[3], 'fence') or '0'), now, '', ''}
end
if held and held ~= ARGV[4] then return {'busy', 0, now, '', ''} end
local first = redis.call('LINDEX', KEYS[9], 0)
if first and first ~= ARGV[6] then return {'busy', 0, now, '', ''} end
local status, epoch = check_epoch(KEYS[12], KEYS[13], ARGV[7], ARGV[8], nil)
if first then
  redis.call('LPOP', KEYS[9])
  redis.call('HDEL', KEYS[10], ARGV[6])
  redis.call('HDEL', KEYS[11], ARGV[6])
end
local fence = next_fence(KEYS[2], KEYS[6])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'json', ARGV[3], 'fence', fence)
redis.call('HSET', KEYS[4], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[5])
local before = redis.call('GET', KEYS[7])
if before then redis.call('SET', KEYS[8], before) end
redis.call('SET', KEYS[7], ARGV[1] .. ' ' .. (now + ttl))
""" + shared.BUMP_LUA + """if held then return {'took', fence, now, epoch, status} end
return {'acquired', fence, now, epoch, status}
"""

# KEYS lock annex holds changes; ARGV token name. Deletes only on a token match.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[2])
""" + shared.BUMP_LUA + """return 1
"""

# Test-only (the negative control): deletes whoever holds it.
RELEASE_UNCHECKED_LUA = """
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[2])
""" + shared.BUMP_LUA + """return 1
"""
_UNCHECKED = os.environ.get("SESSIONWARD_TEST_LEASE_TOKEN_UNCHECKED") == "1"  # read once: children inherit it

# KEYS lock expiry lapsed annex holds; ARGV token name. The token: the caller's, or ("") the
# one recorded for the holder (holds:OWNER). Returns {now, when that lease lapsed (0: not by
# time, or not known), who holds now, their annex, their fence, whether the holder's record of
# it was still there (it then lapsed: a release or a forced release removes it; removed now,
# so the holder is told once)}.
LAPSE_LUA = SERVER_MS_LUA + """
local now = server_ms()
local recorded = redis.call('HGET', KEYS[5], ARGV[2])
local token = ARGV[1]
if token == '' then token = recorded or '' end
local held = redis.call('GET', KEYS[1]) or ''
if token == '' or held == token then return {now, 0, held, '', 0, 0} end
local at = 0
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local v = redis.call('GET', key)
  if v then
    local t, ms = string.match(v, '^(%S+) (%d+)$')
    if t == token then at = tonumber(ms) end
  end
end
local kept = 0
if recorded == token then
  redis.call('HDEL', KEYS[5], ARGV[2])
  kept = 1
end
local json = ''
if held ~= '' and redis.call('HGET', KEYS[4], 'token') == held then json = redis.call('HGET', KEYS[4], 'json') end
return {now, at, held, json, tonumber(redis.call('HGET', KEYS[4], 'fence') or '0') or 0, kept}
"""

SNAPSHOT = Script(SNAPSHOT_LUA)
JOIN = Script(JOIN_LUA)
LEAVE = Script(LEAVE_LUA)
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
        self.path = f"{shown(url)} {shared.lock_key(p, name)}"  # what names it in messages
        self.queue_keys = [f"{p}queue:{name}", f"{p}waiters:{name}", f"{p}seen:{name}"]
        self.lock_key, self.annex_key, self.fence_key = shared.lock_key(p, name), f"{p}annex:{name}", f"{p}fence:{name}"
        self.expiry_keys = [f"{p}expiry:{name}", f"{p}lapsed:{name}"]

    def conn(self):
        return shared.connection(self.url)

    def transition(self, deadline: float) -> "RedisTransition":
        return RedisTransition(self, deadline)

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
            state.mtime = float(since) if isinstance(since, (int, float)) and not isinstance(since, bool) else time.time()
        if judge:
            state.liveness = self._judge(state)
        return state

    def _judge(self, state: LockState) -> Liveness:
        holder = (state.meta or {}).get("holder")
        if holder is not None and _on_this_kernel(holder):
            return record_liveness(holder, state.meta["since"], reap_grace_s=REAP_GRACE_S)  # type: ignore[index]
        left = max(0, state.lease_left_ms or 0) / 1000
        who = f"process {holder['pid']} on {holder.get('host') or '?'}" if holder else "its holder"
        return Liveness(True, f"{who} holds its lease on the shared store ({left:.0f} s left; "
                              "renewed by its watcher while it runs)", how="lease")

    def queue(self) -> list:
        return self.snapshot()[0]

    def snapshot(self) -> tuple:
        """(the waiters, first first, {waiter key: when it last said it waits}, server ms)."""
        now, keys, records, seen = self.conn().run_script(SNAPSHOT, self.queue_keys, [])
        waiters, seen_at = [], {}
        for key, record, at in zip(keys, records, seen):
            try:
                waiter = jsoncodec.loads(record) if record else None
            except ValueError:
                waiter = None
            if isinstance(waiter, dict):
                waiters.append(waiter)
                seen_at[_text(key)] = int(at or 0)
            else:  # a torn entry: it leaves (a live waiter joins again at its next poll)
                self.leave([_text(key)])
        return waiters, seen_at, now

    def join(self, me: dict) -> bool:
        """Join the queue at the back (True), or say that we still wait (False)."""
        record = dict(me, boot_id=this_host().boot_id)
        refresh_ms = int(WAITER_SILENCE_S * 250)
        return self.conn().run_script(JOIN, self.queue_keys, [_waiter_key(record), jsoncodec.dumps(record), refresh_ms]) == 1

    def leave(self, keys: list) -> int:
        return self.conn().run_script(LEAVE, self.queue_keys, keys) if keys else 0

    def take(self, guard, meta: dict, pid: int, replacing: LockState) -> tuple | None:
        """The lock is ours: (created, fence, replaced); None when someone else holds it.
        Takes over `replacing` only if it still holds the lock; `replaced` is False when it
        was released between its judgement and this take (then nobody was taken over)."""
        token = meta["token"]
        expected = _text(replacing.raw) if replacing.present else ""
        p = self.prefix
        keys = [self.lock_key, self.fence_key, self.annex_key, f"{p}holds:{_owner_key(meta['holder'])}",
                shared.locks_key(p), p + "floor", *self.expiry_keys, *self.queue_keys, p + shared.EPOCH_KEY,
                p + "reseed", shared.changes_key(p)]
        me = _waiter_key(waiter_record())
        conn = self.conn()
        server = conn.target.display
        verdict, fence, _now, epoch, status = conn.run_script(
            TAKE, keys, [token, lease_ttl_ms(), jsoncodec.dumps(meta), expected, self.name, me,
                         shared.known_epoch(server), os.urandom(8).hex()])
        if verdict == b"busy":
            return None
        guard.taken_by = me  # TAKE took us out of the queue
        meta["fence"] = fence
        if status == b"ok":  # else a loss, found now or before: the epoch known here stays, to tell it
            shared.remember_epoch(_text(epoch), server)
        shared.remember_fence(fence, server)  # a re-seed after a loss lifts every counter above it (store.redis_state)
        status_stamp.touch()  # every status line of this host shows the end lock's holder
        return token, fence, verdict == b"took"

    def still_mine(self, created, pid: int) -> LockState | None:
        state = self.read(judge=False)
        return state if state.present and (_text(state.raw) == created or _UNCHECKED) else None

    def remove(self, state: LockState) -> str | None:
        holder = (state.meta or {}).get("holder") or {}
        keys = [self.lock_key, self.annex_key, f"{self.prefix}holds:{_owner_key(holder)}", shared.changes_key(self.prefix)]
        if self.conn().run_script(RELEASE_UNCHECKED if _UNCHECKED else RELEASE, keys, [_text(state.raw), self.name]):
            status_stamp.touch()
        return None

    def lost_lease(self, token: str, holder: dict) -> LeaseLost | None:
        """LeaseLost when the lease `holder` (an owner record) took with `token`, or ("") the
        last one it took and was not told of, lapsed (not renewed: its holder paused, cut
        off, or without a watcher), naming who holds the lock now; None otherwise (still
        held, released, or forced away by a person). Told once: the record of it goes."""
        keys = [self.lock_key, *self.expiry_keys, self.annex_key, f"{self.prefix}holds:{_owner_key(holder)}"]
        now, at, held, annex, fence, kept = self.conn().run_script(LAPSE, keys, [token, self.name])
        if not (kept or (at and at <= now)):
            return None
        who = ""
        if held:
            try:
                record = jsoncodec.loads(annex)["holder"] if annex else {}
                who = f"pid {record['pid']} on {record.get('host') or '?'}"
            except (ValueError, KeyError, TypeError):
                who = "another holder"
        return LeaseLost(self.name, who, fence if held else 0, at if at <= now else 0, now)

    def tidy(self) -> None:
        pass  # nothing is left behind by a take that died: TAKE is one script

    def close(self) -> None:
        pass  # the connection is the process's (store.shared)


class RedisTransition:
    """One transition of a lock on the shared store. Not a guard: every step is one script,
    atomic on the server (the queue's joins and leaves, TAKE, which takes only from the head
    of the queue, RELEASE, which compares the token), so nothing is held between them and a
    transition that stops half way (Ctrl-Z, a crash, a partition) blocks nobody. The queue
    is read once, when first asked for (a release never reads it)."""

    def __init__(self, lock: "RedisLock", deadline: float) -> None:
        self.lock = lock
        self.deadline = deadline  # nothing to wait for: each step is one script
        self._queue: list | None = None
        self._seen: dict = {}  # waiter key -> when it last said it waits (server ms)
        self.now_ms = 0
        self.taken_by = ""  # the waiter key TAKE removed from the queue
        self._moved = False

    def __enter__(self) -> "RedisTransition":
        return self

    def __exit__(self, *exc) -> None:
        if self._moved:
            status_stamp.touch()  # status lines show who waits

    def _waiters(self) -> list:
        if self._queue is None:
            self._queue, self._seen, self.now_ms = self.lock.snapshot()
        return self._queue

    def first_waiter(self) -> dict | None:
        """The longest-waiting live waiter; the dead ones before it leave the queue."""
        waiters = self._waiters()
        dead: list = []
        while len(dead) < len(waiters) and not self.waiter_alive(waiters[len(dead)]):
            dead.append(waiters[len(dead)])
        if dead:
            self.lock.leave([_waiter_key(w) for w in dead])
            self._queue = waiters[len(dead):]
            self._moved = True
        return self._queue[0] if self._queue else None

    def waiter_alive(self, waiter: dict) -> bool:
        """A waiter in this PID namespace of this kernel is judged by its PID; any other is
        waiting while it keeps polling: it says so every few hundred ms (JOIN), stamped with
        the server's clock."""
        if _on_this_kernel(waiter) and waiter.get("pidns") in (None, this_host().pidns):
            return _waiter_alive(waiter)  # its PID answers
        seen = self._seen.get(_waiter_key(waiter))
        return seen is not None and self.now_ms - seen < WAITER_SILENCE_S * 1000

    def join_queue(self, me: dict) -> None:
        if self.lock.join(me):
            self._moved = True

    def leave_queue(self, me: dict) -> None:
        key = _waiter_key(me)
        if key != self.taken_by and self.lock.leave([key]):
            self._moved = True


def _waiter_key(waiter: dict) -> str:
    """A waiter's identity in the queue: PID, start time, PID namespace, boot id."""
    boot = waiter.get("boot_id") or this_host().boot_id
    return f"{waiter.get('pid')}:{waiter.get('start_time')}:{waiter.get('pidns')}:{boot}"
