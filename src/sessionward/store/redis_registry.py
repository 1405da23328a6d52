"""The registry on the shared store (Redis or Valkey): the same semantics as store.local.

Keys, under the user's prefix P (resp.key_prefix):
    P sessions        hash: session id -> its record, JSON (the fields sessionward.registry
                      defines, exactly as the local store keeps them)
    P registry:guard  the exclusion of one update: a token, PX GUARD_LEASE_MS
    P registry:version  how many updates were committed (INCR by each): an unguarded write
                      lands only if it is still the number its read saw. It starts from the
                      server's clock (ms x 1000), so a server that lost it (no AOF, a FLUSHDB)
                      never counts back through numbers it already gave (heartbeat_memo)
    P changes         the change counter every commit INCRs (store.shared: what `watch` polls)
    P alive           owners' leases (store.redis_lives): an update also renews the lease of
                      every owner on this kernel whose record it writes, so that a session is
                      alive to other kernels from the moment its record appears (its watcher
                      starts after the hook that registers it has answered)
    P locks, P lock:NAME  store.redis_locks's, only read here: every read also says whether a
                      lock is held (Store.locks_held_at_read), so the hooks that name the
                      locks others hold ask the server nothing more when none is

Calling sequence of an update (Store.update_sessions): with `appendfsync always` every
writing script costs the server an fsync, and the hooks update on every prompt, every turn's
end and every session's start (docs/BENCHMARKS.md, 8b), so an update is first tried in one
writing script. One script (PEEK) reads the sessions, the owners' leases, the version and
the epoch without taking the guard (it writes nothing: nothing appended, no fsync; the
leases that lapsed are removed by the next write), waiting while an update holds the
guard; `change` runs on them; if it changed something, one script
(TRY_COMMIT) writes the records that differ and deletes those that went, only if no update
holds the guard and the version is still the one read. So the write rests on the latest state
and lands whole or not at all, and one whose view went stale (another update committed in
between, or it was paused) writes nothing. Then, and only then, the update is done again
under the guard: one script takes it (SET NX PX with a token) and reads; `change` runs a
second time, on the newer state (the Store interface says `change` may run twice on the
shared store); one script writes, only if the guard still holds our token, and frees it. A
guarded update's read sees no optimistic commit while it holds the guard, so its view stays
the latest too, and a write lost to a race is done at most twice. A guarded writer whose
guard lapsed (paused past GUARD_LEASE_MS: Ctrl-Z, a stalled VM) writes nothing and is told
(LeaseLost, exit 1): its `change` ran on a state others may have changed since. Waiting for a
busy guard polls (capped backoff) up to lock_timeout_s, then RegistryLockTimeout names the
holder. Readers take no guard: one script returns one consistent snapshot. The version an
update left (Store.version, heartbeat_memo) is the one its read saw, or the one its write
made, as the script returns it: no later read can mistake another process's write for it.

Every read also hands identity.process the leases it judges owners on other kernels by
(use_shared_lives), and only those: owners on this kernel keep the exact checks (PID, life
lock) and an owner of unknown boot is never judged by a lease, so the script leaves theirs on
the server (on one machine a read brings back none, however many sessions run).

What changes from the local store: `durable` is the server's (run it with AOF,
appendfsync always); a record the server holds that is not a valid record is left out of
every read and left in place (nothing is kept aside: it is not a file); the status stamp is
renewed on this host only (other hosts' status lines refresh within their period).

It is a bug to call update_sessions from inside `change`, and to fork inside it (StoreForked).

Test-only: SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK=1 (as for the local store) skips waiting for
the guard, so tests can show that without it concurrent updates are lost.
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, status_stamp
from sessionward.errors import LeaseLost, RegistryLockTimeout, StoreForked
from sessionward.store import Store, shared
from sessionward.store.records import _DISABLE_LOCK_ENV, REGISTRY_LOCK_TIMEOUT_S, record_is_valid, shown_on_status_lines
from sessionward.store.resp import Script
from sessionward.store.shared import LOCKS_HELD_LUA, SERVER_MS_LUA, lease_ttl_ms

GUARD_LEASE_MS = 2000  # an update holds it for milliseconds; a paused holder is passed after this
_POLL_FIRST_S = 0.0005
_POLL_CAP_S = 0.005

# The leases a reader needs, those not lapsed of owners on other kernels, as {life key, ms
# left}*. ARGV here (_here()): this kernel's boot id as identity.life.life_key writes it; ''
# when it is unknown (then identity.process consults no lease at all: none is sent); '-'
# when it is known but life_key writes it "unknown" (ours cannot be told from others': all
# are sent). identity.process consults a lease only for an owner whose boot id is known and
# not ours (this kernel's owners keep the exact checks), so ours stay on the server: on one
# machine the reply holds none, however many sessions run.
_LEASES_ELSEWHERE_LUA = """
local function leases_elsewhere(key, now, here)
  local out = {}
  if here == '' then return out end
  local flat = redis.call('ZRANGEBYSCORE', key, string.format('(%d', now), '+inf', 'WITHSCORES')
  for i = 1, #flat, 2 do
    if string.match(flat[i], '^(.*)%-%d+%-%d+%-%d+$') ~= here then
      out[#out + 1] = flat[i]
      out[#out + 1] = tonumber(flat[i + 1]) - now
    end
  end
  return out
end
"""

# KEYS sessions alive locks; ARGV here prefix. Writes nothing. Whether a lock is held comes
# with every read (shared.LOCKS_HELD_LUA): the hooks that tell of other sessions ask it next
# (registry.with_holds_now), and a round trip more is what a hook on a busy machine can least
# afford (docs/BENCHMARKS.md: each wait on the server pays a scheduling delay).
LOAD_LUA = SERVER_MS_LUA + _LEASES_ELSEWHERE_LUA + LOCKS_HELD_LUA + """
local now = server_ms()
return {now, redis.call('HGETALL', KEYS[1]), leases_elsewhere(KEYS[2], now, ARGV[1]), locks_held(KEYS[3], ARGV[2])}
"""

# KEYS guard sessions alive version epoch locks; ARGV here [token guard_ms] prefix. Free:
# {1, now, sessions, leases, version, epoch, locks held}; busy: {0, now, holder, ms left}.
# PEEK is the same without taking the guard: it writes nothing (no AOF append, no fsync;
# lapsed leases go with the next write).
_FREE_LUA = """
  return {1, now, redis.call('HGETALL', KEYS[2]), leases_elsewhere(KEYS[3], now, ARGV[1]),
          redis.call('GET', KEYS[4]) or '0', redis.call('GET', KEYS[5]) or '',
          locks_held(KEYS[6], ARGV[#ARGV])}
end
return {0, now, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
"""
BEGIN_LUA = SERVER_MS_LUA + _LEASES_ELSEWHERE_LUA + LOCKS_HELD_LUA + """
local now = server_ms()
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then""" + _FREE_LUA
PEEK_LUA = SERVER_MS_LUA + _LEASES_ELSEWHERE_LUA + LOCKS_HELD_LUA + """
local now = server_ms()
if redis.call('EXISTS', KEYS[1]) == 0 then""" + _FREE_LUA

# Writing the records: KEYS guard sessions alive version epoch changes; ARGV[2] ttl_ms, then
# from ARGV[3]: n_set (id json)* n_del id* n_owners owner*. Bumps the version and the change
# counter; `version` is then the one this write made.
_WRITE_LUA = """
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', server_ms())  -- the lapsed leases go here, not in the reads
local until_ms = server_ms() + tonumber(ARGV[2])
for _ = 1, n do
  local score = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if not score or tonumber(score) < until_ms then redis.call('ZADD', KEYS[3], until_ms, ARGV[i]) end
  i = i + 1
end
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], server_ms() * 1000) end
local version = redis.call('INCR', KEYS[4])
""" + shared.BUMP_LUA

# ARGV[1] token. Writes only while the guard is still ours: a lapsed writer changes nothing.
# {1, '', version, epoch}, or {0, the holder}.
COMMIT_LUA = SERVER_MS_LUA + """
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then return {0, held or ''} end
redis.call('DEL', KEYS[1])
""" + _WRITE_LUA + """return {1, '', version, redis.call('GET', KEYS[5]) or ''}
"""

# ARGV[1] the version PEEK returned. Writes only if no update holds the guard and none
# committed since that read: a writer whose view is stale changes nothing. {version, epoch}, or 0.
TRY_COMMIT_LUA = SERVER_MS_LUA + """
if redis.call('EXISTS', KEYS[1]) == 1 or (redis.call('GET', KEYS[4]) or '0') ~= ARGV[1] then return 0 end
""" + _WRITE_LUA + """return {version, redis.call('GET', KEYS[5]) or ''}
"""

# KEYS guard; ARGV token
END_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

LOAD = Script(LOAD_LUA)
BEGIN = Script(BEGIN_LUA)
PEEK = Script(PEEK_LUA)
COMMIT = Script(COMMIT_LUA)
TRY_COMMIT = Script(TRY_COMMIT_LUA)
END = Script(END_LUA)


def _here() -> str:
    """The leases' script's ARGV here (_LEASES_ELSEWHERE_LUA): this kernel's boot id as
    identity.life.life_key writes it in a lease's key; '' when it is unknown; '-' when
    life_key writes it "unknown", like other kernels' ids it cannot write."""
    from sessionward.identity.life import life_key
    from sessionward.identity.process import known_boot_id, this_host

    boot = known_boot_id(this_host().boot_id)
    if boot is None:
        return ""
    written = (life_key(boot, 0, 0, 0) or "").rpartition("-0-0-0")[0]
    return "-" if written == "unknown" else written


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


class RedisStore(Store):
    """The registry in one hash of the shared store at `url`; connects on first use."""

    def __init__(self, url: str, lock_timeout_s: float = REGISTRY_LOCK_TIMEOUT_S) -> None:
        self.url = url
        self.lock_timeout_s = lock_timeout_s
        self.notices: list = []
        self._prefix = ""

    @property
    def prefix(self) -> str:
        if not self._prefix:
            self._prefix = shared.prefix()
        return self._prefix

    def _conn(self):
        return shared.connection(self.url)

    def _keys(self) -> list:
        p = self.prefix
        return [p + "registry:guard", p + "sessions", p + "alive", p + shared.REGISTRY_VERSION_KEY, p + shared.EPOCH_KEY]

    def _read_keys(self) -> list:
        """The keys of the reads that look at the guard (PEEK waits while it is held, BEGIN
        takes it): _keys(), then the set of the lock names."""
        return [*self._keys(), shared.locks_key(self.prefix)]

    def _load(self, conn) -> list:
        """LOAD's reply: [now, the sessions (HGETALL), the leases elsewhere, whether a lock is
        held (1 or 0)], the last noted as locks_held_at_read."""
        p = self.prefix
        self.locks_held_at_read = None  # a read that fails tells nothing: locks_may_be_held asks
        reply = conn.run_script(LOAD, [p + "sessions", p + "alive", shared.locks_key(p)], [_here(), p])
        self.locks_held_at_read = reply[3] == 1
        return reply

    def describe(self) -> str:
        from sessionward.store import shown

        return f"{shown(self.url)} {self.prefix}sessions"

    # -- reading ---------------------------------------------------------------------------

    def load_sessions(self) -> dict:
        now, flat, lives, _ = self._load(self._conn())
        self._use_lives(lives)
        return self._decode(flat)[0]

    def _decode(self, flat) -> tuple[dict, dict]:
        """(sessions, {id: the JSON as stored}) from HGETALL's flat list; invalid records left out."""
        sessions, raw = {}, {}
        for i in range(0, len(flat), 2):
            key, data = _text(flat[i]), flat[i + 1]
            try:
                record = jsoncodec.loads(data)
            except ValueError:
                continue
            if record_is_valid(key, record):
                sessions[key], raw[key] = record, data
        return sessions, raw

    def _use_lives(self, flat) -> None:
        """Hand identity.process the leases of owners on other kernels: [life key, ms left]*."""
        from sessionward.identity.process import use_shared_lives

        use_shared_lives({_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}, lease_ttl_ms())

    # -- writing ---------------------------------------------------------------------------

    def update_sessions(self, change, durable: bool = True):
        self.version = ""
        try:
            return self._update(change)
        except BaseException:
            self.version = ""  # what was read is no version of anything this update left
            raise

    def _update(self, change):
        conn = self._conn()
        if os.environ.get(_DISABLE_LOCK_ENV) == "1":  # test-only: read, change, write back, nothing compared
            return self._run(change, self._load(conn)[1], self._write_unguarded)
        # Read without the guard, write in one script if nobody wrote since. Only a lost race
        # runs `change` again, under the guard (see the module docstring). `durable` is the
        # server's (AOF): the same either way.
        reply = self._wait_free(conn, PEEK, [])
        version = reply[4]

        def try_commit(sessions: dict, raw: dict) -> None:
            args = [version, *self._write_args(sessions, raw)]
            written = conn.run_script(TRY_COMMIT, self._keys() + [shared.changes_key(self.prefix)], args)
            if not written:
                raise _Stale
            self.version = shared.version_token(*written)

        try:
            return self._run(change, reply[2], try_commit)
        except _Stale:
            pass
        token = f"{os.uname().nodename}:{os.getpid()}#{os.urandom(8).hex()}"
        flat = self._begin(conn, token)
        pid = os.getpid()
        committed = []

        def commit(sessions: dict, raw: dict) -> None:
            args = [token, *self._write_args(sessions, raw)]
            written = conn.run_script(COMMIT, self._keys() + [shared.changes_key(self.prefix)], args)
            if written[0] != 1:
                # Our guard lapsed while `change` ran (paused past GUARD_LEASE_MS): nothing written.
                raise LeaseLost("registry", _text(written[1]).rpartition("#")[0], 0)
            committed.append(True)
            self.version = shared.version_token(*written[2:4])

        try:
            return self._run(change, flat, commit)
        finally:
            if not committed and os.getpid() == pid:
                try:
                    conn.run_script(END, self._keys()[:1], [token])
                except Exception:  # noqa: BLE001 - the guard lapses by itself; the first error matters
                    pass

    def _run(self, change, flat, commit):
        """Run `change` once on the records in `flat` (HGETALL's reply); if it changed
        something, commit(sessions, the records as read). Its result."""
        pid = os.getpid()
        sessions, raw = self._decode(flat)
        shown = shown_on_status_lines(sessions)
        result, changed = change(sessions)
        if os.getpid() != pid:
            raise StoreForked(self.describe())  # the child must not commit the parent's change
        if changed:
            commit(sessions, raw)
            if shown_on_status_lines(sessions) != shown:
                status_stamp.touch()
        return result

    def _begin(self, conn, token: str) -> list:
        """Take the guard and read the sessions (one script); poll while someone else holds it."""
        return self._wait_free(conn, BEGIN, [token, GUARD_LEASE_MS])[2]

    def _wait_free(self, conn, script: Script, args: list) -> list:
        """Run `script` (BEGIN or PEEK) until it finds the guard free, polling with a capped
        backoff up to lock_timeout_s (RegistryLockTimeout names the holder); its reply."""
        started = time.monotonic()
        delay = _POLL_FIRST_S
        args = [_here(), *args, self.prefix]
        self.locks_held_at_read = None  # until a read succeeds: one that fails or times out tells nothing
        while True:
            reply = conn.run_script(script, self._read_keys(), args)
            if reply[0] == 1:
                self._use_lives(reply[3])
                self.locks_held_at_read = reply[6] == 1
                self.version = shared.version_token(reply[4], reply[5])  # what `change` will see
                return reply
            waited = time.monotonic() - started
            if waited >= self.lock_timeout_s:
                holder, left_ms = _text(reply[2]), reply[3]
                who = (f"held by {holder.rpartition('#')[0] or '?'} (host:pid), {max(0, left_ms) / 1000:.1f} s "
                       "left of its lease") if holder else "it was freed just now"
                raise RegistryLockTimeout(f"{self.describe()} guard", waited, (who, "retry in a moment"))
            time.sleep(min(delay, max(0.0, self.lock_timeout_s - waited)))
            delay = min(delay * 2, _POLL_CAP_S)

    def _write_args(self, sessions: dict, raw: dict) -> list:
        """The write scripts' arguments from ARGV[2] on (see _WRITE_LUA)."""
        writes, gone, owners = self._diff(sessions, raw)
        return [lease_ttl_ms(), len(writes) // 2, *writes, len(gone), *gone, len(owners), *owners]

    def _write_unguarded(self, sessions: dict, raw: dict) -> None:
        """Test-only (the negative control): written as read, nothing compared."""
        conn = self._conn()
        writes, gone, _ = self._diff(sessions, raw)
        for i in range(0, len(writes), 2):
            conn.call("HSET", self._keys()[1], writes[i], writes[i + 1])
        for key in gone:
            conn.call("HDEL", self._keys()[1], key)
        conn.call("INCR", shared.changes_key(self.prefix))

    def _diff(self, sessions: dict, raw: dict) -> tuple:
        """([id, JSON]* of the records that differ from what was read, [id]* of those that
        went, the life keys of their owners on this kernel, whose leases the write renews)."""
        from sessionward.identity.life import life_key
        from sessionward.identity.process import known_boot_id, this_host

        here = known_boot_id(this_host().boot_id)
        writes, owners = [], []
        for key, record in sessions.items():
            data = jsoncodec.dumps(record).encode("utf-8")
            if raw.get(key) != data:
                writes += [key, data]
                owner = record["owner"]
                if here is not None and owner.get("boot_id") == here:
                    life = life_key(here, owner.get("pidns"), owner["pid"], owner.get("start_time"))
                    if life is not None:
                        owners.append(life)
        return writes, [key for key in raw if key not in sessions], owners


class _Stale(Exception):
    """An unguarded update's view went stale before its write (another update committed): nothing written."""
