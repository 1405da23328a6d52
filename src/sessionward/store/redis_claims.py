"""The shared store's claims: the same records as the local files, one key per file.

What a claim means is sessionward.claims's; this module keeps the records on the shared
store (Redis or Valkey) and changes them only as told. Keys, under the user's prefix P
(store.shared.prefix(), e.g. "sessionward:{alice}:"):

  P claims:PATH    the claims on PATH (the path's bytes), a JSON list of claim records,
                   exactly as a local shard holds them under "files"; it expires HISTORY
                   (keep_s) after its last update: every claim in it has aged out by then
  P claims-ended   the ended owners, a JSON list of {"owner", "at"} as in ended.json; it
                   expires keep_s after the last session ended
  P changes        the change counter a changed record INCRs (store.shared: `watch` polls it)

An update is optimistic and atomic on the server: read the record, run change() on it,
then a script writes the result only if the record still holds the very bytes that were
read (sent back whole: a record is a few kilobytes, and no hash module is loaded), else the
update starts again on the newer record, until lock_timeout_s passes (ClaimsLockTimeout,
exit 1). No lock is held, so a writer killed half-way leaves nothing to
clean up; change() must be pure (it may run more than once). Readers take one GET (a hook
reads one key), MGET for many paths, SCAN for all (`sessionward watch`, not hooks).

What it does not do: persist a claim record (a claim is advice the guards weigh for minutes:
it is written to the server's memory only, not to its AOF, which would cost an fsync on
every PostToolUse; a server restart forgets those written since the AOF was last rewritten,
as a local power loss may), or fence anything (claims are advice; note writes are fenced,
store.redis_notes).

Calling sequence: as store.local_claims (store.ClaimFacts), through store.open_claims().
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec, store
from sessionward.errors import ClaimsLockTimeout
from sessionward.store import ClaimFacts, shared
from sessionward.store.resp import Script

SCAN_BATCH = 1000
RETRY_PAUSE_S = 0.002  # between attempts of an update that met a conflicting write

# KEYS record changes; ARGV what was read ('' when absent: a record is never empty), the new
# value ('' deletes), ttl_ms, '1' to keep the write out of the AOF and replicas (a claim
# record: see _update)
COMPARE_AND_SET_LUA = """
if ARGV[4] == '1' then redis.set_repl(redis.REPL_NONE) end
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3])) end
if current ~= ARGV[2] then """ + shared.BUMP_LUA + """end
return 1
"""
COMPARE_AND_SET = Script(COMPARE_AND_SET_LUA)


def _decode(raw: bytes | None):
    """The stored list, or None when absent or unusable (readers: claims are advice)."""
    if not raw:
        return None
    try:
        return jsoncodec.loads(raw)
    except (ValueError, RecursionError):
        return None


class RedisClaims(ClaimFacts):
    """The claim records of this user on the shared store."""

    def __init__(self, lock_timeout_s: float) -> None:
        self.conn = shared.connection(store.shared_url())
        self.prefix = shared.prefix().encode()
        self.lock_timeout_s = lock_timeout_s
        self.where = f"{self.conn.target.display} {shared.prefix()}claims:*"

    def _key(self, path: str) -> bytes:
        return self.prefix + b"claims:" + os.fsencode(path)

    # -- reading ----------------------------------------------------------------------------

    def claims_on(self, path: str):
        return _decode(self.conn.call("GET", self._key(path)))

    def claims_on_each(self, paths: list) -> dict:
        unique = list(dict.fromkeys(paths))
        found = {}
        for start in range(0, len(unique), SCAN_BATCH):
            batch = unique[start:start + SCAN_BATCH]
            for path, raw in zip(batch, self.conn.call("MGET", *[self._key(p) for p in batch])):
                found[path] = _decode(raw)
        return {path: found[path] for path in paths}

    def all_claims(self) -> list:
        head = self.prefix + b"claims:"
        pattern = head.replace(b"\\", b"\\\\") + b"*"  # the prefix holds no glob character (resp.key_prefix)
        keys, cursor = [], b"0"
        while True:
            cursor, batch = self.conn.call("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
            keys += batch
            if cursor == b"0":
                break
        found = []
        keys = sorted(set(keys))
        for start in range(0, len(keys), SCAN_BATCH):
            batch = keys[start:start + SCAN_BATCH]
            for key, raw in zip(batch, self.conn.call("MGET", *batch)):
                claims = _decode(raw)
                if claims is not None:
                    found.append((os.fsdecode(key[len(head):]), claims))
        return found

    def ended(self):
        return _decode(self.conn.call("GET", self.prefix + b"claims-ended"))

    # -- writing ----------------------------------------------------------------------------

    def update_claims(self, path: str, change, fresh, keep_s: float) -> None:
        self._update(self._key(path), lambda raw: fresh(change(raw)), keep_s, volatile=True)

    def update_ended(self, change, keep_s: float) -> None:
        self._update(self.prefix + b"claims-ended", change, keep_s, volatile=False)

    def _update(self, key: bytes, change, keep_s: float, volatile: bool) -> None:
        """volatile: the write is kept in the server's memory only, not appended to its AOF
        (nor sent to replicas): with `appendfsync always` the server fsyncs before it answers
        any write it appends, and a claim record is written by every PostToolUse. A claim is
        advice; a server restart forgets the records written since the AOF was last rewritten
        (or brings back an older one, which ages out the same way). The ended owners (once
        per session) are appended as usual."""
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            raw = self.conn.call("GET", key)
            new = change(_decode(raw))
            value = jsoncodec.dumps(new).encode("utf-8") if new else b""
            keys = [key, shared.changes_key(self.prefix.decode())]
            if self.conn.run_script(COMPARE_AND_SET, keys, [raw or b"", value, int(keep_s * 1000), int(volatile)]) == 1:
                return
            if time.monotonic() >= deadline:
                raise ClaimsLockTimeout(self.where, self.lock_timeout_s,
                                        ("other sessions kept changing the same record", "retry in a moment"))
            time.sleep(RETRY_PAUSE_S)
