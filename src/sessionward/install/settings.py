"""Claude Code's settings.json: sessionward's hooks and status line, merged in and out.

The merge is a pure function, document in, document out: merge_settings(doc, launcher) and
unmerge_settings(doc) return a new dict (the input is never mutated) and the Changes made.
apply_settings(path, transform) does the I/O around either one:

  1. take a flock on <private>/settings.lock (permanent, never deleted; installer_lock): two
     sessionward installers never interleave. Claude Code takes no lock, hence step 4.
  2. read the file and parse it (jsonedit, strict). A document we cannot merge into (not
     strict JSON, a duplicate key, top level not an object, "hooks" not an object, an event's
     value not a list) raises SettingsInvalid: one line naming the file, the problem, line and
     column; exit 2; the file is left as it was.
     A missing, empty or blank file is the empty document.
  3. transform. A document equal to the old one means "unchanged": nothing written, no backup.
  4. keep the bytes we merged from as settings.json.bak-UTCSTAMP, then re-read the file right
     before replacing it: if its bytes changed meanwhile (Claude Code rewrote it), merge
     again from the fresh bytes, up to MAX_MERGE_ATTEMPTS times, so neither side's keys are
     lost. Then replace it with write_file_atomic, keeping its mode (0600 when new). This
     narrows the race with Claude Code's unlocked writes to the moment between our last read
     and the rename; nothing on our side can close it.

What is "ours" (hook_commands): a hook handler whose command runs a program named
`sessionward` with the arguments `hook <Event>`, for the event it is listed under, and a
statusLine whose command runs the status line's shell fast path (`sh .../status_line.sh
<launcher>`; install writes it with "refreshInterval": STATUS_LINE_REFRESH_S) or, as older
installs wrote it, `sessionward status-line`; read as one simple shell command, with
perhaps NAME=value assignments, a wrapper (`timeout 5 ...`) and redirections around it. The
launcher's path does not matter, so a moved virtualenv's entries are still recognised. Ours is
PRISTINE when it is exactly what install writes, EDITED when the user changed it. A command that
mentions sessionward in a way we cannot attribute (a pipeline, `bash -c`, other arguments) is
the user's: left alone by both commands, and reported in Changes.left_alone.

Install, per event of HOOKS: an edited handler of ours counts as installed and is kept as it
is (reported in Changes.edited); pristine copies beside it are duplicates and removed. Else:
no handler of ours -> our matcher group is appended to the event's list; a group holding only
ours -> replaced in place by today's group (launcher path, matcher, timeout); ours inside a
group with the user's handlers (put there by hand) -> only its command is updated; a second
copy of ours anywhere -> removed. statusLine is added only when the key is absent (a user's own
is kept, an edited one of ours too); a pristine one with a stale command gets today's, and
a refreshInterval if it has none.
Uninstall removes exactly ours, pristine or edited, under any event key (Changes.edited lists
the edited ones it removed); a matcher group, an event's list or "hooks" itself goes only when
our removal emptied it (so a "hooks": {} or "Stop": [] the user had before install is not
restored: Claude Code reads each the same as absent; a settings.json that install created, left
holding {}, is removed: remove_when_empty). The statusLine goes only when it is ours (left behind it would call a command that
is gone).

Formatting: the merge decides what the document holds; jsonedit decides how the bytes change.
It splices: every byte outside the entries added, removed or changed stays as the user wrote
it (indentation, key order, spacing, numbers and escapes as written, CRLF, final newline or
none), and an added entry takes the layout found around it. So uninstall after install gives
back the original bytes, except where the paragraph above says a container goes. A file that
is not strict JSON (RFC 8259: no NaN, no comments, no trailing comma), has a duplicate key, or
is nested absurdly deep is refused (step 2): Claude Code's JSON.parse would read some of those
differently from us. A new, empty or blank file is written like json.dumps(doc, indent=2).

A settings.json that is a symlink (a dotfiles setup) is followed: its target is read and
replaced in place, the link stays. The backup goes beside the link, where the user looks,
not into the dotfiles repository.
"""

import contextlib
import copy
import os
import shlex

