"""install, uninstall: Claude Code's hooks, status line, /start and /end, and the origin's files.

Where (--scope): user -> ~/.claude (or $CLAUDE_CONFIG_DIR): settings.json, commands/, and
the origin's files at the origin's paths; project -> <git toplevel of the current directory,
else the directory>/.claude: settings.json and commands/ only. Both create the drafts
directory /end's notes go through (sessionward.drafts), 0700. `install --seed-paths` writes
the origin's files alone, as it always did.

Everything is planned before anything is written, so a settings.json we cannot merge into
stops the command with nothing changed. The settings file is written last: its hooks are what
switch sessionward on, and they should find the command files in place.
"""

import os

from sessionward import drafts, paths
from sessionward.cli.render import Output
from sessionward.errors import BadInput, SessionwardError
from sessionward.identity.checkout import describe_checkout
from sessionward.install import settings, slash_commands
from sessionward.install.diffs import unified_diff
from sessionward.install.seed_paths import apply_actions, launcher_paths, plan_seed_files, seed_files

_VERBS = {
    "create": ("would create", "created"),
    "update": ("would update", "updated"),
    "unchanged": ("unchanged", "unchanged"),
    "replace": ("would replace", "replaced"),
    "remove": ("would remove", "removed"),
    "keep": ("kept", "kept"),
}


def run_install(values: dict) -> Output:
    if values["seed_paths"]:
        return _install_seed_paths(bool(values["dry_run"]))
    dry_run = bool(values["dry_run"])
    scope = values["scope"]
    _require_launcher()
    launcher = settings.launcher_command()
    home = claude_home(scope)
    settings_path = os.path.join(home, settings.SETTINGS_NAME)

    def merge(doc):
        return settings.merge_settings(doc, launcher)

    def plan():
        planned = settings.apply_settings(settings_path, merge, dry_run=True)  # refuses before any write
        seeds = plan_seed_files(seed_files()) if scope == "user" else []
        return planned, slash_commands.plan_install(home, launcher), seeds

    if dry_run:
        return _output("install", True, *plan())
    settings.apply_settings(settings_path, merge, dry_run=True)  # refuse before even the lock file
    with settings.installer_lock():  # planned and applied whole: no uninstall runs in between
        _, commands, seeds = plan()
        apply_actions(seeds)
        drafts.ensure_drafts_dir()  # private before /end's model first writes a draft there
        slash_commands.apply_command_actions(commands)
        result = settings.apply_settings(settings_path, merge)
    return _output("install", False, result, commands, seeds)


def run_uninstall(values: dict) -> Output:
    dry_run = bool(values["dry_run"])
    launcher = settings.launcher_command()
    home = claude_home(values["scope"])
    settings_path = os.path.join(home, settings.SETTINGS_NAME)

    def plan():
        planned = settings.apply_settings(settings_path, settings.unmerge_settings, dry_run=True)
        return planned, slash_commands.plan_uninstall(home, launcher), []

    if dry_run:
        return _output("uninstall", True, *plan())
    settings.apply_settings(settings_path, settings.unmerge_settings, dry_run=True)
    with settings.installer_lock():
        _, commands, _ = plan()
        result = settings.apply_settings(settings_path, settings.unmerge_settings)
        slash_commands.apply_command_actions(commands)
    return _output("uninstall", False, result, commands, [])


def claude_home(scope: str) -> str:
    """The directory holding settings.json and commands/ for `scope`."""
    if scope == "user":
        return paths.claude_dir()
    try:
        cwd = os.getcwd()
    except OSError:
        raise BadInput("the current directory no longer exists", "cd into the project first") from None
    return os.path.join(describe_checkout(cwd).worktree, ".claude")


def _require_launcher() -> None:
    # Hooks and commands run the launcher by its absolute path: one that is not there would
    # turn every hook into "hook error" in every session.
    launcher = launcher_paths()[0]
    if not os.access(launcher, os.X_OK):
        raise SessionwardError(
            f"no sessionward launcher at {launcher} (beside this Python)",
            "run the install from a sessionward installed with scripts/install or pip; nothing was changed",
        )


