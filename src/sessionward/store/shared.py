"""The shared store (Redis or Valkey) as this process reaches it: one connection, the user's
key prefix, and the epoch this host last saw.

Purpose: every shared-store backend module (registry, locks, claims, note fences) talks to
the server through the one connection this module keeps, so that a process opens at most
one socket, re-opened after fork() (a connection is never shared across a fork), and every
key of one user carries one prefix (resp.key_prefix: people can share a server).

The epoch: the server keeps a random id (redis_leases, "P epoch"); this host keeps the last
one it saw on each server in STATE/sessionward/store-epoch, so that a host that meets the
server after the server lost its data can tell that loss from a first use (nothing
remembered of that server: first use).

Calling sequence (the store's backends; nothing else should):
    conn = connection(url)      # resp.Connection, AUTH and SELECT done, or StoreUnavailable
    keys = prefix()             # "sessionward:{alice}:"
    ttl = lease_ttl_ms()        # how long an owner's or a lock's lease lasts unless renewed
    epoch = known_epoch(conn.target.display)   # "" when this host never saw one there
    remember_epoch(epoch, conn.target.display) # after an operation returned the server's epoch
    remember_fence(fence, conn.target.display) # a fence it handed this host
    change_token(conn)          # `watch`: changes whenever a shared write changed something
    locks_held(conn)            # whether any lock is held now (the registry's reads tell it too)
    registry_version_and_lock(conn, keys, "end")  # (a token that changes whenever the registry
                                # did (heartbeat_memo), whether lock "end" is held): one MGET

The change counter (P changes): every script that changes what `watch` shows (a registry
commit, a lock taken or released, a claim record changed, an owner finished) INCRs it in
the same script (BUMP_LUA, with changes_key() passed as its last key), so a view polls one
small script instead of reading everything: the counter, and how many owners' leases are
still running (a host that died changes nothing; its sessions lapse by time).

This module imports only resp (no client library): hooks reach it on their hot path.
"""

import os

from sessionward import paths, store
from sessionward.errors import ConfigError, StoreNotBuilt
from sessionward.store import resp

LEASE_TTL_MS = 30000  # store.redis_lives says why 30 s
_TEST_TTL_ENV = "SESSIONWARD_TEST_LEASE_TTL_MS"
EPOCH_FILE_NAME = "store-epoch"
CHANGES_KEY = "changes"
REGISTRY_VERSION_KEY = "registry:version"  # store.redis_registry: how many updates were committed
EPOCH_KEY = "epoch"  # store.redis_leases: a random id set at first use; gone or new: the server lost state
BUMP_LUA = "redis.call('INCR', KEYS[#KEYS])\n"  # in a script whose last key is changes_key()
# Lua fragments the backends' scripts share, written once: the server's clock (every deadline
# is the server's, never a host's), and the next fence of a lock's counter (above the floor a
# re-seed set, so a counter restored from an old snapshot never hands out a used number).
SERVER_MS_LUA = """
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
NEXT_FENCE_LUA = """
local function next_fence(counter, floor_key)
  local fence = redis.call('INCR', counter)
  local floor = tonumber(redis.call('GET', floor_key) or '0')
  if fence <= floor then
    fence = floor + 1
    redis.call('SET', counter, fence)
  end
  return fence
end
"""
# check_epoch (store.redis_leases says why): 'ok', 'stale' (the caller knew another epoch:
# someone found a loss before it) or 'lost' (this call found the epoch gone while state was
# expected: it sets the re-seed flag); a first use sets the epoch. expected_key: a key that
# exists only if the server had state (nil: only what the caller knew tells a loss)
CHECK_EPOCH_LUA = """
local function check_epoch(epoch_key, reseed_key, known, candidate, expected_key)
  local current = redis.call('GET', epoch_key)
  if current then
    if known ~= '' and known ~= current then return 'stale', current end
    return 'ok', current
  end
  redis.call('SET', epoch_key, candidate)
  if known ~= '' or (expected_key and redis.call('EXISTS', expected_key) == 1) then
    redis.call('SET', reseed_key, candidate)
    return 'lost', candidate
  end
  return 'ok', candidate