from sessionward import paths
from sessionward._atomic import read_file_nofollow, remove_stray_temps, unlink_if_present, write_file_atomic
from sessionward._flock import flock_exclusive, flock_holder
from sessionward.claude_tools import CLAIM_TOOLS, WRITE_TOOLS
from sessionward.errors import Refused, SettingsInvalid, StateUnwritable, UnsafeState
from sessionward.install import jsonedit
from sessionward.install.diffs import unified_diff
from sessionward.install.hook_commands import (
    EDITED,
    MENTIONS,
    PRISTINE,
    STATUS_LINE_ARGS,
    attribute,
    hook_args,
    pristine_command,
    status_line_command,
)
from sessionward.install.seed_paths import backup_name, launcher_paths

HOOK_TIMEOUT_S = 10
# The contract the hook runtime relies on: (event, matcher or None for all, timeout in s or
# None). SessionEnd has no timeout key so that Claude Code's 1.5 s default for all SessionEnd
# hooks together is not raised for everyone's by ours.
HOOKS = (
    ("SessionStart", None, HOOK_TIMEOUT_S),
    ("UserPromptSubmit", None, HOOK_TIMEOUT_S),
    ("PreToolUse", "|".join(WRITE_TOOLS + ("Bash",)), HOOK_TIMEOUT_S),
    # Bash after the fact too: only to note that the command ended (sessionward.activity).
    ("PostToolUse", "|".join(CLAIM_TOOLS + ("Bash",)), HOOK_TIMEOUT_S),
    # Every tool: only to note "waiting" as a permission dialog opens (~6 s before Notification
    # says so). Its answer is always empty: it never decides (hooks/permission_request.py).
    # Written for every Claude Code version: 2.1.112 and 2.1.331 both run it; a version that
    # does not know an event skips that entry and keeps the rest (seen with both for an
    # unknown event name), so an older one loses only this early "waiting".
    ("PermissionRequest", None, HOOK_TIMEOUT_S),
    # Every notification type: an older Claude Code has no notification matchers, and the
    # handler tells a permission dialog from idle input by the payload (sessionward.activity).
    ("Notification", None, HOOK_TIMEOUT_S),
    ("Stop", None, HOOK_TIMEOUT_S),
    ("SessionEnd", None, None),
)
STATUS_LINE_PADDING = 0
# Seconds between two runs of the status line while Claude Code is idle (without it the row
# is redrawn only when the session itself acts, and goes minutes stale). Each run is the
# shell fast path (install/status_line.sh), about a millisecond of CPU when nothing changed.
STATUS_LINE_REFRESH_S = 3
SETTINGS_NAME = "settings.json"
SETTINGS_LOCK_NAME = "settings.lock"
SETTINGS_LOCK_TIMEOUT_S = 10.0
MAX_MERGE_ATTEMPTS = 5  # a file still changing after this many re-reads is being rewritten in a loop


def launcher_command() -> str:
    """The sessionward launcher beside this interpreter, shell-quoted only when it needs it."""
    return shlex.quote(launcher_paths()[0])


def our_group(event: str, matcher: str | None, timeout: int | None, launcher: str) -> dict:
    handler: dict = {"type": "command", "command": pristine_command(launcher, hook_args(event))}
    if timeout is not None:
        handler["timeout"] = timeout
    group: dict = {"matcher": matcher} if matcher else {}
    group["hooks"] = [handler]
    return group


def our_status_line(launcher: str) -> dict:
    return {"type": "command", "command": status_line_command(launcher), "padding": STATUS_LINE_PADDING,
            "refreshInterval": STATUS_LINE_REFRESH_S}


def _attribute(handler, args: tuple[str, ...]) -> tuple[str | None, str]:
    return attribute(handler.get("command"), args) if isinstance(handler, dict) else (None, "")


def _handlers(group) -> list | None:
    """A matcher group's handler list, or None for anything else (left exactly as found)."""
    if isinstance(group, dict) and isinstance(group.get("hooks"), list):
        return group["hooks"]
    return None


