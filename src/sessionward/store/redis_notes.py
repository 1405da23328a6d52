"""The shared store's note fence: a lease per note and a fencing number checked before the
rename, for writers on several kernels (machines, VMs) that share a synced vault.

Purpose: a flock on the note's directory excludes only the writers of one kernel. Across
kernels, a writer takes a lease on the note (store.redis_leases, lock "note:KEY", TTL
NOTE_LEASE_TTL_MS), reads the note, and right before replacing it asks the server, in one
script, whether it still may:
  - its fence must not be below the note's high-water mark (the highest fence a write of
    this note was allowed with): a writer that paused past its lease while a newer one
    wrote cannot overwrite the newer note (NoteFenced, exit 1);
  - the note as this host has it must not be a version the fenced writes already replaced:
    the server keeps the sha256 of what the last fenced write left and of the ones before
    it (NOTE_VERSIONS_KEPT); a synced copy that still holds one of those has not caught up,
    and replacing it would drop the newer note (NoteLagging, exit 1). Content no fenced write
    left (an edit in Obsidian, by hand) is not refused: as on the local store, an edit made
    outside sessionward is the user's, and expect_sha256 is what guards read-modify-writes
    against it. A note that is absent here is not refused either (it may have been removed
    on purpose); a sync that has not delivered a new note at all is not caught.
  - the epoch: after the server lost its state, fenced writes raise StoreStateLost (exit 3)
    until `sessionward doctor --reseed` (store.redis_leases).
The lease is renewed right before that check (LeaseLost, exit 1, when it lapsed already).
A write lasts milliseconds, far below the TTL; the TTL only bounds how long a writer that
died holding it keeps the note from others.

What it does not protect: the milliseconds between the check and the rename (a filesystem
cannot check a fence): a writer that pauses exactly there can still land late. The window
is the same as expect_sha256's on the local store.

The note's key, the same on every host for the same vault note (the path of the note
differs between a laptop and a remote box):
  vault:NAME/REL   a note inside a protected path of sessionward.toml (vault, vaults,
                   shared_paths; the innermost one): NAME is that path's last component,
                   REL the note's path below it. Configure the vault on every host: two
                   hosts see one note when their vault directories have the same name.
  path:ABS         any other note: its real path (one note for hosts that mount it at the
                   same place)
Keys, under the user's prefix P (with the lease's own: P lock:note:KEY, P fence:note:KEY):
  P mark:note:KEY      the high-water mark (the re-seed covers it, like every mark)
  P versions:note:KEY  hash: left (sha256 the last fenced write left), pending (what the
                       write allowed last is about to leave: a writer killed between the
                       check and its record leaves the note as either), old (the earlier
                       ones, space-separated, newest first)

Calling sequence: store.note_fence(target, timeout_s) -> RedisNoteFence (store.NoteFence).
Test-only: SESSIONWARD_TEST_NOTE_PAUSE=FILE makes a writer write its PID to FILE and stop
itself (SIGSTOP) right before the fence check, so that a test can let its lease lapse.
"""

import os
import time

from sessionward import store
from sessionward.errors import LeaseLost, NoteFenced, NoteLagging, NoteLockTimeout, StoreStateLost, StoreUnavailable
from sessionward.store import NoteFence, shared
from sessionward.store.redis_leases import RedisLeases, new_token
from sessionward.store.resp import Script

NOTE_LEASE_TTL_MS = 5000  # a write lasts milliseconds; a writer that died frees the note after this
NOTE_VERSIONS_KEPT = 16  # versions a lagging copy is recognised by
ABSENT = "absent"

# KEYS mark epoch reseed versions; ARGV fence known_epoch candidate_epoch current_sha new_sha
# kept. Refuses a fence below the mark, and a note that holds a version the fenced writes
# replaced; else records the mark and what this write is about to leave, in one step.
NOTE_CHECK_LUA = shared.CHECK_EPOCH_LUA + """
local status, epoch = check_epoch(KEYS[2], KEYS[3], ARGV[2], ARGV[3], KEYS[1])
if status ~= 'ok' then return {status, epoch} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'reseed', epoch} end
local fence = tonumber(ARGV[1])
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence < mark then return {'below', mark} end
local left = redis.call('HGET', KEYS[4], 'left')
local pending = redis.call('HGET', KEYS[4], 'pending')
local current = ARGV[4]
if left and current ~= left and current ~= pending then
  local old = redis.call('HGET', KEYS[4], 'old') or ''
  if current ~= 'absent' and string.find(' ' .. old .. ' ', ' ' .. current .. ' ', 1, true) then
    return {'behind', left}
  end
end
if fence > mark then redis.call('SET', KEYS[1], fence) end
redis.call('HSET', KEYS[4], 'pending', ARGV[5], 'fence', fence)
return {'ok', fence}
"""

