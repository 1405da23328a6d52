"""Process identity and liveness.

A process is identified by PID + start time + host id, because PIDs are reused: a record
whose PID now names another process (other start time) is dead. On Linux everything comes
from /proc (start time is field 22 of /proc/PID/stat, in clock ticks since boot). The host
id is the boot id (/proc/sys/kernel/random/boot_id, new at every boot), the PID namespace
(a container or sandbox sees other PIDs), and the hostname for people to read. Elsewhere
psutil answers, imported only there.

Liveness of a record (owner_is_alive), by where its owner runs as seen from here:
  same kernel, same PID namespace
              dead when the PID does not exist, is a zombie, or has another start time; a
              process we may not inspect (EPERM) is alive; a stopped one is alive and says so.
  same kernel, another PID namespace (a container or sandbox sharing the state directory)
              its PID means nothing here: its life lock decides (identity.life), held =
              alive, free or gone = dead, as exact as a PID check, idle or not.
  rebooted    (same hostname, another known boot id) dead: every PID is new.
  another kernel (another hostname and boot id: a VM, another machine sharing the files)
              with the shared store: its lease there decides (store.redis_lives: renewed by
              its watcher while it lives, lapsed LEASE_TTL after its kernel stopped renewing).
              Without it: unknown, with its last sign of life: never called dead on age; a
              person clears it by hand (`prune --force`, `lock release --force`).
A boot id that cannot be read is unknown, never "another boot". An unknown verdict keeps the
record (alive=True, known=False): nobody is evicted on a guess.

A zombie (exited, not yet reaped) is dead, except to a caller that passes a reap grace (a lock's
waiter: `lock run` holds a lock through its command's process, and releases it just after
reaping it): a zombie whose parent lives, runs and is not PID 1 (which only adopted it) is
being reaped, so it counts as alive for up to `reap_grace_s` from when this process first saw
it a zombie (REAP_GRACE_S = 1 s for locks), then as dead. A parent that never reaps delays a
take-over by that much, once per waiting process: nobody waits on the dead for long.
"""

import os
import sys
import time

PID_MAX_LIMIT = 4194304  # the kernel's ceiling for pid_max (2**22): larger "PIDs" name nothing

BOOT_ID_UNKNOWN = "unknown"  # recorded when the boot id cannot be read: never compared as a boot
STOPPED_STATES = ("T", "t")  # /proc/PID/stat: stopped by a signal (Ctrl-Z, SIGSTOP), or traced
REAP_GRACE_S = 1.0  # how long a lock's zombie holder with a live parent counts as still holding

_IS_LINUX = sys.platform.startswith("linux")


def known_boot_id(boot_id) -> str | None:
    """`boot_id` when it names a boot; None when it is unknown (None, empty, BOOT_ID_UNKNOWN)."""
    return boot_id if isinstance(boot_id, str) and boot_id and boot_id != BOOT_ID_UNKNOWN else None


def same_process(a: dict, b: dict) -> bool:
    """Do owner records `a` and `b` (a state file's {"pid", "start_time", "host", "pidns",
    "boot_id"}, or a lock waiter's) name one process? The one rule for every "is this mine /
    is this the same process" question. The PIDs must be equal; start time, host and PID
    namespace must be equal wherever both records carry one (a record written before they
    were kept is judged on what it has); two known boot ids must be equal (an unknown one
    never means another boot)."""
    pid = a.get("pid")
    if type(pid) is not int or pid != b.get("pid"):
        return False
    for key in ("start_time", "host", "pidns"):
        mine, theirs = a.get(key), b.get(key)
        if mine is not None and theirs is not None and mine != theirs:
            return False
    boot_a, boot_b = known_boot_id(a.get("boot_id")), known_boot_id(b.get("boot_id"))
    return boot_a is None or boot_b is None or boot_a == boot_b