class Changes:
    """What a merge changed: events whose handler of ours was added, updated or removed; the
    statusLine: "added", "updated", "removed", "theirs" (a user's own, kept) or None; `edited`:
    (event or "statusLine", command) of each edited entry of ours, kept by install, removed by
    uninstall; `left_alone`: (event or "statusLine", command, why) of each that mentions
    sessionward without being ours (hook_commands)."""

    __slots__ = ("added", "updated", "removed", "status_line", "edited", "left_alone")

    def __init__(self) -> None:
        self.added: list[str] = []
        self.updated: list[str] = []
        self.removed: list[str] = []
        self.status_line: str | None = None
        self.edited: list[tuple[str, str]] = []
        self.left_alone: list[tuple[str, str, str]] = []

    def summary(self) -> str:
        """'6 hooks, statusLine' / 'updated 2 hooks' / 'removed 6 hooks, statusLine'."""
        parts = []
        if self.added:
            parts.append(_hooks(len(self.added)))
        if self.updated:
            parts.append(f"updated {_hooks(len(self.updated))}")
        if self.status_line == "added":
            parts.append("statusLine")
        elif self.status_line == "updated":
            parts.append("updated statusLine")
        elif self.status_line == "theirs" and (self.added or self.updated):
            parts.append("your statusLine kept")
        removed = [_hooks(len(self.removed))] if self.removed else []
        if self.status_line == "removed":
            removed.append("statusLine")
        if removed:
            parts.append("removed " + ", ".join(removed))
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {
            "hooks": {"added": self.added, "updated": self.updated, "removed": self.removed},
            "status_line": self.status_line,
            "edited": [{"where": where, "command": command} for where, command in self.edited],
            "left_alone": [{"where": where, "command": command, "why": why} for where, command, why in self.left_alone],
        }

    def note(self, where: str, handler, kind: str | None, detail: str) -> None:
        if kind == EDITED:
            self.edited.append((where, handler["command"]))
        elif kind == MENTIONS:
            self.left_alone.append((where, handler["command"], detail))


def _hooks(n: int) -> str:
    return f"{n} hook" if n == 1 else f"{n} hooks"


def merge_settings(doc: dict, launcher: str) -> tuple[dict, Changes]:
    """`doc` with sessionward's hooks and status line in place (see the module docstring)."""
    new = copy.deepcopy(doc)
    changes = Changes()
    hooks = new.setdefault("hooks", {})
    for event, matcher, timeout in HOOKS:
        wanted = our_group(event, matcher, timeout, launcher)
        groups = hooks.get(event)
        if groups is None:
            hooks[event] = [wanted]
            changes.added.append(event)
            continue
        merged, found = _merge_event(groups, event, wanted, changes)
        if not found:
            merged.append(wanted)
            changes.added.append(event)
        elif merged != groups:
            changes.updated.append(event)
        hooks[event] = merged

    wanted_line = our_status_line(launcher)
    current = new.get("statusLine")
    kind, detail = _attribute(current, STATUS_LINE_ARGS)
    if "statusLine" not in new:
        new["statusLine"] = wanted_line
        changes.status_line = "added"
    elif kind == PRISTINE and isinstance(current, dict):  # ours is always an object
        if current["command"] != wanted_line["command"]:
            current["command"] = wanted_line["command"]  # other keys the user set on it stay
            changes.status_line = "updated"
        if "refreshInterval" not in current:  # an older install's: stale for minutes without it
            current["refreshInterval"] = wanted_line["refreshInterval"]
            changes.status_line = "updated"
    elif kind != EDITED:
        changes.status_line = "theirs"
    changes.note("statusLine", current, kind, detail)
    return new, changes


def _merge_event(groups: list, event: str, wanted: dict, changes: Changes) -> tuple[list, bool]:
    args = hook_args(event)
    kinds = [[_attribute(h, args) for h in handlers] if (handlers := _handlers(g)) is not None else []
             for g in groups]
    for group, group_kinds in zip(groups, kinds):
        for handler, (kind, detail) in zip(_handlers(group) or (), group_kinds):
            changes.note(event, handler, kind, detail)
    # An edited handler of ours is the installed one: pristine copies beside it are duplicates.
    found = any(kind == EDITED for group_kinds in kinds for kind, _ in group_kinds)
    out = []
    for group, group_kinds in zip(groups, kinds):
        handlers = _handlers(group) or []
        if not any(kind == PRISTINE for kind, _ in group_kinds):
            out.append(group)
            continue
        others = [h for h, (kind, _) in zip(handlers, group_kinds) if kind != PRISTINE]
        if found:  # a second copy of ours: drop it, keep the user's handlers beside it
            if others:
                out.append(dict(group, hooks=others))
            continue
        found = True
        if not others:
            out.append(wanted)  # a group of ours: today's matcher, timeout and launcher
            continue
        # Ours inside the user's own group: they chose its place and matcher; fix the
        # command only, and keep one copy.
        kept, seen = [], False
        for handler, (kind, _) in zip(handlers, group_kinds):
            if kind == PRISTINE:
                if seen:
                    continue
                seen = True
                handler = dict(handler, command=wanted["hooks"][0]["command"])
            kept.append(handler)
        out.append(dict(group, hooks=kept))
    return out, found