# KEYS mark versions; ARGV fence new_sha kept. Records what the write left, if no newer
# fence was allowed since (else the newer writer's record stands).
NOTE_WRITTEN_LUA = """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
local left = redis.call('HGET', KEYS[2], 'left')
local old = redis.call('HGET', KEYS[2], 'old') or ''
if left and left ~= ARGV[2] then
  local kept = {left}
  for sha in string.gmatch(old, '%S+') do
    if #kept >= tonumber(ARGV[3]) then break end
    if sha ~= ARGV[2] and sha ~= left then kept[#kept + 1] = sha end
  end
  old = table.concat(kept, ' ')
end
redis.call('HSET', KEYS[2], 'left', ARGV[2], 'old', old)
redis.call('HDEL', KEYS[2], 'pending')
return 1
"""


def note_key(real: str) -> str:
    """The note's name on the shared store, the same on every host (see the module doc)."""
    from sessionward.config import load_config

    inside = [top for top in load_config().protected if real == top or real.startswith(top.rstrip("/") + "/")]
    if inside:
        top = max(inside, key=len)
        below = real[len(top):].lstrip("/")
        name = os.path.basename(top.rstrip("/")) or "/"
        key = f"vault:{name}/{below}" if below else f"vault:{name}"
    else:
        key = f"path:{real}"
    return os.fsencode(key).decode("utf-8", "backslashreplace")  # a key is text: odd bytes escaped


def _sha256(data: bytes | None) -> str:
    if data is None:
        return ABSENT
    import hashlib

    return hashlib.sha256(data).hexdigest()


class RedisNoteFence(NoteFence):
    """The lease on one note, and its fenced check (see the module doc)."""

    CHECK = Script(NOTE_CHECK_LUA)
    WRITTEN = Script(NOTE_WRITTEN_LUA)

    def __init__(self, target, timeout_s: float) -> None:
        self.path = target.real
        self.key = note_key(target.real)
        self.conn = shared.connection(store.shared_url())
        self.prefix = shared.prefix()
        self.leases = RedisLeases(self.conn, self.prefix, shared.known_epoch(self.conn.target.display))
        name = f"note:{self.key}"
        started = time.monotonic()
        lease = self.leases.acquire(name, new_token(f"{os.uname().nodename}:{os.getpid()}"), NOTE_LEASE_TTL_MS,
                                    timeout_s)
        self.waited_s = time.monotonic() - started
        shared.remember_epoch(self.leases.known_epoch, self.conn.target.display)
        if lease is None:
            holder = self.leases.holder(name)
            who = (f"{holder.owner} holds it (fence {holder.fence})", "retry in a moment; if that writer died, "
                   f"its lease lapses within {NOTE_LEASE_TTL_MS / 1000:g} s") if holder else None
            raise NoteLockTimeout(self.path, self.waited_s, who)
        self.lease = lease
        shared.remember_fence(lease.fence, self.conn.target.display)
        if lease.state_lost:
            self.close()
            raise StoreStateLost(self.conn.target.display, "not re-seeded since the loss was found")
        self._allowed = False

    def _keys(self) -> list:
        return [f"{self.prefix}mark:note:{self.key}", f"{self.prefix}versions:note:{self.key}"]

    def check(self, current: bytes | None, new: bytes) -> None:
        self.leases.renew(self.lease)
        _test_pause()
        mark, versions = self._keys()
        keys = [mark, self.prefix + shared.EPOCH_KEY, self.prefix + "reseed", versions]
        found = _sha256(current)
        verdict, value = self.conn.run_script(self.CHECK, keys, [
            self.lease.fence, self.lease.epoch, os.urandom(8).hex(), found, _sha256(new), NOTE_VERSIONS_KEPT])
        if verdict == b"ok":
            self._allowed = True
            return
        if verdict == b"below":
            raise NoteFenced(self.path, self.lease.fence, value)
        if verdict == b"behind":
            raise NoteLagging(self.path, found, value.decode())
        why = {b"lost": "its epoch key is gone", b"stale": "the epoch changed since this lease was taken",
               b"reseed": "not re-seeded since the loss was found"}.get(verdict, str(verdict))
        raise StoreStateLost(self.conn.target.display, why)

    def written(self, new: bytes) -> None:
        self.conn.run_script(self.WRITTEN, self._keys(), [self.lease.fence, _sha256(new), NOTE_VERSIONS_KEPT])

    def close(self) -> None:
        """Release the lease. One that lapsed is not an error here: a write under it passed
        the fence check, which is what protects the note (and a failed one raised already);
        nor is a server gone meanwhile (the lease lapses by itself; the error that stopped
        the write, if any, is the one to tell)."""
        try:
            self.leases.release(self.lease)
        except (LeaseLost, StoreUnavailable):
            pass


def _test_pause() -> None:
    """Test-only (see the module doc): stop here, as a writer paused by its host would."""
    marker = os.environ.get("SESSIONWARD_TEST_NOTE_PAUSE")
    if marker:
        import signal

        with open(marker, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGSTOP)
