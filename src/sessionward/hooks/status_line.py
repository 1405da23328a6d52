"""`sessionward status-line`: one compact row for Claude Code's statusLine, and its cache.

Reads the statusLine JSON on stdin (session_id, cwd, workspace.current_dir, ...); prints
this worktree's branch now and who else works here: other sessions in this worktree, on this
project elsewhere (with their short ids when few), who holds the end lock and for how long,
that this session waits for it, the conflict its person was just asked about, and a bad
sessionward.toml (the hooks run on defaults meanwhile). Empty or broken input is fine: the
current directory stands in. It only reads (the dead it finds are left to the next hook to
sweep) and never waits for a lock.

Claude Code runs the status line every few seconds in every session (install sets
refreshInterval), so the command install writes is the shell fast path,
install/status_line.sh, not this module: it prints the row this module cached for the
session, unless something the row shows may have changed, and only then runs
`sessionward status-line` (this module, which renders and caches again). The cache,
STATE/sessionward/status/<session id>.row, holds what the row was made from, one per line,
each compared by the fast path with what it finds now:

  1  CACHE_SCHEMA
  2  the status stamp's token, read before anything else (sessionward.status_stamp): renewed
     by every registry, lock and queue change a row shows, by an owner's death, by an ask
  3  workspace.current_dir as the JSON spells it (the session moved: another worktree)
  4  this worktree's HEAD file, 5 its first line (a checkout changed the branch)
  6  the end lock file, 7 its first line (a hand-made `rm ~/.claude/end.lock`)
  8  the boot id (a reboot ends every session without a watcher seeing it)
  9  the uptime (whole seconds, /proc/uptime) from which the row's text is stale (a duration
     it shows moves on: "for 1m" becomes "for 2m"; on the shared store SHARED_RECHECK_S
     after it was made, since another host's sessions and locks renew no stamp here), 0 for
     never
  10 the configuration file's path; after the row (11), the configuration file's bytes as
     they were read (an edit fixes or breaks it)
Every value is read before the row is computed from it, so a change that lands meanwhile
leaves a cache that no longer matches: the next refresh renders again. No cache is written
when the input lacks what the fast path keys on (a session id of letters, digits, - and _;
a workspace.current_dir without a backslash or a line break).
"""

import math
import os
import time

CACHE_SCHEMA = "sessionward-status/1"
IDS_SHOWN_UPTO = 3  # more others than this: counted, not listed
ASK_SHOWN_S = 300.0  # how long the row shows a conflict its person was asked about
UNKNOWN_RECHECK_S = 60.0  # a row counting sessions whose life cannot be told here is re-made this often
# On the shared store another host's changes renew no stamp here: the row is re-made this
# often (with refreshInterval 3 about every refresh), so it is at most a refresh or so old.
SHARED_RECHECK_S = 2.0
MAX_CONFIG_BYTES = 65536  # a bigger configuration file is not copied into the cache (no fast path)
STALE_CACHE_S = 86400.0  # cached rows and asks of sessions not seen for a day are removed
_SESSION_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


MAX_STATUS_INPUT_BYTES = 1 << 20  # Claude Code's statusLine JSON is a few hundred bytes


def main() -> int:
    """`sessionward status-line`: print the row. A shared store that does not answer, or any
    other problem sessionward knows (a store setting it cannot use, a state file kept aside),
    is said in its place (the hooks fail open meanwhile); an unexpected error is one line
    naming where its traceback went; never a traceback on the screen. Exit 0 all the same: Claude Code
    shows no row at all from a status line command that exits non-zero (2.1.331's debug log:
    "completed with status 1"), so the line would never be seen."""
    try:
        row = status_row(read_input())
    except Exception as exc:  # noqa: BLE001 - the row is shown on the person's screen
        from sessionward.errors import SessionwardError, StoreUnavailable

        # "not guarding" first, then why: Claude Code cuts a row at the terminal's width
        if isinstance(exc, StoreUnavailable):
            row = f"sessionward: {exc.not_guarding()}"
        elif isinstance(exc, SessionwardError):
            row = f"sessionward: not guarding: {exc.message}"
        else:
            from sessionward._errorlog import log_traceback

            row = f"sessionward: status line failed ({type(exc).__name__}; {log_traceback('status-line', exc)})"
        os.write(1, (row + "\n").encode("utf-8", "replace"))
        return 0
    os.write(1, (row + "\n").encode("utf-8", "surrogateescape"))
    return 0


def read_input() -> bytes:
    """The statusLine JSON on stdin (b"" from a terminal or when unreadable)."""
    import sys

    from sessionward._atomic import read_capped

    try:
        return read_capped(sys.stdin.fileno(), MAX_STATUS_INPUT_BYTES) if not sys.stdin.isatty() else b""
    except (OSError, ValueError, AttributeError):
        return b""


