"""Which process a session's life is tied to: its owner.

Resolution order:
  1. an explicit PID (`--pid`), which must name a live process;
  2. `CLAUDE_PID` from the environment (Claude Code 2.1.214+ sets it for hooks and Bash),
     trusted only while that process is an ancestor of the caller: hooks run as
     claude -> sh -> sessionward, so it is found within two or three /proc reads. A process
     that merely inherited the variable and was detached from the session (a `nohup ... &`
     job or a tmux server started from the Bash tool, a `setsid` daemon: reparented away
     from Claude) is not that session: it resolves by the rules below, as its own owner, and
     waits for the session's `end` lock like anyone else;
  3. the first ancestor whose comm is `claude` or `claude.exe` (older Claude Code);
  4. outside Claude Code, the shell that says it calls (`--shell-pid $$`, passed by the shell
     helpers, so a function run in a pipeline or subshell still names the interactive shell);
  5. else the direct caller: the parent of this process.
In 4 and 5, transient `sh -c` / `bash -c` wrappers are skipped (their life is one command,
not a session), and an init or subreaper is refused (BadInput): a caller that exited before
us left us reparented to it, and it never dies. PID 1 itself is a valid owner when it is
the real caller, as the shell of `docker run -it IMAGE bash` is: when it is a shell by name
and we run in its session (a process reparented to PID 1 keeps the session of the one that
started it). Any other PID 1 (an init, a sandbox's supervisor such as `process_api`, whose
children share its session) only ever adopted us.
Never this process itself: the CLI lives for milliseconds.
"""

import os

from sessionward.errors import BadInput
from sessionward.identity.process import PID_MAX_LIMIT, ProcessInfo, read_cmdline, read_process, same_process, this_host

CLAUDE_COMMS = ("claude", "claude.exe")
SHELL_COMMS = ("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "yash")
# Processes whose children are orphans they adopted, not callers: a session tied to one of
# them would never end. systemd also stands for `systemd --user`, the usual subreaper.
INIT_COMMS = ("systemd", "init", "tini", "docker-init", "dumb-init", "catatonit", "s6-svscan", "runit", "openrc-init")
_MAX_ANCESTRY = 64


class Owner:
    """A resolved owner: its process identity and how we found it (`via`)."""

    __slots__ = ("pid", "start_time", "hostname", "boot_id", "pidns", "comm", "via", "life", "_identity")
    _identity: dict | None

    def __init__(self, info: ProcessInfo, via: str) -> None:
        host = this_host()
        self.pid = info.pid
        self.start_time = info.start_time
        self.hostname = host.hostname
        self.boot_id = host.boot_id
        self.pidns = host.pidns
        self.comm = info.comm
        self.via = via
        self.life = False  # a watcher holds its life lock (identity.life.ensure_watcher)
        self._identity = None

    @property
    def kind(self) -> str:
        """The session kind this owner implies: claude-code, shell or other."""
        if self.via in ("CLAUDE_PID", "claude ancestor") or self.comm in CLAUDE_COMMS:
            return "claude-code"
        if self.comm in SHELL_COMMS or self.comm.lstrip("-") in SHELL_COMMS:
            return "shell"
        return "other"

    def identity(self) -> dict:
        """The fields same_process compares, built once (registries compare it to every record)."""
        if self._identity is None:
            self._identity = {"pid": self.pid, "start_time": self.start_time, "host": self.hostname,
                              "boot_id": self.boot_id, "pidns": self.pidns}
        return self._identity

    def to_record(self) -> dict:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "host": self.hostname,
            "boot_id": self.boot_id,
            "pidns": self.pidns,
            "comm": self.comm,
            "life": self.life,
        }

    def watch(self) -> bool:
        """Make sure a watcher holds this owner's life lock, so that processes in other PID
        namespaces can tell whether it lives (identity.life); records written after this say
        so. False when it cannot have one (then it is judged by its PID alone)."""
        if not self.life:
            from sessionward.identity.life import ensure_watcher

            self.life = ensure_watcher(self)
        return self.life

    def __repr__(self) -> str:
        return f"Owner(pid={self.pid}, comm={self.comm!r}, via={self.via!r})"


def owner_record_matches(recorded: dict, owner: Owner) -> bool:
    """Is `recorded` (an owner record in a state file) this owner's process? same_process,
    against the owner's own record."""
    return same_process(recorded, owner.identity())


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

    ancestors = _Ancestry(os.getppid())  # read lazily: every hook resolves its owner
    claude_pid = env.get("CLAUDE_PID", "")
    if claude_pid.isdigit() and claude_pid.isascii() and len(claude_pid) <= 10:
        # Trusted only while it names an ancestor of ours (not an init: PID 1 is everyone's):
        # a stale CLAUDE_PID may name a recycled, unrelated PID, and one inherited by a job
        # detached from Claude Code names a session that job no longer belongs to.
        info = ancestors.find(int(claude_pid))
        if info is not None and info.comm not in INIT_COMMS and (info.pid != 1 or info.comm in CLAUDE_COMMS):
            return Owner(info, "CLAUDE_PID")

    for info in ancestors:
        if info.comm in CLAUDE_COMMS:
            return Owner(info, "claude ancestor")

    if shell_pid is not None:
        for info in _Ancestry(shell_pid):
            if not _is_transient_shell(info):
                return _usable(info, "shell")

    for info in ancestors:
        if not _is_transient_shell(info):
            return _usable(info, "caller")
    raise BadInput("cannot identify the calling process; pass --pid")


def _usable(info: ProcessInfo, via: str) -> Owner:
    # A caller that exited before us leaves us reparented to init (or a subreaper such as
    # `systemd --user`): that process never dies, so a session tied to it would never be swept.
    # A shell at PID 1 in our own session started us (a container's shell); one in another
    # session, or any other PID 1, adopted us.
    pid1_caller = info.comm.lstrip("-") in SHELL_COMMS and info.session is not None and info.session == os.getsid(0)
    if info.comm in INIT_COMMS or (info.pid == 1 and not pid1_caller):
        raise BadInput(f"the calling process has exited (reparented to init, pid {info.pid} ({info.comm})); pass --pid")
    return Owner(info, via)


class _Ancestry:
    """The ancestors of a process, itself first, each read from /proc once and only as far
    as someone looks."""

    def __init__(self, pid: int) -> None:
        self.chain: list[ProcessInfo] = []
        self._next = pid

    def __iter__(self):
        index = 0
        while index < len(self.chain) or self._extend():
            yield self.chain[index]
            index += 1

    def find(self, pid: int) -> ProcessInfo | None:
        """The live (not zombie) ancestor `pid`, or None when it is not one."""
        for info in self:
            if info.pid == pid:
                return None if info.is_zombie else info
        return None

    def _extend(self) -> bool:
        pid = self._next
        if pid <= 0 or len(self.chain) >= _MAX_ANCESTRY:
            return False
        info = read_process(pid)
        if info is None:
            self._next = 0
            return False
        self.chain.append(info)
        self._next = 0 if info.ppid == pid else info.ppid
        return True


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
