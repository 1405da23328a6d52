"""install, uninstall: Claude Code's hooks, status line, /start and /end, and the origin's files.

Where (--scope): user -> ~/.claude (or $CLAUDE_CONFIG_DIR): settings.json, commands/, the
origin's files at the origin's paths (~/scripts/obsidian_session_manager.py: the report's
first line says install writes there), and hooks/sessionward, the launcher the hooks and the
status line run (install.hook_launcher); project -> <git toplevel of the current directory,
else the directory>/.claude: settings.json and commands/ only, the hooks run by the package's
launcher. Both create the drafts
directory /end's notes go through (sessionward.drafts), 0700. `install --seed-paths` writes
the origin's files alone, as it always did.

Everything is planned before anything is written, so a settings.json we cannot merge into
stops the command with nothing changed. The settings file is written last: its hooks are what
switch sessionward on, and they should find the command files in place. Install records what
it created in the manifest (sessionward.install.manifest); uninstall removes what still holds
what install left there, and the directories install made once empty, and says for each file
and directory it keeps why. The report is one line per file: created, updated, unchanged,
replaced (the user's file kept aside), kept (and why), removed, restored.
"""

import os
import shlex

from sessionward import drafts, paths
from sessionward.cli.install_notes import apply_notes, notes_lines, plan_notes
from sessionward.cli.render import Output
from sessionward.errors import BadInput, SessionwardError
from sessionward.identity.checkout import describe_checkout
from sessionward.install import manifest, settings, slash_commands
from sessionward.install.diffs import unified_diff
from sessionward.install.directories import HOLDS_KEPT, DirAction, apply_dir_actions, drafts_dirs, plan_dir_removal
from sessionward.install.hook_launcher import bytecode_pack_file, hook_launcher_file, hook_launcher_path
from sessionward.install.seed_paths import (
    YOURS,
    apply_actions,
    launcher_paths,
    plan_seed_files,
    plan_seed_removal,
    seed_files,
)

_VERBS = {
    "create": ("would create", "created"),
    "update": ("would update", "updated"),
    "unchanged": ("unchanged", "unchanged"),
    "replace": ("would replace", "replaced"),
    "remove": ("would remove", "removed"),
    "restore": ("would restore", "restored"),
    "keep": ("would keep", "kept"),
}
_WRITTEN = ("create", "update", "unchanged", "replace")  # what leaves sessionward's bytes at a path


def run_install(values: dict) -> Output:
    if values["seed_paths"]:
        return _install_seed_paths(bool(values["dry_run"]))
    dry_run = bool(values["dry_run"])
    scope = values["scope"]
    _require_launcher()
    launcher = settings.launcher_command()
    hooks_launcher = shlex.quote(hook_launcher_path()) if scope == "user" else launcher
    home = claude_home(scope)
    settings_path = os.path.join(home, settings.SETTINGS_NAME)
    notes = plan_notes(values, dry_run, bool(values["json"]))  # asked first: a wrong answer changes nothing

    def merge(doc):
        return settings.merge_settings(doc, hooks_launcher)

    def plan():
        planned = settings.apply_settings(settings_path, merge, dry_run=True)  # refuses before any write
        seeds = plan_seed_files(user_files()) if scope == "user" else []
        commands = slash_commands.plan_install(home, launcher)
        drafts_dir = paths.drafts_dir()
        made = [d for p in [settings_path, *(a.path for a in commands), *(a.file.path for a in seeds)]
                for d in manifest.missing_dirs(os.path.dirname(p))] + manifest.missing_dirs(drafts_dir)
        dirs = [DirAction(drafts_dir, "create" if drafts_dir in made else "unchanged")]
        return planned, commands, seeds, dirs, list(dict.fromkeys(made))

    if dry_run:
        return _with_notes(_output("install", True, *plan()[:4]), notes, True)
    settings.apply_settings(settings_path, merge, dry_run=True)  # refuse before even the lock file
    apply_notes(notes)  # before the hooks: they guard what it protects from their first call
    with settings.installer_lock():  # planned and applied whole: no uninstall runs in between
        record = manifest.load()
        _, commands, seeds, dirs, made = plan()
        apply_actions(seeds)
        drafts.ensure_drafts_dir()  # private before /end's model first writes a draft there
        slash_commands.apply_command_actions(commands)
        result = settings.apply_settings(settings_path, merge)
        _record_install(record.scope(home), result, commands, seeds, made)
        manifest.save(record)
    return _with_notes(_output("install", False, result, commands, seeds, dirs, record.notice), notes, False)


def _with_notes(output: Output, notes, dry_run: bool) -> Output:
    output.data["notes"] = notes.to_json()
    files = output.lines
    output.lines = lambda style: files(style) + notes_lines(notes, dry_run, style)
    return output


