"""Exceptions and the exit-code table, the one place both are defined.

Every exception carries the facts of the broken state and its exit code; the CLI's single
top-level handler turns them into one line and that code. Each refines the built-in it is
a case of, so callers of the Python API can catch `TimeoutError` or `OSError` as usual.

Exit codes (stable, documented in docs/CLI.md):
  0  ok
  1  conflict, refused, timed out
  2  usage or bad input
  3  environment problem (unwritable or unsafe state, a corrupt file found and kept aside,
     or an internal error: one line names the log holding its traceback)
  130 interrupted (Ctrl-C)
`lock run` exits with its command's status instead.
"""

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
    a fork under a memory limit): both mean the process is out of memory, not a bug."""
    return isinstance(error, MemoryError) or (isinstance(error, OSError) and error.errno == 12)


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