def unmerge_settings(doc: dict) -> tuple[dict, Changes]:
    """`doc` without any handler or statusLine of ours (see the module docstring)."""
    new = copy.deepcopy(doc)
    changes = Changes()
    hooks = new.get("hooks")
    if isinstance(hooks, dict):
        for event in list(hooks):
            groups = hooks[event]
            if not isinstance(groups, list):
                continue
            out, removed = [], False
            for group in groups:
                handlers = _handlers(group)
                if handlers is None:
                    out.append(group)
                    continue
                keep = []
                for handler in handlers:
                    kind, detail = _attribute(handler, hook_args(event))
                    changes.note(event, handler, kind, detail)
                    if kind not in (PRISTINE, EDITED):
                        keep.append(handler)
                if len(keep) == len(handlers):
                    out.append(group)
                    continue
                removed = True
                if keep:
                    out.append(dict(group, hooks=keep))
            if removed:
                changes.removed.append(event)
                if out:
                    hooks[event] = out
                else:
                    del hooks[event]
        if changes.removed and not hooks:
            del new["hooks"]
    current = new.get("statusLine")
    kind, detail = _attribute(current, STATUS_LINE_ARGS)
    changes.note("statusLine", current, kind, detail)
    if kind in (PRISTINE, EDITED):
        del new["statusLine"]
        changes.status_line = "removed"
    return new, changes


# --- reading and writing ----------------------------------------------------------------


def parse_settings(raw: bytes | None, path: str) -> dict:
    """The document in `raw` (None, empty or blank: {}); SettingsInvalid if we cannot merge into it."""
    return {} if raw is None or _blank(raw) else _parse(raw, path).value


def _blank(raw: bytes | None) -> bool:
    return raw is None or not raw.strip(b" \t\n\r")


def _parse(raw: bytes, path: str) -> jsonedit.Node:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsInvalid(path, f"not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise SettingsInvalid(path, "not valid JSON: it starts with a byte order mark (U+FEFF)")
    try:
        root = jsonedit.parse(text)
    except jsonedit.ParseError as exc:
        raise SettingsInvalid(path, f"not valid JSON: {exc}") from None
    check_shape(root.value, path)
    return root


def check_shape(doc, path: str) -> None:
    """Refuse what Claude Code could not read as settings either, before we merge into it."""
    if not isinstance(doc, dict):
        raise SettingsInvalid(path, f"the top level is {_kind(doc)}, not an object")
    hooks = doc.get("hooks")
    if "hooks" in doc and not isinstance(hooks, dict):
        raise SettingsInvalid(path, f'"hooks" is {_kind(hooks)}, not an object')
    for event, groups in (hooks or {}).items():
        if not isinstance(groups, list):
            raise SettingsInvalid(path, f'"hooks"."{event}" is {_kind(groups)}, not a list')


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), "a number")


def render_settings(doc: dict, like: bytes | None, path: str = SETTINGS_NAME) -> bytes:
    """The bytes to write: `like` (the file's bytes; None when new) edited to hold `doc`, every
    byte outside what changed kept (jsonedit); a new, empty or blank file gets `doc` laid out
    like json.dumps(doc, indent=2), with a final newline."""
    try:
        if like is None or _blank(like):
            return (jsonedit.dumps(doc) + "\n").encode()
        return jsonedit.rewrite(like.decode("utf-8"), doc).encode()
    except jsonedit.CannotEdit as exc:  # refused rather than written with a value changed
        raise SettingsInvalid(path, f"sessionward cannot add to it without changing what is there ({exc})") from None


class SettingsResult:
    """What apply_settings did (or would do): create, update or unchanged."""

    __slots__ = ("path", "action", "changes", "backup", "diff")

    def __init__(self, path: str, action: str, changes: Changes, backup: str | None = None, diff=None) -> None:
        self.path = path
        self.action = action
        self.changes = changes
        self.backup = backup
        self.diff = diff or []

    def to_json(self) -> dict:
        return {"what": "settings", "path": self.path, "action": self.action, "backup": self.backup,
                **self.changes.to_json()}


