"""/start and /end: Claude Code slash commands that call sessionward.

  <claude dir>/commands/start.md    register this session, report who else works nearby
  <claude dir>/commands/end.md      the end-of-session saves under the /end lock
(<claude dir> is ~/.claude, or $CLAUDE_CONFIG_DIR; with --scope project, the project's .claude.)
The templates are package data beside this module (commands/*.md); @SESSIONWARD@ becomes the
launcher, @DRAFTS@ the drafts directory (sessionward.drafts: /end's model writes each note's
text there with its Write tool, whose rule `Edit(//<dir>/**)` in allowed-tools lets it, and
hands it over with `note append|write --text-file`, so the text is never on a command line).
Their YAML frontmatter must open the file (Claude Code reads it only there), so the
managed-file marker comes right after it. Values holding ": " or starting with "[" are quoted:
Claude Code parses the frontmatter as YAML and, on an error, drops all of it, allowed-tools
included, and the `!` line then is not pre-approved.

Each `Bash(@SESSIONWARD@ ...)` rule in allowed-tools is written twice, with the launcher's
absolute path and with the bare name `sessionward`: the model runs the `!` line's form or the
short one, and either must run without a permission prompt.

A file of that name without the marker is the user's own: never touched, never moved. Install
prints instead the lines to add to it (none when it already calls sessionward). A file with
the marker is ours: install rewrites it when it differs (a moved launcher, a newer template),
keeping the previous bytes as NAME.bak-UTCSTAMP since users edit their /end steps. Uninstall
removes it while it holds what install left there (the manifest's hash, else today's
template), and keeps it, saying so, once the user changed it. A symlink there counts as the
user's.

Planning (plan_install, plan_uninstall) only reads; apply_command_actions writes.
"""

import os

from sessionward import paths
from sessionward._atomic import write_file_atomic
from sessionward.errors import StateUnwritable
from sessionward.install.seed_paths import MANAGED_MARKER, YOURS, backup_name

COMMAND_FILES = ("start.md", "end.md")
BARE_NAME = "sessionward"  # the launcher's name on PATH (~/.local/bin/sessionward)
COMMAND_FILE_MODE = 0o644
_TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "commands")
# Whether a user's own file already calls sessionward for this purpose.
_CALLS_SESSIONWARD = {"start.md": "sessionward register", "end.md": "sessionward lock acquire"}
# What the template says in prose after its `!` line, for users merging it into their own file.
_AFTER = {"end.md": (
    "save each note by writing its text with the Write tool to a new file DRAFT in @DRAFTS@, then "
    "`@SESSIONWARD@ note append FILE --text-file DRAFT` (never the text in a command)",
    "after the saves: run `@SESSIONWARD@ lock release end`, then `@SESSIONWARD@ unregister`",
)}


class CommandAction:
    """What happens to one command file: create, update, unchanged, keep (the user's own),
    remove; `backup` when previous bytes are kept aside; `lines_to_add` for the user's own;
    `why` a file is kept."""

    __slots__ = ("path", "kind", "content", "current", "backup", "lines_to_add", "why")

    def __init__(self, path, kind, content=None, current=None, backup=None, lines_to_add=(), why="") -> None:
        self.path = path
        self.kind = kind
        self.content = content
        self.current = current
        self.backup = backup
        self.lines_to_add = list(lines_to_add)
        self.why = why

    def to_json(self) -> dict:
        return {"what": "command", "path": self.path, "action": self.kind, "backup": self.backup,
                "lines_to_add": self.lines_to_add, "why": self.why}


def render_template(name: str, launcher: str) -> bytes:
    with open(os.path.join(_TEMPLATE_DIR, name), encoding="utf-8") as f:
        return _rendered(f.read(), launcher).encode()


def _rendered(text: str, launcher: str) -> str:
    return _allow_bare_name(text).replace("@SESSIONWARD@", launcher).replace("@DRAFTS@", paths.drafts_dir())


