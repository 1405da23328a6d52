"""The origin setup's files, at the origin's paths.

  ~/scripts/obsidian_session_manager.py                 the session manager
  ~/.claude/shell-config/end-lock-helpers.sh            end_lock_acquire, end_with_lock, ...
  ~/.claude/shell-config/obsidian-session-helpers.sh    obsidian_session_register, ...
(~/.claude is $CLAUDE_CONFIG_DIR when set.) Each hands its work to the `sessionward` launcher
beside this interpreter, whose path is written into it.

Planning is pure: plan_seed_files() compares what is on disk with what we would write and
returns one Action per file. apply_actions() writes them. A file we did not write (it lacks
the managed-file marker) is never overwritten silently: it is renamed to NAME.bak-UTCSTAMP
first and the action says so. Installing twice changes nothing the second time.

Uninstall (plan_seed_removal, then apply_actions) removes each file that still holds what
install left there (the manifest's hash, else exactly today's content), and puts back the
user's own file that install moved aside, if it is still there. It keeps, saying why, a file
changed since install, one that is not sessionward's, and a shell helper that a shell
startup file still sources (SHELL_STARTUP_FILES): removed, it would make every new shell
print "No such file or directory"; the helpers define functions only, so kept they cost
nothing. Install itself never edits a startup file: sourcing a helper is the user's line.
"""

import os
import sys
import time

from sessionward import paths
from sessionward._atomic import write_file_atomic
from sessionward._humanize import short_path
from sessionward.errors import StateUnwritable

MANAGED_MARKER = "sessionward: managed file"
YOURS = "yours, not written by sessionward"  # why install and uninstall keep a file without the marker
_SEED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "seed")


class SeedFile:
    __slots__ = ("path", "content", "mode")

    def __init__(self, path: str, content: bytes, mode: int) -> None:
        self.path = path
        self.content = content
        self.mode = mode


class Action:
    """What install does to one file: create, update, unchanged, or replace (with backup);
    what uninstall does: remove, restore (remove, then rename `backup` back), or keep (`why`)."""

    __slots__ = ("file", "kind", "backup", "why")

    def __init__(self, file: SeedFile, kind: str, backup: str | None = None, why: str = "") -> None:
        self.file = file
        self.kind = kind
        self.backup = backup
        self.why = why

    def to_json(self) -> dict:
        return {"path": self.file.path, "action": self.kind, "backup": self.backup, "why": self.why}


def launcher_paths() -> tuple[str, str]:
    """(the `sessionward` launcher beside this interpreter, the interpreter)."""
    python = sys.executable
    launcher = os.path.join(os.path.dirname(python), "sessionward")
    return launcher, python


def seed_files(home: str | None = None) -> list[SeedFile]:
    home = home or os.path.expanduser("~")
    launcher, python = launcher_paths()
    shell_config = os.path.join(paths.claude_dir(), "shell-config")

    def filled(name: str) -> bytes:
        with open(os.path.join(_SEED_DIR, name), encoding="utf-8") as f:
            return f.read().replace("@SESSIONWARD@", launcher).replace("@PYTHON@", python).encode()

    return [
        SeedFile(os.path.join(home, "scripts", "obsidian_session_manager.py"), filled("obsidian_session_manager.py"), 0o755),
        SeedFile(os.path.join(shell_config, "end-lock-helpers.sh"), filled("end-lock-helpers.sh"), 0o644),
        SeedFile(os.path.join(shell_config, "obsidian-session-helpers.sh"), filled("obsidian-session-helpers.sh"), 0o644),
    ]


def plan_seed_files(files: list[SeedFile]) -> list[Action]:
    actions = []
    for file in files:
        try:
            with open(file.path, "rb") as f:
                current = f.read()
        except FileNotFoundError:
            if os.path.islink(file.path):  # a dangling symlink: someone else's, keep it
                actions.append(Action(file, "replace", backup_name(file.path)))
            else:
                actions.append(Action(file, "create"))
            continue
        except OSError:
            actions.append(Action(file, "replace", backup_name(file.path)))
            continue
        if current == file.content and not os.path.islink(file.path):
            actions.append(Action(file, "unchanged"))
        elif MANAGED_MARKER.encode() in current and not os.path.islink(file.path):
            actions.append(Action(file, "update"))
        else:
            actions.append(Action(file, "replace", backup_name(file.path)))
    return actions