def _output(command: str, dry_run: bool, result, commands, seeds) -> Output:
    actions = [result.to_json()] + [a.to_json() for a in commands]
    actions += [dict(a.to_json(), what="seed") for a in seeds]
    if dry_run:
        actions[0]["diff"] = result.diff
        for entry, action in zip(actions[1:], commands):
            entry["diff"] = _command_diff(action)
        for entry, action in zip(actions[1 + len(commands):], seeds):
            entry["diff"] = _seed_diff(action)

    def lines(style):
        # A dry run prints each file's diff right under its line, unindented, so that it
        # reads (and copies out) as a plain unified diff.
        out = [_settings_line(result, dry_run, style)] + _settings_notes(command, result.changes, dry_run)
        out += actions[0].get("diff", [])
        for action, entry in zip(commands, actions[1:]):
            out += _command_lines(action, dry_run, style) + entry.get("diff", [])
        for action, entry in zip(seeds, actions[1 + len(commands):]):
            out += [_seed_line(action, dry_run, style)] + entry.get("diff", [])
        return out

    return Output(command, {"dry_run": dry_run, "actions": actions}, lines)


def _verb(kind: str, dry_run: bool) -> str:
    return _VERBS[kind][0 if dry_run else 1]


def _seed_line(action, dry_run: bool, style) -> str:
    line = f"{_verb(action.kind, dry_run)} {style.path(action.file.path)}"
    if action.backup:
        line += f" (not written by sessionward; kept as {style.path(action.backup)})"
    return line


def _settings_line(result, dry_run: bool, style) -> str:
    line = f"{_verb(result.action, dry_run)} {style.path(result.path)}"
    details = [result.changes.summary()] if result.action != "unchanged" else []
    if result.backup:
        details.append(f"backup {style.path(result.backup)}")
    details = [d for d in details if d]
    return line + (f" ({'; '.join(details)})" if details else "")


def _settings_notes(command: str, changes, dry_run: bool) -> list[str]:
    """One line per entry of ours the user edited (install keeps it, uninstall removes it) and
    per entry that mentions sessionward but that neither command will touch, with why."""
    verb = _verb("keep" if command == "install" else "remove", dry_run)
    lines = [f"{verb} your edited {_entry_name(where)}: {text}" for where, text in changes.edited]
    for where, text, why in changes.left_alone:
        what = "your statusLine, which mentions" if where == "statusLine" else f"a hook for {where} that mentions"
        lines.append(f"left alone {what} sessionward ({why}): {text}")
    return lines


def _entry_name(where: str) -> str:
    return "statusLine" if where == "statusLine" else f"hook for {where}"


def _command_lines(action, dry_run: bool, style) -> list[str]:
    line = f"{_verb(action.kind, dry_run)} {style.path(action.path)}"
    if action.kind == "keep":
        if not action.lines_to_add:
            return [line + " (yours: not written by sessionward)"]
        return [line + " (yours: not written by sessionward); to call sessionward from it, add"
                       " (the first line to its frontmatter):"] + [
            f"    {text}" for text in action.lines_to_add
        ]
    if action.backup:
        line += f" (previous content kept as {style.path(action.backup)})"
    return [line]


def _command_diff(action) -> list[str]:
    if action.kind in ("create", "update"):
        return unified_diff(action.path, action.current if action.kind == "update" else None, action.content)
    if action.kind == "remove":
        return unified_diff(action.path, action.current, None)
    return []


def _seed_diff(action) -> list[str]:
    if action.kind == "unchanged":
        return []
    try:
        with open(action.file.path, "rb") as f:
            current = f.read()
    except OSError:
        current = None
    return unified_diff(action.file.path, current, action.file.content)


# --- install --seed-paths: the origin's files only, printed as before ---------------------

def _install_seed_paths(dry_run: bool) -> Output:
    actions = plan_seed_files(seed_files())
    if not dry_run:
        apply_actions(actions)

    def lines(style):
        return [_seed_line(action, dry_run, style) for action in actions]

    return Output("install", {"dry_run": dry_run, "actions": [a.to_json() for a in actions]}, lines)