def status_row(raw: bytes, environ=None) -> str:
    """The row for the statusLine JSON `raw`; caches it for the fast path when it can."""
    from sessionward import _jsoncodec as jsoncodec

    env = os.environ if environ is None else environ
    try:
        payload = jsoncodec.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        payload = {}
    payload = payload if type(payload) is dict else {}
    workspace: dict = payload.get("workspace") if type(payload.get("workspace")) is dict else {}  # type: ignore[assignment]
    cwd = workspace.get("current_dir") or payload.get("cwd")
    if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd or not os.path.isdir(cwd):
        cwd = os.getcwd()
    key = _cache_key(payload.get("session_id"), workspace.get("current_dir"))
    row = Row(cwd, env, payload.get("session_id"), cached=key is not None)
    text = row.render()
    if key is not None:
        row.save(key[0], key[1], text)
    return text


def _cache_key(session_id, current_dir) -> tuple[str, str] | None:
    """(session id, current_dir) when the fast path can find this row again, else None."""
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 128 or not set(session_id) <= _SESSION_ID_CHARS:
        return None
    if not isinstance(current_dir, str) or not current_dir or any(c in current_dir for c in '\\"\n\r\0'):
        return None
    return session_id, current_dir


class Row:
    """One rendering: what it read (for the cache) and when its text goes stale."""

    def __init__(self, cwd: str, env, session_id, cached: bool) -> None:
        from sessionward import paths, status_stamp

        self.cwd = cwd
        self.env = env
        self.session_id = session_id if isinstance(session_id, str) else None
        self.now = time.time()
        self.stale_at = math.inf  # wall clock time from which the text is out of date
        self.state_dir = paths.state_dir()
        # What the row is made from, read first (see the module docstring).
        self.stamp = status_stamp.read_token(self.state_dir) if cached else ""
        self.config_path: str | None = None
        self.config_bytes: bytes | None = None
        if cached:
            self._read_config_bytes()

    # -- rendering ------------------------------------------------------------------------

    def render(self) -> str:
        from sessionward._humanize import one_line
        from sessionward.identity import describe_checkout, owner_record_matches, resolve_owner
        from sessionward.registry import LEVEL_STRONG, LEVEL_WARNING, Context, classify, session_liveness
        from sessionward.store import SHARED, current, open_store

        if current() == SHARED:
            self._stale_from(self.now + SHARED_RECHECK_S)
        try:
            owner = resolve_owner(environ=self.env)
        except Exception:  # noqa: BLE001 - a row without "me" still counts the others
            owner = None
        self.owner = owner
        gitdir = describe_checkout(self.cwd).gitdir
        self.head_path = os.path.join(gitdir, "HEAD") if gitdir else ""
        self.head = _first_line(self.head_path) if self.head_path else ""
        checkout = describe_checkout(self.cwd)  # read after HEAD: a checkout meanwhile is seen at the next refresh
        ctx = Context(self.cwd, None, owner, None)
        seen: dict = {}
        here, elsewhere = [], []
        self.records = open_store().load_sessions()
        for record in self.records.values():
            if owner is not None and owner_record_matches(record["owner"], owner):
                continue
            if self.session_id and record.get("session_id") == self.session_id:
                continue
            verdict = session_liveness(record, self.now, seen)
            if not verdict:
                continue
            if not verdict.known:
                self._stale_from(self.now + UNKNOWN_RECHECK_S)
            level = classify(record, ctx).level
            if level == LEVEL_STRONG:
                here.append(record)
            elif level == LEVEL_WARNING:
                elsewhere.append(record)
        parts = [checkout.branch] if checkout.branch else []
        if here:
            parts.append(f"{_count(len(here), 'other session')} in this worktree{_ids(here)}")
        if elsewhere:
            parts.append(f"{len(elsewhere)} on {checkout.project} elsewhere{_ids(elsewhere)}")
        if not here and not elsewhere:
            parts.append(f"no other session on {checkout.project}")
        parts += [self._end_lock(), self._asked(), self._config_problem()]
        return one_line("sessionward: " + " · ".join(p for p in parts if p))

    def _end_lock(self) -> str:
        from sessionward.locks import END_LOCK, NamedLock

        lock = NamedLock(END_LOCK)
        self.lock_path = lock.path
        self.lock_line = _first_line(lock.path)  # before the state it is judged from
        state = lock.status()
        waiting = self.owner is not None and any(_descends_from(w.get("pid"), self.owner.pid) for w in lock.waiting())
        if not state.held:
            return "waiting for end" if waiting else ""
        session = (state.meta or {}).get("session") or {}
        # A `lock run` command of this session holds it under its own PID: the session is ours.
        if self.owner is not None and self.owner.pid in (state.pid, (session.get("owner") or {}).get("pid")):
            who = "this session"
        else:
            who = _short(session.get("id") or self._session_of(state) or f"pid {state.pid}")
        held = f"held by {who} for {self._age(state.since)}"
        return f"waiting for end ({held})" if waiting else f"end {held}"

    def _session_of(self, state) -> str | None:
        """The registered session whose owner holds the lock (an annex written without the
        session id names only the owner)."""
        meta = state.meta or {}
        pids = {state.pid, ((meta.get("session") or {}).get("owner") or {}).get("pid"), (meta.get("holder") or {}).get("pid")}
        for record in self.records.values():
            if record["owner"].get("pid") in pids:
                return record["id"]
        return None

    def _asked(self) -> str:
        from sessionward.status_stamp import read_asked

        asked = read_asked(self.session_id, self.state_dir) if self.session_id else None
        if asked is None or not self.now - ASK_SHOWN_S <= asked[0] <= self.now + 1:
            return ""
        self._stale_from(asked[0] + ASK_SHOWN_S)
        return f"asked {self._age(asked[0])} ago: {asked[1]}"

    def _config_problem(self) -> str:
        """The first configuration problem, short: the file's name, not its path, and not
        what load_config does meanwhile (defaults); the doctor says the rest."""
        from sessionward.config import config_path, load_config

        try:
            problems = load_config(self.env).problems
        except Exception:  # noqa: BLE001 - a row with a problem it cannot name still shows the rest
            return ""
        if not problems:
            return ""
        message, path = problems[0].split("; ")[0], self.config_path or config_path(self.env)
        if message.startswith(path + ":"):  # the file's name is enough on a status line
            message = os.path.basename(path) + message[len(path):]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{message}{more} (sessionward doctor)"

    def _age(self, since: float) -> str:
        """Minutes, never seconds (a row whose text changed every refresh would be rendered
        every refresh): "<1m", "2m", "1h05m"; the row goes stale when it next changes."""
        from sessionward._humanize import format_age

        age = max(0.0, self.now - since)
        self._stale_from(since + 60 * (int(age // 60) + 1))
        return "<1m" if age < 60 else format_age(age)

    def _stale_from(self, when: float) -> None:
        self.stale_at = min(self.stale_at, when)

    # -- the cache ------------------------------------------------------------------------

    def _read_config_bytes(self) -> None:
        from sessionward.config import config_path

        try:
            self.config_path = config_path(self.env)
        except Exception:  # noqa: BLE001 - no path, no fast path
            return
        try:
            with open(self.config_path, "rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            data = b""
        except OSError:
            return
        if len(data) <= MAX_CONFIG_BYTES:
            self.config_bytes = data

    def save(self, session_id: str, current_dir: str, text: str) -> None:
        """Write the cache the fast path reads (module docstring); never raises."""
        from sessionward import status_stamp

        if self.config_bytes is None or not self.config_path:
            return
        until = 0
        if self.stale_at != math.inf:
            until = max(1, math.ceil(_uptime() + (self.stale_at - self.now)))
        fields = [CACHE_SCHEMA, self.stamp, current_dir, self.head_path, self.head, self.lock_path,
                  self.lock_line, _first_line(BOOT_ID_PATH), str(until), self.config_path, text]
        if any("\n" in f or "\r" in f for f in fields):
            return  # a path with a line break: the fast path could not read it back
        data = ("\n".join(fields) + "\n").encode("utf-8", "surrogateescape") + self.config_bytes
        directory = status_stamp.status_dir(self.state_dir)
        status_stamp.replace_small_file(os.path.join(directory, session_id + status_stamp.ROW_SUFFIX), data)
        _remove_stale_caches(directory, self.now)


def _remove_stale_caches(directory: str, now: float) -> None:
    """Cached rows, asks and heartbeat memos untouched for a day belong to sessions long gone."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith((".row", ".ask", ".seen")) and now - entry.stat(follow_symlinks=False).st_mtime > STALE_CACHE_S:
                    os.unlink(entry.path)
    except OSError:
        pass


def _first_line(path: str) -> str:
    from sessionward.status_stamp import read_first_line

    return read_first_line(path)


def _uptime() -> float:
    """Seconds since boot, the clock of /proc/uptime (CLOCK_BOOTTIME)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n > 1 else ''}"


def _ids(records: list) -> str:
    if len(records) > IDS_SHOWN_UPTO:
        return ""
    return " (" + ", ".join(_short(r["id"]) for r in records) + ")"


def _short(session_id: str) -> str:
    from sessionward._humanize import short_session_id

    return short_session_id(session_id)


def _descends_from(pid, ancestor: int, depth: int = 12) -> bool:
    """Is process `pid` `ancestor` or one of its descendants (a `lock acquire` run by the
    session's Bash tool)? Reads /proc/PID/stat up the parents, at most `depth` of them."""
    from sessionward.identity import read_process

    while type(pid) is int and pid > 1 and depth > 0:
        if pid == ancestor:
            return True
        info = read_process(pid)
        if info is None:
            return False
        pid, depth = info.ppid, depth - 1
    return False
