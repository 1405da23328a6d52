"""Exceptions and the exit-code table, the one place both are defined.

Every exception sessionward raises on purpose is defined here, whichever module raises it
(import them from here). Every exception carries the facts of the broken state and its exit code; the CLI's single
top-level handler turns them into one line and that code. Each refines the built-in it is
a case of, so callers of the Python API can catch `TimeoutError` or `OSError` as usual.

Exit codes (stable, documented in docs/CLI.md):
  0  ok
  1  conflict, refused, timed out
  2  usage or bad input
  3  environment problem (unwritable or unsafe state, a corrupt file found and kept aside,
     or an internal error: one line names the log holding its traceback)
  130 interrupted (Ctrl-C)
`lock run` exits with its command's status instead. A hook (`sessionward hook`) exits 0 or 1
only: its 1 means it failed open, never 2, which Claude Code reads as "block the tool".

Exceptions take the facts they name (a lock's state, a path, what was waited for) and build
their message from them; they read those objects, never import their modules: this module
sits at the bottom of the import graph.
"""

import os

EXIT_OK = 0
EXIT_CONFLICT = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_CONFLICT: "conflict, refused or timed out",
    EXIT_USAGE: "usage error or bad input",
    EXIT_ENVIRONMENT: "environment problem (unwritable or unsafe state, corrupt file kept aside, internal error)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, or an OSError of errno ENOMEM (an import's directory listing, a mmap,
    a fork under a memory limit): both mean the process is out of memory, not a bug. So does
    a SystemError under a memory limit: CPython now and then fails an allocation without
    setting MemoryError, and its caller then raises "error return without exception set"
    (seen in an import under `ulimit -v`, once in a few hundred runs at the edge)."""
    if isinstance(error, MemoryError) or (isinstance(error, OSError) and error.errno == 12):
        return True
    return isinstance(error, SystemError) and memory_is_limited()


def memory_is_limited() -> bool:
    """Whether this process runs under an address-space or data limit (`ulimit -v`, `-d`),
    the limits under which an allocation fails instead of the kernel's OOM killer stepping in."""
    try:
        import resource

        return any(resource.getrlimit(limit)[0] != resource.RLIM_INFINITY
                   for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA))
    except Exception:  # noqa: BLE001 - looking needs memory too: failing to is an answer
        return True


class SessionwardError(Exception):
    """Base of every error sessionward raises on purpose. `code` names it in --json output."""

    exit_code = EXIT_ENVIRONMENT
    code = "error"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class BadInput(SessionwardError, ValueError):
    """An argument, a name or a document given by the caller is unusable."""

    exit_code = EXIT_USAGE
    code = "bad_input"


class SettingsInvalid(BadInput):
    """A Claude Code settings.json we cannot merge into: not JSON, or not the shape Claude
    Code reads. The user's document, not our state: exit 2, and the file is left as it was."""

    code = "settings_invalid"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", "fix it (or move it aside) and run the command again; nothing was changed")
        self.path = path
        self.problem = problem


class UsageError(BadInput):
    """The command line itself is wrong: unknown command or option, missing argument."""

    code = "usage"


class Refused(SessionwardError):
    """A request that would harm another live session, or that needs an owner it lacks."""

    exit_code = EXIT_CONFLICT
    code = "refused"


class NotRegistered(Refused):
    """The caller has no live session where one is needed (heartbeat of nothing)."""

    code = "not_registered"


class RegistryLockTimeout(SessionwardError, TimeoutError):
    """The registry's flock was not obtained in time: some process holds it too long."""

    exit_code = EXIT_CONFLICT
    code = "registry_lock_timeout"

    def __init__(self, lock_path: str, waited_s: float, holder: tuple[str, str] | None = None) -> None:
        # holder: (who, what to do), from sessionward._flock.flock_holder when /proc names it
        who, todo = holder or ("another sessionward process is holding it", "retry in a moment")
        super().__init__(f"registry lock {lock_path} still busy after {waited_s:.1f} s: {who}", todo)
        self.lock_path = lock_path
        self.waited_s = waited_s


class UnsafeState(SessionwardError, OSError):
    """A state path is a symlink, not a regular file, or in a directory others can write."""

    code = "unsafe_state"

    def __init__(self, path: str, why: str, hint: str = "") -> None:
        super().__init__(f"refusing state path {path}: {why}", hint)
        self.path = path


class StateUnwritable(SessionwardError, OSError):
    """The state directory or a state file cannot be created or written (disk full, EROFS...)."""

    code = "state_unwritable"

    def __init__(self, path: str, os_error: OSError) -> None:
        reason = os_error.strerror or str(os_error)
        super().__init__(f"cannot write {path}: {reason}", "check free space and permissions")
        self.path = path
        self.errno = os_error.errno