def apply_settings(path: str, transform, dry_run: bool = False, before_replace=None,
                   remove_when_empty: bool = False) -> SettingsResult:
    """Apply `transform` (doc -> (new doc, Changes)) to the settings file at `path`.

    dry_run: read and plan only; the result carries the unified diff and nothing is written
    (no lock, no directory created). before_replace: called after each merge and before the
    re-read that guards the replace (tests use it to play Claude Code writing meanwhile).
    remove_when_empty: a file (not a symlink) left holding {} is removed, with no backup
    (uninstall, for a settings.json that install created: nothing in it is the user's).
    """
    target = os.path.realpath(path)  # a symlinked settings.json: write through to its target
    remove_when_empty = remove_when_empty and not os.path.islink(path)
    if dry_run:
        raw = _read(target, path)
        doc = parse_settings(raw, path)
        new, changes = transform(doc)
        if remove_when_empty and new == {} and raw is not None:
            return SettingsResult(path, "remove", changes, diff=unified_diff(path, raw, None))
        if new == doc:
            return SettingsResult(path, "unchanged", changes)
        data = render_settings(new, raw, path)
        return SettingsResult(path, "create" if raw is None else "update", changes, diff=unified_diff(path, raw, data))
    with installer_lock():
        return _apply_locked(path, target, transform, before_replace, remove_when_empty)


def _apply_locked(path: str, target: str, transform, before_replace, remove_when_empty) -> SettingsResult:
    raw = _read(target, path)
    backup = None
    replaced = False
    try:
        for _attempt in range(MAX_MERGE_ATTEMPTS):
            doc = parse_settings(raw, path)
            new, changes = transform(doc)
            if remove_when_empty and new == {} and raw is not None:
                if before_replace is not None:
                    before_replace()
                fresh = _read(target, path)
                if fresh != raw:
                    raw = fresh  # written meanwhile: judge the fresh bytes
                    continue
                unlink_if_present(target)
                return SettingsResult(path, "remove", changes)
            if new == doc:
                _discard(backup)
                return SettingsResult(path, "unchanged", changes)
            data = render_settings(new, raw, path)
            if raw is None:
                _discard(backup)  # the file went away meanwhile: nothing to keep
                backup = None
            else:
                backup = backup or backup_name(path)
                write_file_atomic(backup, raw, 0o600)  # settings may hold tokens: private
            if before_replace is not None:
                before_replace()
            fresh = _read(target, path)
            if fresh != raw:
                raw = fresh  # rewritten under us (Claude Code locks nothing): merge again
                continue
            mode = _mode_of(target)
            _ensure_parent(target)
            write_file_atomic(target, data, mode, exact_mode=True)  # the umask must not narrow a mode we keep
            replaced = True
            remove_stray_temps(target)
            return SettingsResult(path, "create" if raw is None else "update", changes, backup)
        raise Refused(
            f"{path} kept changing while sessionward merged into it ({MAX_MERGE_ATTEMPTS} tries)",
            "run the command again when Claude Code is idle; nothing was changed",
        )
    except BaseException:
        if not replaced:
            _discard(backup)
        raise


def _read(target: str, shown: str) -> bytes | None:
    try:
        return read_file_nofollow(target)
    except ValueError as exc:  # larger than any settings file
        raise SettingsInvalid(shown, str(exc)) from None


def _mode_of(target: str) -> int:
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        return 0o600
    except OSError as exc:
        raise StateUnwritable(target, exc) from None


def _ensure_parent(target: str) -> None:
    try:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    except OSError as exc:
        raise StateUnwritable(os.path.dirname(target), exc) from None


def _discard(backup: str | None) -> None:
    if backup:
        with contextlib.suppress(OSError):
            os.unlink(backup)


_lock_depth = 0  # this process's hold on the installer lock (flock is per open file, not re-entrant)


@contextlib.contextmanager
def installer_lock():
    """Hold <private>/settings.lock: one sessionward install or uninstall at a time, start to
    end (command files included). Re-entrant within a process: apply_settings takes it too,
    and a second flock from the same process on a new descriptor would wait for itself."""
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    lock_path = os.path.join(paths.ensure_private_dir(), SETTINGS_LOCK_NAME)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a symlink planted at the lock's path
            raise UnsafeState(lock_path, "it is a symlink", f"remove the link: rm {lock_path}") from None
        raise StateUnwritable(lock_path, exc) from None
    try:
        if not flock_exclusive(fd, SETTINGS_LOCK_TIMEOUT_S):
            who, todo = flock_holder(fd) or ("another 'sessionward install' or 'uninstall' is running", "retry in a moment")
            raise Refused(f"settings lock {lock_path} still busy after {SETTINGS_LOCK_TIMEOUT_S:.0f} s: {who}", todo)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
    finally:
        os.close(fd)
