"""install's notes step: which vaults and shared notes the edit guard protects.

Proposed: the vaults in Obsidian's own list (sessionward.vaults) that sessionward.toml does
not protect yet; or, instead, the paths given with --vault PATH (repeatable: a vault, or a
shared note such as a resume file or a memory export). Written to sessionward.toml only with
the person's word: --yes or --vault, or a "y" (or other paths) at the prompt install shows
when stdin and stderr are a terminal. Otherwise install says what it found and how to protect
it, and writes nothing. --no-vaults skips the step. Asked before anything is installed, so a
wrong answer stops install with nothing changed.
"""

import os
import sys

from sessionward.errors import BadInput

PROMPT = "Protect them? [Y/n, or the paths to protect instead, separated by ','] "


class NotesPlan:
    __slots__ = ("found", "protected", "to_add", "confirmed", "skipped", "problems", "written", "file")

    def __init__(self) -> None:
        self.found: list = []  # Obsidian's vaults
        self.protected: list = []  # what the configuration protects already
        self.to_add: list = []
        self.confirmed = False
        self.skipped = False  # --no-vaults
        self.problems: list = []
        self.written: list = []
        self.file = ""

    def to_json(self) -> dict:
        return {"found": self.found, "protected": self.protected, "to_add": self.to_add, "added": self.written,
                "confirmed": self.confirmed, "skipped": self.skipped, "problems": self.problems, "file": self.file}


def plan_notes(values: dict, dry_run: bool, as_json: bool) -> NotesPlan:
    from sessionward.config import config_path, load_config
    from sessionward.vaults import find_obsidian_vaults

    plan = NotesPlan()
    plan.file = config_path()
    if values.get("no_vaults"):
        if values.get("vault") or values.get("yes"):
            raise BadInput("install: --no-vaults goes with neither --vault nor --yes")
        plan.skipped = True
        return plan
    config = load_config()
    plan.protected = config.protected
    found = find_obsidian_vaults()
    plan.found, plan.problems = found.vaults, found.problems
    if values.get("vault"):
        plan.to_add = [_existing(p) for p in values["vault"]]
        plan.confirmed = True
    else:
        plan.to_add = [v for v in found.vaults if not config.in_vault(v)]
        plan.confirmed = bool(values.get("yes"))
    plan.to_add = [p for p in dict.fromkeys(plan.to_add) if p not in plan.protected]
    if plan.to_add and not plan.confirmed and not dry_run and not as_json and _on_a_terminal():
        _ask(plan)
    return plan


def _existing(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name that is not UTF-8 (surrogate-escaped bytes): TOML cannot hold it
        raise BadInput(f"install: a path to protect must be UTF-8 text (sessionward.toml is): {ascii(text.strip())}; "
                       "nothing was changed") from None
    if "\0" in text:
        raise BadInput(f"install: a path to protect cannot hold a NUL byte: {text.strip()!r}; nothing was changed")
    real = os.path.realpath(os.path.expanduser(text.strip()))
    if not text.strip() or not os.path.exists(real):
        raise BadInput(f"install: no such file or directory to protect: {text.strip()!r}; nothing was changed")
    return real


def _on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(plan: NotesPlan) -> None:
    from sessionward._humanize import short_path

    sys.stderr.write("Obsidian's vaults that sessionward does not protect yet (edits there wait while another\n"
                     "session saves under the end lock):\n")
    sys.stderr.writelines(f"  {short_path(p)}\n" for p in plan.to_add)
    sys.stderr.write(PROMPT)
    sys.stderr.flush()
    answer = sys.stdin.readline().strip()
    if answer.lower() in ("", "y", "yes"):
        plan.confirmed = True
    elif answer.lower() in ("n", "no"):
        plan.to_add = []
    else:
        plan.to_add = [p for p in dict.fromkeys(_existing(part) for part in answer.split(",") if part.strip())
                       if p not in plan.protected]
        plan.confirmed = True


def apply_notes(plan: NotesPlan) -> None:
    from sessionward.vaults import protect_paths

    if plan.confirmed and plan.to_add:
        plan.file, plan.written = protect_paths(plan.to_add)
        plan.protected = list(dict.fromkeys(plan.protected + plan.written))


def notes_lines(plan: NotesPlan, dry_run: bool, style) -> list[str]:
    if plan.skipped:
        return []
    out = [f"notes: {problem}" for problem in plan.problems]
    where = style.path(plan.file)
    if plan.confirmed and plan.to_add:
        verb = "would protect" if dry_run else "now protecting"
        out += [f"{verb} {style.path(p)} (in {where})" for p in (plan.to_add if dry_run else plan.written)]
    elif plan.to_add:
        shown = ", ".join(style.path(p) for p in plan.to_add)
        out.append(f"found Obsidian vault(s) not protected: {shown}; to protect them: sessionward install --yes "
                   "(or --vault PATH for each path to protect)")
    if plan.protected:
        out.append(f"notes protected: {', '.join(style.path(p) for p in plan.protected)}")
    return out  # no vault found, none configured: nothing to say (doctor says it)