class StateTooNew(SessionwardError, OSError):
    """A state file written by a newer sessionward: never touched, never moved aside."""

    code = "state_too_new"

    def __init__(self, path: str, schema: str) -> None:
        super().__init__(
            f"{path} has schema {schema!r}, newer than this sessionward understands",
            "upgrade sessionward (the file was left untouched)",
        )
        self.path = path
        self.schema = schema


class StateCorrupt(SessionwardError, OSError):
    """A state file was unreadable; it was kept aside as `kept_as` and a fresh one started.

    Raised only as a notice (see store.local): the operation that found it still completes.
    """

    code = "state_corrupt"

    def __init__(self, path: str, why: str, kept_as: str, salvaged: int = 0) -> None:
        salvage = f", {salvaged} valid record(s) carried over" if salvaged else ""
        super().__init__(
            f"{path} was corrupt ({why}); kept as {kept_as}{salvage}; started a fresh one"
        )
        self.path = path
        self.why = why
        self.kept_as = kept_as
        self.salvaged = salvaged


# -- Usage and configuration ---------------------------------------------------------------


class ConfigError(BadInput):
    """The configuration file or a SESSIONWARD_* variable holds something unusable."""


class HookInputError(SessionwardError, ValueError):
    """The event's JSON is not what Claude Code sends (missing or mistyped field)."""

    exit_code = EXIT_CONFLICT  # a hook's 1: it failed open
    code = "bad_hook_input"


# -- Paths given by the user ---------------------------------------------------------------


class ForeignLink(Refused):
    """A symlink another user planted in a sticky world-writable directory (the kernel's
    protected_symlinks rule): following it would write wherever that user chose."""

    code = "foreign_symlink"

    def __init__(self, path: str, link: str, link_uid: int) -> None:
        super().__init__(
            f"refusing to follow {link} (from {path}): a symlink owned by uid {link_uid} in a sticky "
            f"world-writable directory, not by you (uid {os.geteuid()}) nor by the directory's owner",
            "name the file itself, or ask its owner to remove the link",
        )
        self.path = path
        self.link = link


class DanglingLink(Refused):
    """The path ends in a symlink to something that does not exist."""

    code = "dangling_symlink"

    def __init__(self, path: str, target: str) -> None:
        super().__init__(f"refusing to write {path}: it is a symlink to {target}, which does not exist",
                         f"create {target} first, or remove the link")
        self.path = path
        self.target = target


class DirectoryUnreadable(StateUnwritable):
    """The directory holding the file cannot be opened for reading (its lock is taken there)."""

    code = "directory_unreadable"

    def __init__(self, path: str, directory: str, os_error: OSError) -> None:
        super().__init__(directory, os_error)
        self.message = (f"cannot write {path}: its directory {directory} cannot be opened for reading "
                        f"({os_error.strerror or os_error})")
        self.hint = "writers of a file take turns under a lock on its directory; give yourself read access to it"


# -- Locks (sessionward.locks, sessionward._lockfile, the CLI's lock commands) -------------


class LockTimeout(SessionwardError, TimeoutError):
    """A named lock stayed held (or queued before us) for the whole timeout. `state` is the
    lock's state as last seen (sessionward._lockfile.LockState): who holds it, alive or not."""

    exit_code = EXIT_CONFLICT
    code = "lock_timeout"

    def __init__(self, state, waited_s: float) -> None:
        super().__init__(
            f"lock {state.name} still held after {waited_s:.1f} s by {state.describe()}",
            state.advice(f"wait for it to finish and retry; if that session is stuck: sessionward lock release {state.name} --force"),
        )
        self.state = state
        self.waited_s = waited_s


class LockStillWaiting(LockTimeout):
    """One step of a wait in steps ended without the lock, and steps remain: who holds it,
    how far the wait is, and the next step to run. Exit 1, as a timed-out acquire. `wait` is
    the CLI's StepWait (sessionward.cli.locks): the step, the whole wait, how much is done."""

    code = "lock_waiting"

    def __init__(self, timeout: LockTimeout, wait, short_path) -> None:
        state = timeout.state
        who = f"held by {state.describe(short_path)}" if state.held else "free, but other sessions queued before this one"
        SessionwardError.__init__(
            self,
            f"waiting for lock {state.name} ({wait.waited():.0f} s of {wait.total:.0f} s), {who}",
            f"still waiting: run the next step, 'lock acquire {state.name} --step {wait.step + 1}'",
        )
        self.state = state
        self.waited_s = wait.waited()


class LockRefused(Refused):
    """A release of a lock another live owner holds, without force."""

    code = "lock_refused"

    def __init__(self, state) -> None:
        super().__init__(
            f"lock {state.name} is held by another live process: {state.describe()}",
            state.advice(f"let it finish; to take it anyway: sessionward lock release {state.name} --force"),
        )
        self.state = state