def _allow_bare_name(text: str) -> str:
    """Each `Bash(@SESSIONWARD@ ...)` rule of the allowed-tools line, followed by the same rule
    for the bare name `sessionward` (on PATH): the model runs one form or the other, and a
    form not allowed there stops the person with a permission prompt."""
    out = []
    for line in text.split("\n"):
        if line.startswith("allowed-tools:"):
            rules = [rule.strip() for rule in line[len("allowed-tools:"):].split(", ")]
            both = []
            for rule in rules:
                both.append(rule)
                if rule.startswith("Bash(@SESSIONWARD@ "):
                    both.append("Bash(" + BARE_NAME + rule[len("Bash(@SESSIONWARD@"):])
            line = "allowed-tools: " + ", ".join(both)
        out.append(line)
    return "\n".join(out)


def lines_to_add(name: str, launcher: str) -> list[str]:
    """The template's sessionward lines, for a user who keeps their own file of that name:
    its allowed-tools line (for their frontmatter), its `!` line, and what follows in prose."""
    text = render_template(name, launcher).decode()
    front = text.split("---\n")[1]
    tools = [line for line in front.splitlines() if line.startswith("allowed-tools:")]
    bangs = [line for line in text.splitlines() if line.startswith("!`")]
    after = [_rendered(line, launcher) for line in _AFTER.get(name, ())]
    return [tools[0], *bangs, *after]


def command_paths(claude_home: str) -> list[str]:
    return [os.path.join(claude_home, "commands", name) for name in COMMAND_FILES]


def plan_install(claude_home: str, launcher: str) -> list[CommandAction]:
    actions = []
    for path in command_paths(claude_home):
        name = os.path.basename(path)
        content = render_template(name, launcher)
        state, current = _read(path)
        if state == "absent":
            actions.append(CommandAction(path, "create", content))
        elif state == "theirs":
            calls = _CALLS_SESSIONWARD[name].encode() in current
            actions.append(CommandAction(path, "keep", None, current, why=YOURS,
                                         lines_to_add=[] if calls else lines_to_add(name, launcher)))
        elif current == content:
            actions.append(CommandAction(path, "unchanged", content, current))
        else:
            actions.append(CommandAction(path, "update", content, current, backup_name(path)))
    return actions


def plan_uninstall(claude_home: str, launcher: str, installed) -> list[CommandAction]:
    """`installed`: the scope's manifest record (manifest.Install)."""
    actions = []
    for path in command_paths(claude_home):
        state, current = _read(path)
        if state == "absent":
            continue
        if state == "theirs":
            actions.append(CommandAction(path, "keep", None, current, why=YOURS))
            continue
        unchanged = installed.unchanged_since_install(path, current)
        if unchanged is None:  # no record (an older sessionward wrote it): today's template is ours
            unchanged = current == render_template(os.path.basename(path), launcher)
        if unchanged:
            actions.append(CommandAction(path, "remove", None, current))
        else:
            actions.append(CommandAction(path, "keep", None, current, why="changed since install"))
    return actions


def _read(path: str) -> tuple[str, bytes]:
    """("absent" | "ours" | "theirs", the file's bytes). A symlink, or a file we cannot read,
    is the user's whatever it holds."""
    link = os.path.islink(path)
    try:
        with open(path, "rb") as f:
            current = f.read()
    except FileNotFoundError:
        return ("theirs" if link else "absent"), b""  # a dangling link is still someone's
    except OSError:
        return "theirs", b""
    return ("ours" if MANAGED_MARKER.encode() in current and not link else "theirs"), current


def apply_command_actions(actions: list[CommandAction]) -> None:
    for action in actions:
        if action.kind in ("unchanged", "keep"):
            continue
        if action.kind == "remove":
            _remove(action)
            continue
        if action.backup:
            write_file_atomic(action.backup, action.current, COMMAND_FILE_MODE)
        try:
            os.makedirs(os.path.dirname(action.path), mode=0o755, exist_ok=True)
        except OSError as exc:
            raise StateUnwritable(os.path.dirname(action.path), exc) from None
        # replaced in one rename: Claude Code never finds the command missing or half-written
        # exact_mode: readable like any command file, whatever the umask
        write_file_atomic(action.path, action.content, COMMAND_FILE_MODE, exact_mode=True)


def _remove(action: CommandAction) -> None:
    try:
        os.unlink(action.path)
    except FileNotFoundError:
        pass  # gone already
    except OSError as exc:
        raise StateUnwritable(action.path, exc) from None