def _record_install(installed, result, commands, seeds, made) -> None:
    if result.action == "create":
        installed.settings_created = True
    for action in commands:
        if action.kind in _WRITTEN:
            installed.record_file(action.path, action.content)
        else:  # the user's own file now: nothing of ours to remove there
            installed.forget_file(action.path)
    _record_seeds(installed, seeds, made)


def _record_seeds(installed, seeds, made) -> None:
    for action in seeds:
        installed.record_file(action.file.path, action.file.content, action.backup)
    installed.record_dirs([d for d in dict.fromkeys(made) if os.path.isdir(d)])


def run_uninstall(values: dict) -> Output:
    dry_run = bool(values["dry_run"])
    scope = values["scope"]
    launcher = settings.launcher_command()
    home = claude_home(scope)
    settings_path = os.path.join(home, settings.SETTINGS_NAME)

    def plan(record) -> tuple:
        installed = record.installs.get(home) or manifest.Install()
        planned = settings.apply_settings(settings_path, settings.unmerge_settings, dry_run=True,
                                          remove_when_empty=installed.settings_created)
        commands = slash_commands.plan_uninstall(home, launcher, installed)
        seeds = plan_seed_removal(user_files(), installed) if scope == "user" else []
        leaving = {a.path for a in commands if a.kind == "remove"}
        leaving |= {a.file.path for a in seeds if a.kind == "remove"}
        leaving |= {settings_path} if planned.action == "remove" else set()
        candidates = installed.dirs + (drafts_dirs() if scope == "user" else [])
        kept = {a.path for a in commands if a.kind == "keep"} | {a.file.path for a in seeds if a.kind == "keep"}
        return planned, commands, seeds, plan_dir_removal(candidates, leaving, kept)

    if dry_run:
        record = manifest.load(dry_run=True)
        return _output("uninstall", True, *plan(record), record.notice)  # type: ignore[call-arg]
    plan(manifest.load(dry_run=True))  # refuse a settings.json we cannot read before the lock file
    with settings.installer_lock():
        record = manifest.load()
        planned, commands, seeds, dirs = plan(record)
        installed = record.scope(home)
        result = settings.apply_settings(settings_path, settings.unmerge_settings,
                                         remove_when_empty=installed.settings_created)
        slash_commands.apply_command_actions(commands)
        apply_actions(seeds)
        apply_dir_actions(dirs)
        _record_uninstall(installed, result, commands, seeds, dirs)
        manifest.save(record)
    return _output("uninstall", False, result, commands, seeds, dirs, record.notice)


def _record_uninstall(installed, result, commands, seeds, dirs) -> None:
    """Forget what is gone and what is the user's; what was kept as changed stays recorded."""
    if result.action == "remove":
        installed.settings_created = False
    for path, action in [(a.path, a) for a in commands] + [(a.file.path, a) for a in seeds]:
        if action.kind in ("remove", "restore") or action.why == YOURS:
            installed.forget_file(path)
    for action in dirs:
        if action.kind == "remove":
            installed.forget_dir(action.path)
    installed.files = {p: r for p, r in installed.files.items() if os.path.lexists(p)}
    installed.dirs = [d for d in installed.dirs if os.path.isdir(d)]


def claude_home(scope: str) -> str:
    """The directory holding settings.json and commands/ for `scope`."""
    if scope == "user":
        return paths.claude_dir()
    try:
        cwd = os.getcwd()
    except OSError:
        raise BadInput("the current directory no longer exists", "cd into the project first") from None
    return os.path.join(describe_checkout(cwd).worktree, ".claude")


def user_files() -> list:
    """The files a user-scope install writes beside settings.json: the origin's (seed_files),
    the launcher of the hooks and the bytecode pack it imports from (install.hook_launcher)."""
    return [*seed_files(), hook_launcher_file(), bytecode_pack_file()]


def _require_launcher() -> None:
    # Hooks and commands run the launcher by its absolute path: one that is not there would
    # turn every hook into "hook error" in every session.
    launcher = launcher_paths()[0]
    if not os.access(launcher, os.X_OK):
        raise SessionwardError(
            f"no sessionward launcher at {launcher} (beside this Python)",
            "run the install from a sessionward installed with scripts/install or pip; nothing was changed",
        )