class GuardTimeout(SessionwardError, TimeoutError):
    """The guard of a lock stayed busy: some sessionward process is stuck mid-transition."""

    exit_code = EXIT_CONFLICT
    code = "guard_timeout"

    def __init__(self, guard_path: str, waited_s: float, holder: tuple[str, str] | None = None) -> None:
        who, todo = holder or (
            "another sessionward process is stuck in the middle of taking or releasing the lock", "retry"
        )
        super().__init__(f"lock guard {guard_path} still busy after {waited_s:.1f} s: {who}", todo)
        self.guard_path = guard_path


class LockRunAborted(SessionwardError):
    """The command of `lock run` died (killed) before it could be started."""

    exit_code = EXIT_CONFLICT
    code = "lock_run_aborted"

    def __init__(self, name: str, status: int) -> None:
        super().__init__(f"lock run {name}: the command was killed before it started (status {status}); it did not run")


# -- Registry, claims and notes ------------------------------------------------------------


ABSENT = "absent"  # expect_sha256 value of sessionward.notes: the note must not exist yet


class SessionAlive(Refused):
    """A forced removal named a session whose owner is known to be alive."""

    def __init__(self, alive: list) -> None:
        from sessionward._humanize import short_session_id as short_id

        named = "; ".join(
            f"session {short_id(a.record['id'])} (project {a.record['project']}) is alive: {a.verdict.reason}" for a in alive
        )
        pids = " ".join(str(a.record["owner"]["pid"]) for a in alive)
        super().__init__(
            f"refused, nothing removed: {named}",
            f"stop it first (end that session, or kill {pids} where it runs): then it goes by itself",
        )
        self.alive = alive


class StoreNotBuilt(SessionwardError):
    """SESSIONWARD_STORE, or `store` in sessionward.toml (`origin`: its path), names a backend
    this sessionward does not have (yet): refusing, so that no process works on the local
    files while others use the shared store."""

    code = "store_not_built"

    def __init__(self, value: str | None, why: str, origin: str = "SESSIONWARD_STORE") -> None:
        if value is None:  # `why` says it all, naming the setting (a URL or a file that does not parse)
            fix = ("fix it, or unset it to use the local store" if origin == "SESSIONWARD_STORE"
                   else f"fix {origin} (without `store` it uses the local store)")
            super().__init__(why, fix)
        elif origin == "SESSIONWARD_STORE":
            where, fix = f"SESSIONWARD_STORE={value!r}", "unset SESSIONWARD_STORE (or set it to 'local')"
            super().__init__(f"{where}: {why}", f"{fix} to use the local store")
        else:
            where, fix = f"{origin}: store = {value!r}", f"remove `store` from {origin} (or set it to \"local\")"
            super().__init__(f"{where}: {why}", f"{fix} to use the local store")
        self.value = value
        self.origin = origin


class StoreForked(SessionwardError):
    """A process forked inside a registry transaction: the child may not commit it."""

    code = "store_forked"

    def __init__(self, path: str) -> None:
        super().__init__(f"not writing {path}: this process was forked inside its parent's registry transaction",
                         "only the process that took the registry lock may commit; it is a bug to fork there")


class ClaimsLockTimeout(SessionwardError, TimeoutError):
    """The claims directory's lock stayed busy: a conflict like every lock timeout (exit 1)."""

    exit_code = EXIT_CONFLICT
    code = "claims_lock_timeout"

    def __init__(self, path: str, timeout_s: float, holder: tuple[str, str] | None = None) -> None:
        who, todo = holder or (
            "another sessionward process is stuck holding it", "it frees itself when that process exits"
        )
        super().__init__(f"the claims lock {path} stayed busy for {timeout_s:g} s: {who}", todo)
        self.path = path
        self.waited_s = timeout_s


class NoteChanged(Refused):
    """write_note(expect_sha256=...) found the note changed since the writer read it."""

    code = "note_changed"

    def __init__(self, path: str, expected: str, found: str) -> None:
        now = "it does not exist" if found == ABSENT else f"its sha256 is now {found[:12]}"
        was = "to be absent" if expected == ABSENT else f"sha256 {expected[:12]}"
        super().__init__(
            f"{path} changed since it was read ({now}, expected {was})",
            "read it again and redo the change on its current content; nothing was written",
        )
        self.path = path
        self.expected = expected
        self.found = found


class NoteLockTimeout(SessionwardError, TimeoutError):
    """Another writer held the note's lock for longer than the timeout."""

    exit_code = EXIT_CONFLICT
    code = "note_lock_timeout"

    def __init__(self, path: str, waited_s: float, holder: tuple[str, str] | None = None) -> None:
        who, todo = holder or ("another process is writing it", "retry in a moment")
        super().__init__(f"note {path} still being written after {waited_s:.1f} s: {who}", todo)
        self.path = path
        self.waited_s = waited_s