end
"""
# KEYS changes alive: the counter, and the owners' leases still running by the server's clock
CHANGE_TOKEN_LUA = SERVER_MS_LUA + """
local now = server_ms()
return {redis.call('GET', KEYS[1]) or '0', redis.call('ZCOUNT', KEYS[2], now, '+inf')}
"""
_CHANGE_TOKEN = resp.Script(CHANGE_TOKEN_LUA)
_EPOCH_MAX = 64

_conn = None
_conn_key: tuple = ()  # (url, pid) the connection was made for


def connection(url: str) -> "resp.Connection":
    """This process's connection to the store at `url`, made on first use (and again after a
    fork, a change of URL, or once the one it had failed or was cut while idle: a new
    operation gets a new connection; no command is ever retried). Raises StoreUnavailable
    (exit 3), one line."""
    global _conn, _conn_key
    key = (url, os.getpid())
    if _conn is not None and _conn_key == key:
        if _conn.usable():
            return _conn
        _conn.close()  # failed before, or cut while idle: a new one for this new operation
    if _conn is not None and _conn_key[1] == key[1]:
        _conn.close()  # another URL in this process (tests): the old one is ours to close
    # After a fork the parent's socket is left alone (closing it here would not harm the
    # parent, but writing to it would interleave replies); the child gets its own.
    _conn = None
    origin = store.shared_origin(url)
    try:
        target = resp.parse_store_url(url)
    except ConfigError as error:  # the setting's fault, told as such (exit 3), not a usage error
        raise StoreNotBuilt(None, f"{origin}: {error.message}", origin) from None
    _conn = resp.connect(target, setting=origin)
    _conn_key = key
    return _conn


def disconnect() -> None:
    """Close this process's connection (tests, and a process that knows it is done)."""
    global _conn, _conn_key
    if _conn is not None and _conn_key[1] == os.getpid():
        _conn.close()
    _conn, _conn_key = None, ()


_prefixes: dict = {}  # effective uid -> its prefix: a passwd lookup is a dozen system calls


def prefix() -> str:
    """The key prefix of this user's keys: the login name of the effective user."""
    uid = os.geteuid()
    if uid not in _prefixes:
        import pwd  # a C module: cheap, and only here

        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:  # a UID without a passwd entry (some containers): the number names it
            user = f"uid{uid}"
        _prefixes[uid] = resp.key_prefix(user)
    return _prefixes[uid]


def lease_ttl_ms() -> int:
    """LEASE_TTL_MS, or the test-only override (100 ms at least). Here rather than in
    redis_lives: the hooks that write a lease (a registration, a lock) need its length, not
    the watchers' scripts."""
    text = os.environ.get(_TEST_TTL_ENV, "")
    return max(100, int(text)) if text.isdigit() else LEASE_TTL_MS


FENCE_FILE_NAME = "store-fence"
_MEMORY_MAX_BYTES = 64 * 1024  # a line per server this host used: far more than any host has


# What this host remembers of each server it used (the epoch it last saw, the highest fence it
# was handed), one line per server in its file: "SERVER VALUE", SERVER being the connection's
# display (resp.Target.display: scheme, user, host and port or socket, database; never the
# password). Per server, so that moving to another server (a new one, or the same data behind
# another address) is a first use there, not a loss. A line of one word (written before this
# was per server) counts for any server until that server's own line is written.


def _memory_path(name: str, state_dir: str | None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, name)