def _output(command: str, dry_run: bool, result, commands, seeds, dirs, notice: str = "") -> Output:
    """One line per file, in the order: settings.json (and its notes), /start and /end, the
    origin's files, the directories; under --dry-run each file's diff right under its line,
    unindented, so that it reads (and copies out) as a plain unified diff."""
    rows = [(result.to_json(), result.diff, None)]
    rows += [(a.to_json(), _command_diff(a), a) for a in commands]
    rows += [(dict(a.to_json(), what="seed"), _seed_diff(a, command), a) for a in seeds]
    rows += [(a.to_json(), [], a) for a in dirs]
    actions = []
    for entry, diff, _ in rows:
        actions.append(dict(entry, diff=diff) if dry_run and entry["what"] != "dir" else entry)

    def lines(style):
        out = _header(command, dry_run, seeds, style)
        out += [_settings_line(result, dry_run, style)] + _settings_notes(command, result.changes, dry_run)
        for entry, (_, diff, action) in zip(actions, rows):
            if action is not None and not (entry["what"] == "dir" and (action.kind == "remove" or action.why == HOLDS_KEPT)):
                out += _file_lines(entry["what"], action, dry_run, style)
            out += diff if dry_run else []
        emptied = [style.path(a.path) + "/" for a in dirs if a.kind == "remove"]
        if emptied:  # one line: a directory left empty says nothing more than its name
            out.append(f"{_verb('remove', dry_run)} the directories install made, now empty: {', '.join(emptied)}")
        return out

    return Output(command, {"dry_run": dry_run, "actions": actions}, lines, notices=[notice] if notice else [])


def _header(command: str, dry_run: bool, seeds, style) -> list[str]:
    """A plain install that writes outside Claude Code's directory says so first."""
    if command != "install":
        return []
    scripts = [a.file.path for a in seeds if a.kind != "unchanged" and not a.file.path.startswith(
        paths.claude_dir() + os.sep)]
    if not scripts:
        return []
    where = ", ".join(style.path(p) for p in scripts)
    return [f"{'would write' if dry_run else 'writing'} outside {style.path(paths.claude_dir())} too: "
            f"{where}, where the origin's guide runs it"]


def _verb(kind: str, dry_run: bool) -> str:
    return _VERBS[kind][0 if dry_run else 1]


def _file_lines(what: str, action, dry_run: bool, style) -> list[str]:
    path = action.file.path if what == "seed" else action.path
    shown = style.path(path) + ("/" if what == "dir" else "")
    line = f"{_verb(action.kind, dry_run)} {shown}"
    if action.kind == "keep":
        if not getattr(action, "lines_to_add", None):
            return [f"{line}: {action.why}"]
        return [f"{line}: {action.why}; to call sessionward from it, add (the first line to its frontmatter):"] + [
            f"    {text}" for text in action.lines_to_add]
    if action.kind == "replace":
        line += f" (yours kept as {style.path(action.backup)}; uninstall puts it back)"
    elif action.kind == "restore":
        line += f" (yours, from {style.path(action.backup)})"
    elif action.kind == "update" and action.backup:
        line += f" (previous content kept as {style.path(action.backup)})"
    elif what == "dir" and action.kind == "create":
        line += " (private: /end writes each note's text there first)"
    return [line]


def _settings_line(result, dry_run: bool, style) -> str:
    if result.action == "unchanged" and not os.path.lexists(result.path):
        return f"no {style.path(result.path)}: nothing to remove"  # uninstall, after one that removed it
    line = f"{_verb(result.action, dry_run)} {style.path(result.path)}"
    details = [result.changes.summary()] if result.action != "unchanged" else []
    if result.action == "remove":
        details = ["install created it; nothing else was left in it"]
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


def _command_diff(action) -> list[str]:
    if action.kind in ("create", "update"):
        return unified_diff(action.path, action.current if action.kind == "update" else None, action.content)
    if action.kind == "remove":
        return unified_diff(action.path, action.current, None)
    return []


def _seed_diff(action, command: str) -> list[str]:
    if action.kind in ("unchanged", "keep"):
        return []
    try:
        with open(action.file.path, "rb") as f:
            current = f.read()
    except OSError:
        current = None
    if command == "uninstall":  # remove, or restore: the user's own bytes come back
        return unified_diff(action.file.path, current, _read_or_none(action.backup) if action.backup else None)
    return unified_diff(action.file.path, current, action.file.content)


def _read_or_none(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


# --- install --seed-paths: the origin's files only, printed as before ---------------------

def _install_seed_paths(dry_run: bool) -> Output:
    if dry_run:
        actions = plan_seed_files(seed_files())
    else:
        with settings.installer_lock():
            record = manifest.load()
            actions = plan_seed_files(seed_files())
            made = [d for a in actions for d in manifest.missing_dirs(os.path.dirname(a.file.path))]
            apply_actions(actions)
            _record_seeds(record.scope(paths.claude_dir()), actions, made)  # `uninstall` removes them
            manifest.save(record)

    def lines(style):
        return [line for action in actions for line in _file_lines("seed", action, dry_run, style)]

    return Output("install", {"dry_run": dry_run, "actions": [a.to_json() for a in actions]}, lines)
