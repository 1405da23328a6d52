"""`sessionward doctor`: is everything in place, and if not, how to fix it.

run_checks(scope) -> [Check], in the order a person would look: the launcher, the hooks in
settings.json (present, and pointing at a launcher that runs), the status line and the
/start and /end commands, the configuration file, the store in use (and what chose it), the
state directory (permissions, symlinks, and whether its flock is shared between two opens of
one file), records of dead sessions, records from other kernels (liveness unknown), life
files left by killed watchers, live owners whose watcher pair is gone (find_unwatched_owners),
orphaned locks, corrupt files kept aside, drafts an /end left behind, and Claude Code itself
(its version, and whether it provides CLAUDE_PID).

A Check is ok, info (worth knowing, nothing to do), warn (works, but something is off) or
fail (protection is missing or broken); every non-ok one says how to fix it. Doctor only
reads: it changes nothing, except with --reseed (reseed_shared_store): after the shared
store lost its state, that sets its fence counters above every recorded mark.
"""

import os
import stat

from sessionward import paths

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
CLAUDE_PID_SINCE = (2, 1, 214)  # FACTS.md: hooks and Bash see CLAUDE_PID from this version on
VERSION_PROBE_TIMEOUT_S = 10.0


class Check:
    __slots__ = ("name", "status", "detail", "fix")

    def __init__(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def run_checks(scope: str = "user", cwd: str | None = None) -> list:
    from sessionward.install.seed_paths import launcher_paths

    launcher = launcher_paths()[0]
    checks = [_check_launcher(launcher)]
    settings_file = settings_path(scope, cwd)
    doc, settings_check = _read_settings(settings_file)
    checks.append(settings_check)
    if doc is not None:
        checks.append(_check_hooks(doc, settings_file))
        checks.append(_check_status_line(doc))
    checks.append(_check_commands(scope, cwd))
    checks.append(_check_config())
    checks.append(_check_notes())
    store_check = _check_store()
    checks.append(store_check)
    # With the store unusable, a check that reads it would only fail again with the store
    # check's line, after waiting for it again (a paused server: its whole reply timeout
    # each): the store check's FAIL stays the one line of that cause, the others say so.
    usable = store_check.status != FAIL

    def reading_store(name: str, check):
        return check() if usable else _not_checked(name)

    checks.extend(_check_shared_state() if usable else [_not_checked("shared state")])
    checks.extend(_check_state_dir())
    checks.append(_check_flock_shared())
    checks.append(reading_store("registry", _check_dead_sessions))
    checks.append(reading_store("other kernels", _check_other_kernels))
    checks.append(_check_life_files())
    checks.append(reading_store("watchers", _check_watchers))
    checks.append(reading_store("locks", _check_orphaned_locks))
    checks.append(reading_store("kept aside", _check_kept_aside))
    checks.append(_check_leftover_drafts())
    checks.append(_check_claude_code())
    return checks


def _not_checked(name: str) -> Check:
    return Check(name, INFO, "not checked: the store cannot be used (see store)")


def settings_path(scope: str, cwd: str | None = None) -> str:
    """The settings.json of a scope: ~/.claude's (or $CLAUDE_CONFIG_DIR's) for user, the
    project's .claude/ (git toplevel of cwd, else cwd) for project."""
    if scope == "project":
        from sessionward.identity import describe_checkout

        return os.path.join(describe_checkout(cwd or os.getcwd()).worktree, ".claude", "settings.json")
    return os.path.join(paths.claude_dir(), "settings.json")


# -- the install ------------------------------------------------------------------------------


def _check_launcher(launcher: str) -> Check:
    version = _probe_version([launcher, "--version"])
    if version is None or not version.startswith("sessionward "):
        return Check("launcher", FAIL, f"{launcher} does not run ({version or 'no output'})",
                     "reinstall: ./scripts/install (or pipx reinstall sessionward)")
    bytecode = "" if _package_is_compiled() else "; its modules are not byte-compiled, so every hook recompiles them"
    status = OK if not bytecode else WARN
    fix = "" if not bytecode else "install from a wheel (./scripts/install), or run: python -m compileall on the package"
    return Check("launcher", status, f"{launcher} ({version}){bytecode}", fix)


def _package_is_compiled() -> bool:
    import importlib.util

    import sessionward.hooks as hooks

    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        cached = importlib.util.cache_from_source(hooks.__file__)
        return os.path.exists(cached)
    return True  # Python writes the cache on first use


def _read_settings(path: str):
    from sessionward.errors import SessionwardError
    from sessionward.install.settings import parse_settings

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None, Check("settings", FAIL, f"{path} does not exist: no hooks are installed", "sessionward install")
    except OSError as exc:
        return None, Check("settings", FAIL, f"{path}: cannot read it ({exc.strerror})", f"check the permissions of {path}")
    try:
        doc = parse_settings(raw, path)
    except SessionwardError as error:
        return None, Check("settings", FAIL, error.message, "fix the JSON by hand (Claude Code ignores a broken file too)")
    return doc, Check("settings", OK, f"{path} is valid")


def _check_hooks(doc: dict, path: str) -> Check:
    from sessionward.install.hook_commands import hook_args, launcher_of
    from sessionward.install.settings import HOOKS

    hooks: dict = doc.get("hooks") if isinstance(doc.get("hooks"), dict) else {}  # type: ignore[assignment]
    missing, broken, programs = [], [], set()
    for event, _matcher, _timeout in HOOKS:
        launchers = [
            launcher_of(handler.get("command"), hook_args(event))
            for group in hooks.get(event) or ()
            if isinstance(group, dict)
            for handler in group.get("hooks") or ()
            if isinstance(handler, dict)
        ]
        launchers = [launcher for launcher in launchers if launcher is not None]
        if not launchers:
            missing.append(event)
            continue
        for launcher in launchers:
            program = _program_path(launcher)  # type: ignore[arg-type]
            programs.add(program)
            if not (os.path.isfile(program) and os.access(program, os.X_OK)):
                broken.append(f"{event} -> {program}")
    if missing or broken:
        problems = []
        if missing:
            problems.append("missing: " + ", ".join(missing))
        if broken:
            problems.append("pointing at no program: " + "; ".join(broken))
        return Check("hooks", FAIL, f"{path}: " + "; ".join(problems), "sessionward install")
    working = [p for p in sorted(programs) if (_probe_version([p, "--version"]) or "").startswith("sessionward ")]
    if len(working) != len(programs):
        return Check("hooks", FAIL, f"hook program(s) do not run: {', '.join(sorted(programs - set(working)))}",
                     "sessionward install (rewrites them to this launcher)")
    hooked = f"{len(HOOKS)} of {len(HOOKS)} events hooked, via {', '.join(sorted(programs))}"
    stale = _stale_hook_launcher(programs)
    if stale:
        return Check("hooks", WARN, f"{hooked}; {stale} was written for another interpreter or place: "
                     "each hook starts Python the slow way", "sessionward install (writes it again)")
    unpacked = _stale_bytecode_pack(programs)
    if unpacked:
        return Check("hooks", WARN, f"{hooked}; {unpacked}", "sessionward install (writes it again)")
    return Check("hooks", OK, hooked)


def _stale_hook_launcher(programs: set) -> str | None:
    """The hooks' launcher (install.hook_launcher) when the hooks run it and it is not what
    install would write today (sessionward moved, or another Python runs it): it still works,
    through its fallback, but without the time -S saves."""
    from sessionward.install.hook_launcher import hook_launcher_file
    from sessionward.install.seed_paths import plan_seed_files

    wanted = hook_launcher_file()
    if wanted.path not in programs:
        return None
    return None if plan_seed_files([wanted])[0].kind == "unchanged" else wanted.path


def _stale_bytecode_pack(programs: set) -> str | None:
    """What is wrong with the bytecode pack the hooks' launcher imports from
    (sessionward._bytecode_pack), when the hooks run that launcher: missing or unusable, or
    out of date for some modules (sessionward upgraded or edited since install). The hooks
    work either way, importing those modules from their sources."""
    import sessionward
    from sessionward._bytecode_pack import stale_modules
    from sessionward.install.hook_launcher import bytecode_pack_path, hook_launcher_path

    if hook_launcher_path() not in programs:
        return None
    pack = bytecode_pack_path()  # in full, as the launcher beside it is named
    stale = stale_modules(pack, os.path.dirname(os.path.abspath(sessionward.__file__)))
    if stale is None:
        return f"its bytecode pack {pack} is missing or unusable: each hook imports sessionward the slow way"
    if not stale:
        return None
    named = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
    return (f"its bytecode pack {pack} is out of date for {len(stale)} module(s) ({named}): each hook "
            "imports those the slow way")


def _program_path(launcher: str) -> str:
    """Where a hook's launcher word leads: a user's edit may say `sessionward` (from PATH) or
    `~/.local/bin/sessionward`, which sh resolves and os.access does not."""
    import shutil

    program = os.path.expanduser(os.path.expandvars(launcher))
    return program if "/" in program else shutil.which(program) or program


def _check_status_line(doc: dict) -> Check:
    """The statusLine as it is written (the command install writes: `sh .../status_line.sh
    <launcher>`, or an older install's `<launcher> status-line`), and whether what it runs is
    there: the script, the launcher; how often Claude Code refreshes it while idle."""
    from sessionward._humanize import short_path
    from sessionward.install.hook_commands import EDITED, PRISTINE, STATUS_LINE_ARGS, attribute, fast_path_of

    line = doc.get("statusLine")
    if line is None:
        return Check("status line", INFO, "no statusLine set", "sessionward install adds sessionward's")
    command = line.get("command") if isinstance(line, dict) else None
    kind, launcher = attribute(command, STATUS_LINE_ARGS)
    if kind not in (PRISTINE, EDITED):
        return Check("status line", INFO, "your own statusLine is kept; add `sessionward status-line` to it to see other sessions")
    assert isinstance(line, dict) and isinstance(command, str)  # attribute() found ours
    fast = fast_path_of(command)
    shown = command  # the paths as written, like the other checks' (a person compares them with settings.json)
    missing = []
    if fast is not None:
        script = os.path.expanduser(os.path.expandvars(fast[0]))
        if not os.path.isfile(script):
            missing.append(f"no script {short_path(script)}")
    program = _program_path(launcher)
    if not (os.path.isfile(program) and os.access(program, os.X_OK)):
        missing.append(f"no program {short_path(program)}")
    if missing:
        return Check("status line", FAIL, f"{shown}: {'; '.join(missing)}", "sessionward install")
    refresh = line.get("refreshInterval")
    every = (f"refreshed every {refresh} s" if isinstance(refresh, (int, float)) and not isinstance(refresh, bool) and refresh > 0
             else "not refreshed while idle (no refreshInterval)")
    edited = "" if kind == PRISTINE else ", edited by you"
    if fast is None or every.startswith("not"):
        return Check("status line", WARN, f"{shown} ({every}{edited}): an older install's",
                     "sessionward install (writes the shell fast path, refreshed while idle)")
    return Check("status line", OK, f"{shown} ({every}{edited})")


def _check_commands(scope: str, cwd: str | None) -> Check:
    base = paths.claude_dir() if scope == "user" else os.path.dirname(settings_path(scope, cwd))
    found = [name for name in ("start.md", "end.md") if os.path.isfile(os.path.join(base, "commands", name))]
    if len(found) == 2:
        return Check("/start and /end", OK, f"{os.path.join(base, 'commands')}/start.md, end.md")
    missing = [n for n in ("start.md", "end.md") if n not in found]
    return Check("/start and /end", WARN, f"missing in {os.path.join(base, 'commands')}: {', '.join(missing)}",
                 "sessionward install")


def _check_config() -> Check:
    from sessionward.config import load_config

    config = load_config()
    if config.store_problem is not None and config.sources["store"] != "env":
        return Check("configuration", FAIL, "; ".join(config.problems),
                     "fix it; until then nothing is guarded: every hook and command refuses, as the store the file "
                     "names cannot be read (see store)")
    if config.problems:
        return Check("configuration", FAIL, "; ".join(config.problems),
                     f"fix it; the hooks guard with edit policy {config.edit_policy} (the defaults) until then")
    where = config.path or "no file (defaults)"
    vault = config.vault or ("not set" if not config.protected else "not set (vaults: see notes)")
    status = OK
    fix = ""
    if config.vault and not os.path.isdir(config.vault):
        status, fix = WARN, "set vault to your notes directory"
        vault += " (not a directory)"
    return Check("configuration", status, f"{where}; edit policy {config.edit_policy}, vault {vault}", fix)


def _check_notes() -> Check:
    """Obsidian's vaults (sessionward.vaults) that the configuration does not protect."""
    from sessionward._humanize import short_path
    from sessionward.config import load_config
    from sessionward.vaults import find_obsidian_vaults

    config = load_config()
    found = find_obsidian_vaults()
    bare = [v for v in found.vaults if not config.in_vault(v)]
    problems = "; ".join(found.problems)
    if bare:
        return Check("notes", WARN, f"Obsidian vault(s) not protected: {', '.join(short_path(v) for v in bare)}"
                     + (f"; {problems}" if problems else ""), "sessionward install --yes (or --vault PATH)")
    if config.protected:
        detail = f"protected: {', '.join(short_path(p) for p in config.protected)}"
        return Check("notes", INFO if problems else OK, detail + (f"; {problems}" if problems else ""))
    return Check("notes", INFO, problems or "no vault protected, and no Obsidian vault found",
                 "sessionward install --vault PATH protects a vault or a shared note")


def _check_store() -> Check:
    """Which store holds the shared state, and what chose it (the variable, the file, the default)."""
    from sessionward import store
    from sessionward.errors import StoreNotBuilt

    origin = store.setting()[1]  # the store's own problem, if any, is current()'s to raise
    try:
        store.current()
    except StoreNotBuilt as error:
        return Check("store", FAIL, error.message, error.hint)
    chosen = {"default": "the default"}.get(origin, origin)
    if store.current() == store.SHARED:
        from sessionward.errors import SessionwardError
        from sessionward.store import shared

        where = f"shared: {store.shown(store.shared_url())}, keys {shared.prefix()}* ({chosen})"
        try:
            shared.connection(store.shared_url()).call("PING")
        except StoreNotBuilt as error:  # a URL that does not parse: the line names the setting already
            return Check("store", FAIL, error.message, error.hint)
        except SessionwardError as error:
            return Check("store", FAIL, f"{where}: {error.message}", error.hint)
        return Check("store", OK, where)
    return Check("store", OK, f"local: the files in {paths.state_dir()} ({chosen})")


def _check_shared_state() -> list:
    """On the shared store: did the server lose its state (store.redis_state)? Fenced writes
    are refused until it is re-seeded: a loss only this host can tell (from the epoch and
    fences it remembers) sets the re-seed flag, as a fenced script that met it would. Nothing
    on the local store."""
    from sessionward import store
    from sessionward.errors import SessionwardError

    try:
        if store.current() != store.SHARED:
            return []
        from sessionward.store import redis_state

        state = redis_state.inspect()
    except SessionwardError as error:
        return [Check("shared state", FAIL, error.message, error.hint)]
    if state.lost:
        if not state.flagged:
            try:
                redis_state.flag_loss()  # found here alone (this host's memory): every host is held to it now
            except SessionwardError as error:
                return [Check("shared state", FAIL, f"{state.url} lost its state: {state.lost}; {error.message}",
                              error.hint)]
        return [Check("shared state", FAIL, f"{state.url} lost its state: {state.lost}; fenced note writes are refused",
                      "sessionward doctor --reseed; then a session registered from a terminal that `sessionward "
                      "list` no longer shows registers again (Claude Code sessions do at their next prompt)")]
    return [Check("shared state", OK, f"{state.url}: epoch {state.epoch or '(none yet)'}, fences up to {state.top} "
                  f"(this host was handed up to {state.known_fence})")]


def reseed_shared_store() -> dict:
    """`doctor --reseed`: re-seed the shared store when it lost its state; what was done
    ({"reseeded": bool, "why", "floor", "epoch"}). BadInput (exit 2) on the local store,
    which has no fences to re-seed."""
    from sessionward import store
    from sessionward.errors import BadInput

    if store.current() != store.SHARED:
        raise BadInput("doctor --reseed: the local store is in use; only the shared store has fences to re-seed")
    from sessionward.store import redis_state

    state = redis_state.inspect()
    if not state.lost:
        return {"reseeded": False, "why": "", "floor": state.top, "epoch": state.epoch}
    floor, epoch = redis_state.reseed()
    return {"reseeded": True, "why": state.lost, "floor": floor, "epoch": epoch}


# -- the state --------------------------------------------------------------------------------


def _check_state_dir() -> list:
    top = paths.state_dir()
    private = paths.private_dir()
    checks = []
    try:
        info = os.stat(top)
    except FileNotFoundError:
        return [Check("state directory", INFO, f"{top} does not exist yet (made on first use)")]
    except OSError as exc:
        return [Check("state directory", FAIL, f"{top}: {exc.strerror}", f"check {top}")]
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        checks.append(Check("state directory", FAIL, f"{top} is writable by group or others", f"chmod 700 {top}"))
    else:
        checks.append(Check("state directory", OK, top))
    try:
        pinfo = os.lstat(private)
    except FileNotFoundError:
        return checks
    if stat.S_ISLNK(pinfo.st_mode) or not stat.S_ISDIR(pinfo.st_mode):
        checks.append(Check("private directory", FAIL, f"{private} is not a plain directory", f"move it away: mv {private} {private}.bad"))
    elif stat.S_IMODE(pinfo.st_mode) != 0o700 or pinfo.st_uid != os.geteuid():
        checks.append(Check("private directory", FAIL, f"{private} has mode {stat.S_IMODE(pinfo.st_mode):o}, uid {pinfo.st_uid}",
                            f"chmod 700 {private}"))
    for path in (paths.registry_path(), os.path.join(top, "end.lock")):
        try:
            finfo = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(finfo.st_mode) or not stat.S_ISREG(finfo.st_mode):
            checks.append(Check("state files", FAIL, f"{path} is not a regular file (a symlink or other)", f"remove it: rm {path}"))
        elif finfo.st_mode & 0o077:
            checks.append(Check("state files", WARN, f"{path} has mode {stat.S_IMODE(finfo.st_mode):o}", f"chmod 600 {path}"))
    return checks


SHARED_STORE_FIX = "a shared store (Redis: SESSIONWARD_STORE=redis://..., docs/SHARED_STORE.md) is the fix for sessions on several kernels"


def opens_exclude_each_other(first_fd: int, second_fd: int) -> bool | None:
    """Whether flock on two opens of one file excludes: LOCK_EX on `first_fd`, then LOCK_EX |
    LOCK_NB on `second_fd` must fail. False: each open gets the lock (VirtioFS does this), so
    no lock of sessionward excludes anyone there. None: flock itself fails (not supported)."""
    import fcntl

    try:
        fcntl.flock(first_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    try:
        fcntl.flock(second_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(second_fd, fcntl.LOCK_UN)
        return False
    finally:
        fcntl.flock(first_fd, fcntl.LOCK_UN)


def _check_flock_shared() -> Check:
    from sessionward._atomic import temp_name

    directory = paths.private_dir()
    if not os.path.isdir(directory):
        return Check("flock", INFO, f"{directory} does not exist yet (made on first use)")
    probe = temp_name(os.path.join(directory, "flock-probe"))
    try:
        first = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            second = os.open(probe, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                shared = opens_exclude_each_other(first, second)
            finally:
                os.close(second)
        finally:
            os.close(first)
            os.unlink(probe)
    except OSError as exc:
        return Check("flock", WARN, f"cannot probe flock in {directory} ({exc.strerror})", f"check {directory}")
    if shared:
        return Check("flock", OK, f"shared between opens in {directory}")
    what = "flock fails" if shared is None else "flock is not shared between two opens of one file"
    return Check("flock", FAIL, f"in {directory}, {what} (VirtioFS and some network filesystems do this): "
                 "sessions here cannot exclude each other (registry updates, locks and notes can be lost)",
                 f"keep the state directory on a local filesystem (SESSIONWARD_HOME); {SHARED_STORE_FIX}")


def _check_other_kernels() -> Check:
    """Sessions and lock holders on another kernel (a VM, another machine sharing the files):
    their liveness cannot be told from here, so they are never swept; a person clears them."""
    from sessionward._humanize import short_session_id
    from sessionward.errors import SessionwardError
    from sessionward.locks import NamedLock, known_lock_names
    from sessionward.registry import find_unknown_sessions

    try:
        found = [f"session {short_session_id(r['id'])}: {v.reason}" for r, v in find_unknown_sessions()]
        states = [NamedLock(name).status() for name in known_lock_names()]
    except SessionwardError as error:
        return Check("other kernels", FAIL, error.message, error.hint)
    found += [f"lock {s.name} held by pid {s.pid}: {s.liveness.reason}" for s in states  # type: ignore[union-attr]
              if s.held and not s.liveness.known]  # type: ignore[union-attr]
    if not found:
        return Check("other kernels", OK, "every record's liveness can be told from here")
    return Check("other kernels", WARN, f"{len(found)} record(s) whose owner's liveness is unknown: " + "; ".join(found[:3])
                 + (f" (and {len(found) - 3} more)" if len(found) > 3 else ""),
                 f"they are never swept on age: once gone, clear them by hand (sessionward prune --force ID, "
                 f"sessionward lock release NAME --force); {SHARED_STORE_FIX}")


def _check_life_files() -> Check:
    from sessionward.errors import SessionwardError
    from sessionward.registry import sweep_stray_life_files

    try:
        stray = sweep_stray_life_files(dry_run=True)
    except SessionwardError as error:
        return Check("life files", FAIL, error.message, error.hint)
    if not stray:
        return Check("life files", OK, "none left by killed watchers")
    return Check("life files", INFO, f"{len(stray)} left by killed watchers (no watcher holds them, no record names them)",
                 "sessionward prune --apply")


def _check_watchers() -> Check:
    """Live owners here whose watcher pair is gone (both killed or stopped by hand): on the
    shared store their leases lapse, and from another PID namespace they look dead."""
    from sessionward import store
    from sessionward.errors import SessionwardError
    from sessionward.registry import find_unwatched_owners

    try:
        bare = find_unwatched_owners()
    except SessionwardError as error:
        return Check("watchers", FAIL, error.message, error.hint)
    if not bare:
        return Check("watchers", OK, "every live owner here has its watcher pair")
    if store.current() == store.SHARED:
        from sessionward.store.shared import lease_ttl_ms

        lapse = f"their leases on the shared store lapse within {lease_ttl_ms() / 1000:g} s, their locks with them"
    else:
        lapse = "other PID namespaces (containers) take them for dead"
    pids = ", ".join(str(o["pid"]) for o in bare[:5]) + (f" and {len(bare) - 5} more" if len(bare) > 5 else "")
    return Check("watchers", WARN, f"no watcher for live pid {pids} (both of a pair killed or stopped): {lapse}",
                 f"sessionward heartbeat --pid {bare[0]['pid']} starts one again (a session's next prompt does too)")


def _check_dead_sessions() -> Check:
    from sessionward.errors import SessionwardError
    from sessionward.registry import find_dead_sessions

    try:
        dead = find_dead_sessions()
    except SessionwardError as error:
        return Check("registry", FAIL, error.message, error.hint)
    if not dead:
        return Check("registry", OK, "no dead sessions recorded")
    return Check("registry", INFO, f"{len(dead)} dead session(s) recorded (swept by the next command)",
                 "sessionward prune --apply, or do nothing")


def _check_orphaned_locks() -> Check:
    from sessionward.errors import SessionwardError
    from sessionward.locks import cleanup_orphans

    try:
        orphans = cleanup_orphans(dry_run=True)
    except SessionwardError as error:
        return Check("locks", FAIL, error.message, error.hint)
    if not orphans:
        return Check("locks", OK, "no orphaned locks")
    names = ", ".join(o.state.name for o in orphans)
    return Check("locks", INFO, f"orphaned: {names} (taken over by the next acquire)", "sessionward lock cleanup")


def _check_kept_aside() -> Check:
    from sessionward.errors import SessionwardError
    from sessionward.locks import known_lock_names

    top = paths.state_dir()
    # Only what sessionward keeps aside: the registry's copies and its locks' (another tool's
    # `x.corrupt-1` in ~/.claude is none of ours).
    try:
        lock_names = known_lock_names()
    except SessionwardError as error:  # the store in use cannot list them: told, the other checks go on
        return Check("kept aside", FAIL, error.message, error.hint)
    ours = tuple(f"{name}.corrupt-" for name in [paths.REGISTRY_NAME] + [f"{n}.lock" for n in lock_names])
    try:
        kept = sorted(name for name in os.listdir(top) if name.startswith(ours))
    except OSError:
        kept = []
    from sessionward.store.local_claims import claims_dir

    try:  # the claims directory is sessionward's own: every copy in it is ours
        kept += sorted(os.path.join(os.path.relpath(claims_dir(), top), name)
                       for name in os.listdir(claims_dir()) if ".corrupt-" in name)
    except OSError:
        pass
    if not kept:
        return Check("kept aside", OK, "no corrupt files kept aside")
    return Check("kept aside", WARN, f"{len(kept)} corrupt file(s) kept aside in {top}: {', '.join(kept[:3])}",
                 "look inside, then delete them; sessionward never does")


def _check_leftover_drafts() -> Check:
    """Drafts still in the drafts directory: a note's text an /end wrote and did not hand over
    (it stopped, or its note write failed). An /end running now may hold one for a moment."""
    import time

    from sessionward._humanize import format_age, short_path
    from sessionward.drafts import leftover_drafts

    found = leftover_drafts()
    if not found:
        return Check("drafts", OK, "no drafts left by an unfinished /end")
    try:
        oldest = format_age(time.time() - os.lstat(found[0]).st_mtime)
    except OSError:
        oldest = "?"
    shown = ", ".join(short_path(p) for p in found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
    return Check("drafts", WARN, f"{len(found)} left by an /end that did not finish (oldest {oldest} ago): {shown}",
                 "each holds a note's text: save it (sessionward note append NOTE --text-file DRAFT), "
                 "or delete it (rm DRAFT)")


# -- Claude Code ------------------------------------------------------------------------------


def _check_claude_code() -> Check:
    import shutil

    program = shutil.which("claude")
    if program is None:
        return Check("Claude Code", INFO, "no `claude` on PATH here", "")
    version_text = _probe_version([program, "--version"]) or ""
    version = _parse_version(version_text)
    if version is None:
        return Check("Claude Code", WARN, f"{program}: cannot read its version ({version_text[:60]!r})", "")
    shown = ".".join(map(str, version))
    if version >= CLAUDE_PID_SINCE:
        return Check("Claude Code", OK, f"{shown} at {program}; provides CLAUDE_PID")
    return Check("Claude Code", INFO, f"{shown} at {program}; no CLAUDE_PID before 2.1.214: the owner is found "
                 "by walking up the process tree", "")


def _parse_version(text: str):
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            return tuple(int(p) for p in parts[:3])
    return None


def _probe_version(argv: list):
    import subprocess

    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or done.stderr).strip() or None