def on_another_kernel(owner: dict) -> bool:
    """Does an owner record name a process of another boot (another machine or VM sharing
    the store, or this machine before a reboot)? Only two known boot ids tell: an unknown
    one never means another boot."""
    boot, here = known_boot_id(owner.get("boot_id")), known_boot_id(this_host().boot_id)
    return boot is not None and here is not None and boot != here


class HostId:
    __slots__ = ("hostname", "boot_id", "pidns")

    def __init__(self, hostname: str, boot_id: str, pidns: int | None = None) -> None:
        self.hostname = hostname
        self.boot_id = boot_id
        self.pidns = pidns

    def __repr__(self) -> str:
        return f"HostId({self.hostname!r}, {self.boot_id!r}, pidns={self.pidns})"


_this_host: HostId | None = None


def this_host() -> HostId:
    """This machine's identity for this boot (a reboot makes every old PID meaningless)."""
    global _this_host
    if _this_host is None:
        hostname = os.uname().nodename
        pidns = None
        if _IS_LINUX:
            try:
                with open("/proc/sys/kernel/random/boot_id") as f:
                    boot_id = f.read().strip() or BOOT_ID_UNKNOWN
            except (OSError, UnicodeDecodeError):
                boot_id = BOOT_ID_UNKNOWN
            try:
                pidns = os.stat("/proc/self/ns/pid").st_ino
            except OSError:
                pidns = None
        else:  # pragma: no cover - exercised on macOS/BSD only
            import psutil

            boot_id = f"boot-{int(psutil.boot_time())}"
        _this_host = HostId(hostname, boot_id, pidns)
    return _this_host


class ProcessInfo:
    """What /proc tells of one process. `start_time` (and `session`, its session id as seen
    from our PID namespace: 0 when that leader is outside it) is None when it could not be read."""

    __slots__ = ("pid", "ppid", "state", "start_time", "comm", "session")

    def __init__(self, pid: int, ppid: int, state: str, start_time: int | None, comm: str, session: int | None = None) -> None:
        self.pid = pid
        self.ppid = ppid
        self.state = state
        self.start_time = start_time
        self.comm = comm
        self.session = session

    @property
    def is_zombie(self) -> bool:
        return self.state in ("Z", "X")

    @property
    def is_stopped(self) -> bool:
        """Stopped by a signal (Ctrl-Z, SIGSTOP) or by a debugger: alive, but doing nothing."""
        return self.state in STOPPED_STATES

    def __repr__(self) -> str:
        return f"ProcessInfo(pid={self.pid}, ppid={self.ppid}, state={self.state!r}, comm={self.comm!r})"


def read_process(pid: int) -> ProcessInfo | None:
    """The process `pid` on this host, or None when there is none.

    A process that exists but cannot be inspected (EPERM, hidepid) comes back with state
    "?" and start_time None: it is alive, its identity unknown.
    """
    if pid <= 0 or pid > PID_MAX_LIMIT:
        return None
    if not _IS_LINUX:  # pragma: no cover
        return _read_process_psutil(pid)
    # Raw os.open/os.read: a buffered open() nearly doubles the cost of this read, which
    # every registry operation pays once per owner.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return _probe_with_signal(pid)
    except PermissionError:
        return ProcessInfo(pid, 0, "?", None, "?")
    except OSError:
        return _probe_with_signal(pid)
    try:
        raw = os.read(fd, 4096)
    except OSError:  # the process exited between open and read
        return _probe_with_signal(pid)
    finally:
        os.close(fd)
    # comm sits in parentheses and may itself contain ") ": split at the last one.
    close = raw.rfind(b")")
    comm = raw[raw.find(b"(") + 1 : close].decode("utf-8", "replace")
    fields = raw[close + 2 :].split()
    try:
        return ProcessInfo(pid, int(fields[1]), fields[0].decode(), int(fields[19]), comm, int(fields[3]))
    except (IndexError, ValueError):
        return ProcessInfo(pid, 0, "?", None, comm)