def _remembered(name: str, state_dir: str | None) -> dict:
    """{server: value} from the file `name` ("" for a line without a server); {} if unreadable."""
    try:
        with open(_memory_path(name, state_dir), "rb") as f:
            text = f.read(_MEMORY_MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        server, _, value = line.strip().rpartition(" ")
        if value:
            found[server] = value
    return found


def _recall(found: dict, server: str) -> str:
    return found.get(server, found.get("", ""))


def _remember(name: str, found: dict, server: str, value: str, state_dir: str | None, durable: bool) -> None:
    """Write the file `name` as `found` (what _remembered read) holds it, with `server`'s line
    set to `value`: the line without a server was this one's, its own line replaces it."""
    from sessionward._atomic import write_file_atomic

    lines = {k: v for k, v in found.items() if k}
    lines[server] = value
    path = _memory_path(name, state_dir)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_file_atomic(path, "".join(f"{k} {v}\n" for k, v in lines.items()).encode(), durable=durable)


def known_epoch(server: str, state_dir: str | None = None) -> str:
    """The epoch this host last saw on `server` (a connection's target.display), or "" (never,
    or the file unreadable)."""
    text = _recall(_remembered(EPOCH_FILE_NAME, state_dir), server)
    return text if 0 < len(text) <= _EPOCH_MAX and text.isalnum() else ""


def remember_epoch(epoch: str, server: str, state_dir: str | None = None) -> None:
    """Keep `epoch` as the one this host last saw on `server` (atomically; a no-op when
    unchanged or empty)."""
    found = _remembered(EPOCH_FILE_NAME, state_dir)
    if epoch and found.get(server) != epoch:
        _remember(EPOCH_FILE_NAME, found, server, epoch, state_dir, durable=True)


def known_fence(server: str, state_dir: str | None = None) -> int:
    """The highest fencing number `server` handed this host (0: none), a lock's or a note's,
    kept in STATE/sessionward/store-fence: a re-seed sets every counter above it, and doctor
    tells a server whose counters went back below it (restored from an old snapshot)."""
    text = _recall(_remembered(FENCE_FILE_NAME, state_dir), server)
    return int(text) if text.isdigit() else 0


def remember_fence(fence: int, server: str, state_dir: str | None = None) -> None:
    """Keep `fence` if it is above the highest one `server` handed this host (atomically; no
    fsync: a power loss of this host forgets a few, as two processes remembering at once may,
    and the server's own marks still count). Never raises: it is called once the fence is
    held, and a state directory it cannot write fails the next operation that needs it."""
    found = _remembered(FENCE_FILE_NAME, state_dir)
    own, known = found.get(server, ""), _recall(found, server)
    if own.isdigit() and fence <= int(own):
        return
    try:
        _remember(FENCE_FILE_NAME, found, server, str(max(fence, int(known) if known.isdigit() else 0)), state_dir,
                  durable=False)
    except Exception:  # noqa: BLE001 - StateUnwritable, UnsafeState: see above
        pass


def changes_key(prefix_: str) -> str:
    """The change counter's key under `prefix_` (the last key of every script that bumps it)."""
    return prefix_ + CHANGES_KEY


def registry_version_and_lock(conn, prefix_: str, lock_name: str = "") -> tuple[str, bool]:
    """(the registry's update counter and the server's epoch (store.redis_registry,
    redis_leases) as "<counter>@<epoch>": a change of either is a change of the registry;
    whether the lock `lock_name` is held, its key present only while its lease runs: False
    without a name). One round trip."""
    keys = [prefix_ + REGISTRY_VERSION_KEY, prefix_ + EPOCH_KEY]
    if lock_name:
        keys.append(lock_key(prefix_, lock_name))
    counter, epoch, *holder = conn.call("MGET", *keys)
    return version_token(counter, epoch), bool(holder) and holder[0] is not None


def version_token(counter, epoch) -> str:
    """registry_version's token from the counter and the epoch as the server holds them
    (bytes, an int or None): the registry's scripts return both with what they read or wrote."""
    return f"{int(counter or 0)}@{(epoch or b'-').decode('ascii', 'replace')}"


def lock_key(prefix_: str, name: str) -> str:
    """The key of the named lock under `prefix_`: its holder's token, present only while held
    (its lease; store.redis_locks)."""
    return f"{prefix_}lock:{name}"


# Whether any lock is held now (a lock's key exists only while its lease runs): the known
# names (the set every acquire adds to), then their keys. store.locks_may_be_held's answer on
# the shared store, and the registry's reads give it in the same reply (redis_registry).
LOCKS_HELD_LUA = """
local function locks_held(names_key, prefix)
  for _, name in ipairs(redis.call('SMEMBERS', names_key)) do
    if redis.call('EXISTS', prefix .. 'lock:' .. name) == 1 then return 1 end
  end
  return 0
end
"""
_LOCKS_HELD = resp.Script(LOCKS_HELD_LUA + "return locks_held(KEYS[1], ARGV[1])\n")


def locks_key(prefix_: str) -> str:
    """The set of every lock name ever acquired under `prefix_` (store.redis_locks adds to it)."""
    return prefix_ + "locks"


def locks_held(conn) -> bool:
    """Whether any lock is held now (LOCKS_HELD_LUA). One round trip."""
    p = prefix()
    return conn.run_script(_LOCKS_HELD, [locks_key(p)], [p]) == 1


def change_token(conn) -> tuple:
    """(the change counter, how many owners' leases run): differs after any shared write
    `watch` shows, and once a dead host's owner lapsed. One round trip."""
    keys = prefix()
    counter, running = conn.run_script(_CHANGE_TOKEN, [changes_key(keys), keys + "alive"], [])
    return counter, running
