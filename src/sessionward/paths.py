"""Where sessionward keeps its state, and the checks that make those places safe.

Layout (everything under the state directory, which is `~/.claude` or `$CLAUDE_CONFIG_DIR`,
or `$SESSIONWARD_HOME` for tests and unusual setups):

  obsidian_sessions.json   the registry, at the origin's path (0600)
  end.lock                 the /end lock while held, at the origin's path (0600)
  sessionward/             sessionward's private directory (0700)
    registry.lock          permanent flock target guarding registry updates; never deleted
    errors.log             tracebacks of unexpected errors (the CLI prints one line)
    notices.json           repairs not yet told to the person (sessionward._notices); absent
                           when there are none

Outside it, for the user as a whole:

  $XDG_STATE_HOME/sessionward/drafts   (default ~/.local/state/sessionward/drafts, 0700)
                           drafts: a note's text on its way to `note ... --text-file`
                           (sessionward.drafts). Not under the state directory: Claude Code
                           refuses its Write tool in any path with a `.claude` component.

The state directory itself may be a symlink (dotfile setups link ~/.claude), but it must not
be writable by group or others; the private directory and every state file must not be
symlinks. Nothing ever lives directly in a shared /tmp.
"""

import os
import stat

from sessionward.errors import StateUnwritable, UnsafeState

REGISTRY_NAME = "obsidian_sessions.json"
PRIVATE_DIR_NAME = "sessionward"
CONFIG_NAME = "sessionward.toml"
END_LOCK = "end"  # the origin's /end lock, at STATE/end.lock
LOCK_SUFFIX = ".lock"


def claude_dir() -> str:
    """`$CLAUDE_CONFIG_DIR` when set (it replaces ~/.claude entirely), else ~/.claude."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    return os.path.join(os.path.expanduser("~"), ".claude")


def config_path(environ=None) -> str:
    """sessionward.toml: $SESSIONWARD_CONFIG when set, else beside Claude Code's settings
    (sessionward.config reads it)."""
    env = os.environ if environ is None else environ
    named = env.get("SESSIONWARD_CONFIG")
    if named:
        return os.path.abspath(os.path.expanduser(named))
    return os.path.join(claude_dir(), CONFIG_NAME)


def config_file_missing(environ=None) -> bool:
    """Is sessionward.toml known to be absent? Only then may a caller skip importing
    sessionward.config (the usual case); any other error reaching it is config's to tell."""
    try:
        os.stat(config_path(environ))
    except FileNotFoundError:
        return True
    except OSError:
        pass  # there but unreadable, or a directory on its way not searchable: config tells which
    return False


def state_dir() -> str:
    """The directory holding the registry and lock files."""
    override = os.environ.get("SESSIONWARD_HOME")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    return claude_dir()


def registry_path() -> str:
    return os.path.join(state_dir(), REGISTRY_NAME)


def private_dir() -> str:
    return os.path.join(state_dir(), PRIVATE_DIR_NAME)


def drafts_dir() -> str:
    """Where /end's model writes each note's text before `note ... --text-file` reads it.
    $XDG_STATE_HOME when it is absolute (the XDG rule: a relative one is ignored), else
    ~/.local/state. Never under ~/.claude: Claude Code 2.1.331 refuses its Write tool there
    ("a sensitive file"), whatever the allow rules say, and the Write tool is the point."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not base.startswith("/"):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, PRIVATE_DIR_NAME, "drafts")


def is_in_drafts_dir(path: str) -> bool:
    """Does the absolute, resolved `path` (a hook's tool_input.file_path) lie in the drafts
    directory, resolved the same way (a link there to elsewhere counts: the Write lands there)?
    Here, not in sessionward.drafts: every file tool's PreToolUse and PostToolUse asks, and
    nothing else of that module is needed then."""
    return path.startswith(os.path.realpath(drafts_dir()) + os.sep)


def lock_file_path(name: str, top: str | None = None) -> str:
    """STATE/NAME.lock: a named lock's file, present only while the lock is held (see
    sessionward.locks)."""
    return os.path.join(top or state_dir(), name + LOCK_SUFFIX)


def lock_files_present(top: str | None = None) -> bool:
    """Does the state directory hold a NAME.lock, or a writer's temp of one
    (`.NAME.lock.PID.RAND.tmp`, see sessionward._atomic.temp_name)? One listdir. Without
    either, no lock is held or orphaned and no acquire left a temp behind: a lock cleanup has
    nothing to do, and the hooks skip it without importing sessionward.locks. True when the
    directory cannot be read (let the cleanup look)."""
    try:
        names = os.listdir(top or state_dir())
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return any(n.endswith(LOCK_SUFFIX) or (n.endswith(".tmp") and LOCK_SUFFIX + "." in n) for n in names)


KEPT_CLAIMS_NAME = "claims-kept"  # STATE/sessionward/claims-kept: sessionward.claims.keep_for_later


def kept_claims_path() -> str:
    return os.path.join(private_dir(), KEPT_CLAIMS_NAME)


def kept_claims_present() -> bool:
    """Are claims kept on this host for a shared store that was unreachable (sessionward.claims,
    keep_for_later)? One stat, for the hooks: without any, sessionward.claims is not imported."""
    try:
        return os.stat(kept_claims_path()).st_size > 0
    except OSError:
        return False


def registry_lock_path() -> str:
    return os.path.join(private_dir(), "registry.lock")


def pending_notices_path() -> str:
    return os.path.join(private_dir(), "notices.json")


def error_log_path() -> str:
    return os.path.join(private_dir(), "errors.log")


def ensure_private_dir(private: str | None = None) -> str:
    """Create (0700) and vet the state directory and its private directory; return the latter.

    Raises UnsafeState when either is unsafe to keep locks in, StateUnwritable when it
    cannot be created.
    """
    private = private or private_dir()
    _ensure_dir(os.path.dirname(private), follow_symlink=True)
    _ensure_dir(private, follow_symlink=False)
    return private


def vet_state_dir(top: str) -> None:
    """For readers: refuse a state directory others can write (its files could be planted),
    or one that is not a directory (SESSIONWARD_HOME naming a file: reading under it would
    fail with a misleading ENOTDIR). A missing one is fine: there is nothing to read."""
    try:
        info = os.stat(top)
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeState(top, "it is not a directory", "move it away or set SESSIONWARD_HOME")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeState(top, "it is writable by group or others", f"chmod 700 {top}, or set SESSIONWARD_HOME")


def _ensure_dir(path: str, follow_symlink: bool) -> None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # a non-directory is there: reported just below
    except OSError as exc:
        raise StateUnwritable(path, exc) from None
    try:
        info = os.stat(path) if follow_symlink else os.lstat(path)
    except OSError as exc:
        raise StateUnwritable(path, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeState(path, "it is a symlink", f"remove the link: rm {path}")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeState(path, "it is not a directory", "move it away or set SESSIONWARD_HOME")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeState(
            path, "it is writable by group or others", f"chmod 700 {path}, or set SESSIONWARD_HOME"
        )
    if not follow_symlink and info.st_uid != os.geteuid():
        raise UnsafeState(path, f"it belongs to uid {info.st_uid}", "remove it or set SESSIONWARD_HOME")