def _probe_with_signal(pid: int) -> ProcessInfo | None:
    # /proc hid it (hidepid) or is missing: signal 0 still tells existence; EPERM = alive.
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return None
    except PermissionError:
        pass
    return ProcessInfo(pid, 0, "?", None, "?")


def _read_process_psutil(pid: int) -> ProcessInfo | None:  # pragma: no cover
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            state = "Z" if status == psutil.STATUS_ZOMBIE else "R"
            return ProcessInfo(pid, proc.ppid(), state, int(proc.create_time() * 100), proc.name())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return ProcessInfo(pid, 0, "?", None, "?")


def read_cmdline(pid: int) -> list[str]:
    """argv of `pid` (empty when unreadable)."""
    if not _IS_LINUX:  # pragma: no cover
        import psutil

        try:
            return psutil.Process(pid).cmdline()
        except psutil.Error:
            return []
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1]]


_boot_epoch: float | None = None


def process_started_at(info: ProcessInfo) -> float | None:
    """When the process started, in epoch seconds (None if unknown). Linux: boot time from
    /proc/stat plus the start time in clock ticks."""
    global _boot_epoch
    if info.start_time is None or not _IS_LINUX:
        return None
    if _boot_epoch is None:
        try:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        _boot_epoch = float(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            return None
        if _boot_epoch is None:
            return None
    return _boot_epoch + info.start_time / os.sysconf("SC_CLK_TCK")


class Liveness:
    """The verdict on one record's owner, with the reason a person can read. `stopped`: alive
    but stopped (Ctrl-Z, SIGSTOP), so it will not finish anything until someone resumes it."""

    __slots__ = ("alive", "reason", "stopped", "known", "how")

    def __init__(self, alive: bool, reason: str, stopped: bool = False, known: bool = True, how: str = "pid") -> None:
        self.alive = alive
        self.reason = reason
        self.stopped = stopped
        self.known = known  # False: cannot be told from here (alive stays True: never evicted on a guess)
        self.how = how  # how it was established: "pid", "life lock", "boot id", "unknown"

    def __bool__(self) -> bool:
        return self.alive

    def __repr__(self) -> str:
        return f"Liveness({self.alive}, {self.reason!r})"


def owner_is_alive(
    pid: int,
    start_time: int | None,
    hostname: str | None,
    boot_id: str | None,
    last_seen: float,
    now: float | None = None,
    seen: dict | None = None,
    pidns: int | None = None,
    life: bool = False,
    reap_grace_s: float = 0.0,
) -> Liveness:
    """Decide whether a record's owner lives, as the module docstring says.

    `seen` (PID -> ProcessInfo or None) lets one sweep read each process once, however many
    records it owns. None for boot_id, hostname or pidns means "not recorded" (old records).
    `life`: the record says a watcher holds its owner's life lock (identity.life), so a
    missing life file means the owner exited. `last_seen` is only shown, never judged.
    `reap_grace_s`: how long a zombie being reaped still counts as alive (module docstring).
    """
    here = this_host()
    boot, here_boot = known_boot_id(boot_id), known_boot_id(here.boot_id)
    if boot is not None and here_boot is not None:
        if boot != here_boot:
            if hostname is None or hostname == here.hostname:
                return Liveness(False, "recorded before this machine rebooted", how="boot id")
            verdict = _by_shared_lease(pid, start_time, boot_id, pidns, hostname)
            if verdict is not None:  # (a dead verdict is falsy)
                return verdict
            return _unknown(f"on another kernel ({hostname})", last_seen, now)
    elif hostname is not None and hostname != here.hostname and not (pidns is not None and pidns == here.pidns):
        # A boot id unknown on either side proves nothing: another hostname may be a
        # container here (its life lock answers) or another machine (nothing does).
        verdict = _by_life_lock(pid, start_time, boot_id, pidns, hostname, life, strict=False)
        if verdict is not None:  # (a dead verdict is falsy)
            return verdict
        return _unknown(f"on {hostname}, another kernel or a container whose boot id is unknown", last_seen, now)
    if pidns is not None and here.pidns is not None and pidns != here.pidns:
        verdict = _by_life_lock(pid, start_time, boot_id, pidns, hostname, life, strict=True)
        if verdict is not None:
            return verdict
        return _unknown(f"{where_it_runs(hostname, pidns)}, without a watcher", last_seen, now)
    if seen is None:
        info = read_process(pid)
    elif pid in seen:
        info = seen[pid]
    else:
        info = seen[pid] = read_process(pid)
    if info is None:
        return Liveness(False, f"process {pid} is gone")
    if info.is_zombie:
        return zombie_liveness(info, reap_grace_s)
    if start_time is not None and info.start_time is not None and info.start_time != start_time:
        return Liveness(False, f"PID {pid} was reused by another process ({info.comm})")
    return live_process(info)


def record_liveness(owner: dict, last_seen: float | None, now: float | None = None, seen: dict | None = None,
                    reap_grace_s: float = 0.0) -> Liveness:
    """owner_is_alive for an owner record as stored (identity.Owner.to_record): the one way
    registry, locks and claims judge theirs."""
    return owner_is_alive(
        owner["pid"], owner.get("start_time"), owner.get("host"), owner.get("boot_id"), last_seen, now,  # type: ignore[arg-type]
        seen=seen, pidns=owner.get("pidns"), life=owner.get("life") is True, reap_grace_s=reap_grace_s,
    )


_zombies_seen: dict = {}  # (pid, start time) -> when this process first saw it a zombie (monotonic)


def zombie_liveness(info: ProcessInfo, reap_grace_s: float = 0.0) -> Liveness:
    """The verdict on a zombie: dead, unless its parent is reaping it and `reap_grace_s` has
    not passed since we first saw it a zombie (module docstring)."""
    dead = Liveness(False, f"process {info.pid} is a zombie (exited, not yet reaped)")
    if reap_grace_s <= 0 or info.ppid <= 1:  # PID 1 adopted it: nobody who holds anything reaps it
        return dead
    parent = read_process(info.ppid)
    if parent is None or parent.is_zombie or parent.is_stopped:  # a stopped parent reaps nothing
        return dead
    now = time.monotonic()
    if len(_zombies_seen) > 64:  # zombies long reaped (or given up on) are forgotten
        for key in [key for key, seen in _zombies_seen.items() if now - seen > reap_grace_s]:
            del _zombies_seen[key]
    first = _zombies_seen.setdefault((info.pid, info.start_time), now)
    if now - first >= reap_grace_s:
        return Liveness(False, f"process {info.pid} is a zombie (exited, not reaped by its parent, "
                               f"pid {parent.pid} ({parent.comm}), for {now - first:.1f} s)")
    return Liveness(True, f"process {info.pid} has exited; its parent, pid {parent.pid} ({parent.comm}), "
                          "is reaping it")


INIT_PIDNS = 0xEFFFFFFC  # the initial PID namespace's inode (PROC_PID_INIT_INO): the host's


def where_kind(hostname: str | None, pidns: int | None) -> tuple[str, str | None]:
    """Where a record's owner runs, as seen from here: ("here", None); ("machine", H) for
    another hostname in our PID namespace; ("host", H or None) for the initial PID namespace
    seen from another; ("container", H) for another PID namespace with its own hostname;
    ("sandbox", N) for another PID namespace with our hostname, N its inode."""
    here = this_host()
    if pidns is None or here.pidns is None or pidns == here.pidns:
        return ("here", None) if hostname in (None, here.hostname) else ("machine", hostname)
    if pidns == INIT_PIDNS:
        return "host", hostname or None
    if hostname and hostname != here.hostname:
        return "container", hostname
    return "sandbox", str(pidns)


def where_it_runs(hostname: str | None, pidns: int | None) -> str:
    """where_kind in words a person recognises: "here", "on H", "on the host H", "in
    container H", "in a sandbox (PID namespace N)"."""
    kind, name = where_kind(hostname, pidns)
    if kind == "here":
        return "here"
    if kind == "machine":
        return f"on {name}"
    if kind == "host":
        return f"on the host {name}" if name else "on the host"
    if kind == "container":
        return f"in container {name}"
    return f"in a sandbox (PID namespace {name})"


def _by_life_lock(pid, start_time, boot_id, pidns, hostname, life: bool, strict: bool) -> Liveness | None:
    """The life lock's verdict on an owner whose PID we cannot see; None when it says nothing.
    strict: the owner is surely on this kernel, so a missing file of a watched record means
    it exited; else only a lock seen held or free counts (a file on a shared filesystem
    proves nothing about another kernel's processes if it was never locked here)."""
    from sessionward.identity import life as life_locks

    state = life_locks.probe(life_locks.life_key(boot_id, pidns, pid, start_time))
    where = where_it_runs(hostname, pidns)
    if state == life_locks.HELD:
        return Liveness(True, f"process {pid} {where} is running (its watcher holds its life lock)", how="life lock")
    if state == life_locks.FREE or (state == life_locks.MISSING and life and strict):
        return Liveness(False, f"process {pid} {where} has exited (its watcher is gone)", how="life lock")
    return None


_shared_lives: dict | None = None  # {life key: ms left}: see use_shared_lives
_shared_ttl_ms = 0


def use_shared_lives(table: dict | None, ttl_ms: int = 0) -> None:
    """Judge owners on other kernels by their leases on the shared store: `table` holds the
    life keys (identity.life.life_key) whose lease had not lapsed at the store's last read,
    with the milliseconds left. Set by the shared store's registry at each read (the store
    sits above this module); None (the local store): such owners are unknown."""
    global _shared_lives, _shared_ttl_ms
    _shared_lives, _shared_ttl_ms = table, ttl_ms


def _by_shared_lease(pid, start_time, boot_id, pidns, hostname) -> Liveness | None:
    """The shared store's verdict on an owner on another kernel; None without one."""
    if _shared_lives is None:
        return None
    from sessionward.identity.life import life_key

    key = life_key(boot_id, pidns, pid, start_time)
    if key is None:
        return None
    where = f"on {hostname}" if hostname else "on another kernel"
    left = _shared_lives.get(key)
    if left is not None:
        return Liveness(True, f"process {pid} {where} is running (its watcher renews its lease on the shared store; "
                              f"{max(0, left) / 1000:.0f} s left)", how="lease")
    return Liveness(False, f"process {pid} {where} is gone: its lease on the shared store lapsed "
                           f"(no renewal for {_shared_ttl_ms / 1000:g} s)", how="lease")


def _unknown(where: str, last_seen: float | None, now: float | None) -> Liveness:
    now = time.time() if now is None else now
    if last_seen is None or last_seen - last_seen != 0:
        seen = "no sign of life recorded"
    else:
        from sessionward._humanize import format_age

        seen = f"last sign of life {format_age(max(0.0, now - last_seen))} ago"
    return Liveness(True, f"unknown: {where}; {seen}", known=False, how="unknown")


def live_process(info: ProcessInfo) -> Liveness:
    """The verdict on a process judged alive: running, or stopped (which says so)."""
    if info.is_stopped:
        return Liveness(True, f"process {info.pid} is stopped (suspended: Ctrl-Z or SIGSTOP)", stopped=True)
    return Liveness(True, f"process {info.pid} is running")


def resume_advice(pid: int) -> str:
    """What to do about a stopped process: the one phrase every message uses."""
    return f"resume it with `fg` in its terminal or `kill -CONT {pid}`"