# -- The shared store (sessionward.store.resp, sessionward.store.redis_leases) -------------


class StoreUnavailable(SessionwardError, ConnectionError):
    """The shared store cannot be reached or used now: down, unreachable, paused, too slow,
    or refusing our password. `url` is shown without its password; nothing was retried."""

    code = "store_unavailable"

    def __init__(self, url: str, why: str, setting: str = "SESSIONWARD_STORE", auth: bool = False,
                 fix: str = "") -> None:
        # setting: what named the store (SESSIONWARD_STORE, or the path of sessionward.toml);
        # auth: the server refused our credentials, or asked for some and the URL gave none;
        # fix: the advice when the server answers, but not as the URL asks (a database it does
        # not have, TLS it does not speak), where "start it" would mislead; {where} names the setting
        if setting == "SESSIONWARD_STORE":
            where, without = "SESSIONWARD_STORE", "unset it to use the local store"
        else:
            where, without = f"`store` in {setting}", "remove it to use the local store"
        if auth:
            fix = "check the password (and user name) in the URL of {where}"
        hint = fix.format(where=where) if fix else f"start it, or check {where} ({without})"
        super().__init__(f"shared store {url} unavailable: {why.rstrip('. ')}", hint)
        self.url = url
        self.why = why.rstrip(". ")
        self.setting = setting

    def not_guarding(self) -> str:
        """What a hook's line and the status line say of it, the words that matter first
        (Claude Code cuts long lines): nothing is guarded now, and why."""
        return f"not guarding: shared store {self.url} unavailable ({self.why})"


class StoreCommandFailed(SessionwardError):
    """The shared store answered a command with an error (out of memory, a read-only
    replica, a key of another type): the server's state, not our input."""

    code = "store_command_failed"

    def __init__(self, url: str, command: str, reply: str) -> None:
        super().__init__(f"shared store {url} refused {command}: {reply}")
        self.url = url
        self.reply = reply


class LeaseLost(Refused):
    """A holder's lease on a shared-store lock lapsed (paused, partitioned or not renewed in
    time): told at its next renew or release, never silently. `holder` is who holds the lock
    now ("" for nobody), `fence` the fencing number of that holder's lease (0 for none),
    `lapsed_at_ms` the server time the lease expired at (0 when unknown)."""

    code = "lease_lost"

    def __init__(self, name: str, holder: str, fence: int, lapsed_at_ms: int = 0, now_ms: int = 0) -> None:
        ago = f" {(now_ms - lapsed_at_ms) / 1000:.3f} s ago" if lapsed_at_ms and now_ms >= lapsed_at_ms else ""
        now = f"now held by {holder} (fence {fence})" if holder else "nobody holds it now"
        super().__init__(f"lease on lock {name} lapsed{ago}: {now}",
                         "what was done after the lapse was not protected by the lock; check it and acquire again")
        self.name = name
        self.holder = holder
        self.fence = fence
        self.lapsed_at_ms = lapsed_at_ms


class StoreStateLost(SessionwardError):
    """The shared store restarted without its data (its epoch key is gone or new): fence
    numbers start over, so fenced writes are refused until the counters are re-seeded above
    every recorded mark."""

    code = "store_state_lost"

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"shared store {url} lost its state ({why}): fenced writes are refused",
                         "run `sessionward doctor --reseed` (it sets every fence counter above every recorded mark), "
                         "then try again")
        self.url = url
        self.why = why


class NoteFenced(Refused):
    """A note write on the shared store carried a fence below the note's high-water mark: a
    newer holder of the note's lease wrote it since this writer's lease lapsed (it paused,
    or was cut off). Nothing was written."""

    code = "note_fenced"

    def __init__(self, path: str, fence: int, mark: int) -> None:
        super().__init__(f"note {path} was written by a newer writer (fence {mark}) after this writer's lease "
                         f"(fence {fence}) lapsed: not overwriting it",
                         "read the note again and redo the change on its current content; nothing was written")
        self.path = path
        self.fence = fence
        self.mark = mark


class NoteLagging(Refused):
    """The note on this host holds an older version than the last fenced write left (a
    synced vault that has not caught up yet): replacing it would drop the newer one."""

    code = "note_lagging"

    def __init__(self, path: str, found: str, left: str) -> None:
        super().__init__(f"note {path} is behind: it holds an earlier version (sha256 {found[:12]}) than the last "
                         f"fenced write left (sha256 {left[:12]}); its sync has not caught up",
                         "wait for the vault to sync, then try again; nothing was written")
        self.path = path
        self.found = found
        self.left = left
