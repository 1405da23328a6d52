"""The shared store's own state, as `sessionward doctor` inspects and repairs it: the epoch,
the re-seed flag, the fence counters and marks, against what this host remembers.

Purpose: a server that restarts without its data (no AOF), or from an old snapshot, hands
out fences again from 1: a holder whose lease predates the loss could then outrank a new
one. store.redis_leases refuses fenced writes once a loss is found (the epoch key gone
while a host knew one: the re-seed flag); this module tells it (inspect()) and clears it
(reseed()): every fence counter of this user set above every recorded mark and above the
highest fence this host was handed (store.shared.known_fence), a new epoch kept.

What it does not find: a loss on a server no host of this user had talked to (nothing
remembers an epoch or a fence), and a partial loss that left the counters above what this
host knows (another host's fences are not known here: run doctor there too).

Calling sequence (sessionward.doctor; the current backend must be SHARED):
    state = inspect()          # SharedState; StoreUnavailable (exit 3) when unreachable
    if state.lost and not state.flagged: flag_loss()   # fenced writes refused from now on
    if state.lost: top, epoch = reseed()               # `doctor --reseed`
"""

import os

from sessionward import store
from sessionward.store import shared
from sessionward.store.redis_leases import RedisLeases
from sessionward.store.resp import Script

SCAN_BATCH = 1000


class SharedState:
    """What the server holds for this user, and what this host remembers."""

    __slots__ = ("url", "epoch", "flagged", "known_epoch", "known_fence", "top", "lost")

    def __init__(self, url, epoch, flagged, known_epoch, known_fence, top) -> None:
        self.url = url
        self.epoch = epoch  # the server's epoch, "" when its key is gone
        self.flagged = flagged  # the re-seed flag: a loss was found and not re-seeded yet
        self.known_epoch = known_epoch
        self.known_fence = known_fence
        self.top = top  # the highest fence counter or mark on the server
        self.lost = self._why_lost()  # "" when nothing says the server lost state

    def _why_lost(self) -> str:
        if self.flagged:
            return "a loss was found (its epoch key was gone) and the fence counters are not re-seeded yet"
        if not self.epoch and self.known_epoch:
            return f"its epoch key is gone (this host last saw epoch {self.known_epoch}): it restarted without its data"
        if self.top < self.known_fence and not self.epoch:
            return (f"its fence counters are gone with its epoch key (this host was handed fences up to "
                    f"{self.known_fence}): it restarted without its data")
        if self.top < self.known_fence:
            return (f"its fence counters went back (highest {self.top}, this host was handed {self.known_fence}): "
                    "restored from an older copy")
        return ""


def _top_fence(conn, prefix: str) -> int:
    """The highest fence the server would hand or has recorded: its counters, the marks, and
    the floor a re-seed set (after a loss no counter is left: the floor alone lifts them)."""
    top, cursor = 0, b"0"
    keys: list = [prefix + "floor"]
    for kind in ("fence:", "mark:"):
        while True:
            cursor, batch = conn.call("SCAN", cursor, "MATCH", f"{prefix}{kind}*", "COUNT", SCAN_BATCH)
            keys += batch
            if cursor == b"0":
                break
    for start in range(0, len(keys), SCAN_BATCH):
        for value in conn.call("MGET", *keys[start:start + SCAN_BATCH]):
            if value and value.isdigit():
                top = max(top, int(value))
    return top


def inspect() -> SharedState:
    """The shared store's state for this user (reads only)."""
    conn = shared.connection(store.shared_url())
    prefix = shared.prefix()
    epoch = conn.call("GET", prefix + shared.EPOCH_KEY)
    flagged = conn.call("EXISTS", prefix + "reseed") == 1
    server = conn.target.display
    return SharedState(server, epoch.decode() if epoch else "", flagged, shared.known_epoch(server),
                       shared.known_fence(server), _top_fence(conn, prefix))


# KEYS epoch reseed; ARGV candidate_epoch: what a fenced script does when it finds a loss
FLAG_LOSS = Script("""
if not redis.call('GET', KEYS[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('SET', KEYS[2], redis.call('GET', KEYS[1]), 'NX')
return 1
""")


def flag_loss() -> None:
    """Set the re-seed flag (and an epoch, if the server has none), as a fenced script does
    when it finds a loss: every fenced write, from any host, is refused until reseed(). For
    a loss only this host can tell (the fences it was handed, an epoch it remembers)."""
    conn = shared.connection(store.shared_url())
    prefix = shared.prefix()
    conn.run_script(FLAG_LOSS, [prefix + shared.EPOCH_KEY, prefix + "reseed"], [os.urandom(8).hex()])


def reseed() -> tuple:
    """Set every fence counter above every recorded mark and the highest fence this host
    knows, clear the re-seed flag; (the new floor, the epoch now), both remembered here."""
    conn = shared.connection(store.shared_url())
    server = conn.target.display
    leases = RedisLeases(conn, shared.prefix(), shared.known_epoch(server))
    top = leases.reseed(shared.known_fence(server))
    shared.remember_epoch(leases.known_epoch, server)
    return top, leases.known_epoch
