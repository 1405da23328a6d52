"""Which process a session's life is tied to: its owner.

Resolution order (DESIGN.md, "Owner"):
  1. an explicit PID (`--pid`), which must name a live process;
  2. `CLAUDE_PID` from the environment (Claude Code 2.1.214+ sets it for hooks and Bash);
  3. the first ancestor whose comm is `claude` or `claude.exe` (older Claude Code);
  4. outside Claude Code, the shell that says it calls (`--shell-pid $$`, passed by the shell
     helpers, so a function run in a pipeline or subshell still names the interactive shell);
  5. else the direct caller: the parent of this process.
In 4 and 5, transient `sh -c` / `bash -c` wrappers are skipped (their life is one command,
not a session).
Never this process itself: the CLI lives for milliseconds.
"""

import os

from sessionward.errors import BadInput
from sessionward.identity.process import PID_MAX_LIMIT, ProcessInfo, read_cmdline, read_process, this_host

CLAUDE_COMMS = ("claude", "claude.exe")
SHELL_COMMS = ("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "yash")
_MAX_ANCESTRY = 64


class Owner:
    """A resolved owner: its process identity and how we found it (`via`)."""

    __slots__ = ("pid", "start_time", "hostname", "boot_id", "pidns", "comm", "via")

    def __init__(self, info: ProcessInfo, via: str) -> None:
        host = this_host()
        self.pid = info.pid
        self.start_time = info.start_time
        self.hostname = host.hostname
        self.boot_id = host.boot_id
        self.pidns = host.pidns
        self.comm = info.comm
        self.via = via

    @property
    def kind(self) -> str:
        """The session kind this owner implies: claude-code, shell or other."""
        if self.via in ("CLAUDE_PID", "claude ancestor") or self.comm in CLAUDE_COMMS:
            return "claude-code"
        if self.comm in SHELL_COMMS or self.comm.lstrip("-") in SHELL_COMMS:
            return "shell"
        return "other"

    def to_record(self) -> dict:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "host": self.hostname,
            "boot_id": self.boot_id,
            "pidns": self.pidns,
            "comm": self.comm,
        }

    def __repr__(self) -> str:
        return f"Owner(pid={self.pid}, comm={self.comm!r}, via={self.via!r})"


def owner_record_matches(recorded: dict, owner: Owner) -> bool:
    """Is `recorded` (an owner record in a state file) this owner's process? Records written
    before start times and hosts were kept match on the PID alone."""
    return (
        recorded.get("pid") == owner.pid
        and recorded.get("start_time") in (owner.start_time, None)
        and recorded.get("host") in (owner.hostname, None)
    )


def parse_pid(text: str, what: str = "PID") -> int:
    """A PID from user input; BadInput (exit 2) for anything that is not a positive integer."""
    cleaned = text.strip() if isinstance(text, str) else ""
    if not cleaned.isdigit() or not cleaned.isascii() or len(cleaned) > 10 or not 0 < int(cleaned) <= PID_MAX_LIMIT:
        raise BadInput(f"invalid {what} {text!r}: expected a positive integer up to {PID_MAX_LIMIT}")
    return int(cleaned)


def resolve_session_id(explicit: str | None = None, environ: dict | None = None) -> str | None:
    """The session id: an explicit one, else Claude Code's `CLAUDE_CODE_SESSION_ID`
    (2.1.132+) when it is well formed, else None (the registry generates one)."""
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    found = env.get("CLAUDE_CODE_SESSION_ID", "")
    ok = 0 < len(found) <= 128 and all(c.isascii() and (c.isalnum() or c in "-_.:") for c in found)
    return found if ok else None


def resolve_owner(explicit_pid: int | None = None, environ: dict | None = None, shell_pid: int | None = None) -> Owner:
    """Resolve the owner as the module docstring says."""
    env = os.environ if environ is None else environ
    if explicit_pid is not None:
        info = read_process(explicit_pid)
        if info is None or info.is_zombie:
            raise BadInput(f"--pid {explicit_pid}: no such running process")
        return Owner(info, "--pid")

    ancestors = None  # walked only when needed: every hook resolves its owner
    claude_pid = env.get("CLAUDE_PID", "")
    if claude_pid.isdigit() and claude_pid.isascii() and len(claude_pid) <= 10:
        info = read_process(int(claude_pid))
        # Trusted only while it names Claude Code (or an ancestor of ours): a stale CLAUDE_PID,
        # inherited by something that outlived Claude, may name a recycled, unrelated PID.
        if info is not None and not info.is_zombie and info.pid != 1:
            if info.comm in CLAUDE_COMMS:
                return Owner(info, "CLAUDE_PID")
            ancestors = _ancestors(os.getppid())
            if any(a.pid == info.pid for a in ancestors):
                return Owner(info, "CLAUDE_PID")
    if ancestors is None:
        ancestors = _ancestors(os.getppid())

    for info in ancestors:
        if info.comm in CLAUDE_COMMS:
            return Owner(info, "claude ancestor")

    if shell_pid is not None:
        for info in _ancestors(shell_pid):
            if not _is_transient_shell(info):
                return _usable(Owner(info, "shell"))

    for info in ancestors:
        if not _is_transient_shell(info):
            return _usable(Owner(info, "caller"))
    raise BadInput("cannot identify the calling process; pass --pid")


def _usable(owner: Owner) -> Owner:
    # A caller that exited before us leaves us reparented to init (or a subreaper such as
    # `systemd --user`): that process never dies, so a session tied to it would never be swept.
    if owner.pid == 1 or owner.comm in ("systemd", "init"):
        raise BadInput("the calling process has exited (reparented to init); pass --pid")
    return owner


def _ancestors(pid: int) -> list[ProcessInfo]:
    chain = []
    while pid > 0 and len(chain) < _MAX_ANCESTRY:
        info = read_process(pid)
        if info is None:
            break
        chain.append(info)
        if info.ppid == pid:
            break
        pid = info.ppid
    return chain


def _is_transient_shell(info: ProcessInfo) -> bool:
    """A shell run as `sh -c CMD` (also `bash -lc`, `zsh -ec`): it ends with its one command."""
    if info.comm not in SHELL_COMMS:
        return False
    for arg in read_cmdline(info.pid)[1:]:
        if arg == "--" or not arg.startswith("-"):
            return False
        if not arg.startswith("--") and "c" in arg[1:]:
            return True
    return False