# Where bash and zsh read a user's startup lines (zsh's under $ZDOTDIR when set).
_BASH_STARTUP = (".bashrc", ".bash_profile", ".bash_login", ".profile")
_ZSH_STARTUP = (".zshenv", ".zprofile", ".zshrc", ".zlogin")


def shell_startup_files(home: str | None = None) -> list[str]:
    home = home or os.path.expanduser("~")
    zdot = os.environ.get("ZDOTDIR") or home
    return [os.path.join(home, n) for n in _BASH_STARTUP] + [os.path.join(zdot, n) for n in _ZSH_STARTUP]


def sourced_by(path: str, home: str | None = None) -> str | None:
    """'~/.bashrc line 12' when a shell startup file names the file at `path` on a line that is
    not a comment (by its name: ~, $HOME or the full path all count), else None."""
    name = os.path.basename(path)
    for startup in shell_startup_files(home):
        try:
            with open(startup, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if name in line and not line.lstrip().startswith("#"):
                        return f"{short_path(startup)} line {number}"
        except OSError:
            continue
    return None


def plan_seed_removal(files: list[SeedFile], installed) -> list[Action]:
    """What uninstall does to each of the origin's files; `installed`: the scope's manifest
    record (manifest.Install)."""
    actions = []
    for file in files:
        try:
            with open(file.path, "rb") as f:
                current = f.read()
        except FileNotFoundError:
            continue  # gone already (a dangling link at the path is someone else's, left alone)
        except OSError as exc:
            actions.append(Action(file, "keep", why=f"cannot read it ({exc.strerror})"))
            continue
        unchanged = installed.unchanged_since_install(file.path, current)
        if unchanged is None:  # no record: written by an older sessionward, or not by one at all
            unchanged = current == file.content
        if os.path.islink(file.path) or MANAGED_MARKER.encode() not in current:
            actions.append(Action(file, "keep", why=YOURS))
        elif not unchanged:
            actions.append(Action(file, "keep", why="changed since install"))
        elif file.path.endswith(".sh") and (where := sourced_by(file.path)):
            actions.append(Action(file, "keep", why=f"{where} sources it; remove that line, then uninstall again"))
        elif (mine := installed.restores(file.path)) and os.path.lexists(mine):
            actions.append(Action(file, "restore", mine))
        else:
            actions.append(Action(file, "remove"))
    return actions


def apply_actions(actions: list[Action]) -> None:
    for action in actions:
        if action.kind in ("unchanged", "keep"):
            continue
        if action.kind in ("remove", "restore"):
            _remove(action)
            continue
        directory = os.path.dirname(action.file.path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            if action.backup:
                os.rename(action.file.path, action.backup)
        except OSError as exc:
            raise StateUnwritable(action.file.path, exc) from None
        # exact_mode: the umask must not strip the x bit
        write_file_atomic(action.file.path, action.file.content, action.file.mode, exact_mode=True)


def _remove(action: Action) -> None:
    try:
        os.unlink(action.file.path)
        if action.kind == "restore":
            os.rename(action.backup, action.file.path)  # type: ignore[arg-type]  # the user's own file, back where it was
    except FileNotFoundError:
        pass  # gone meanwhile
    except OSError as exc:
        raise StateUnwritable(action.file.path, exc) from None


def backup_name(path: str) -> str:
    """NAME.bak-UTCSTAMP beside `path`, with -2, -3... when taken: two backups in one second
    (install then uninstall) must not overwrite each other."""
    base = f"{path}.bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    name, n = base, 1
    while os.path.lexists(name):
        n += 1
        name = f"{base}-{n}"
    return name
