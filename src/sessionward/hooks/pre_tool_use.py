"""PreToolUse: before Edit/Write/MultiEdit/NotebookEdit, the file guards; before Bash, the
take-over guard (`sessionward claim take FILE`: ask, naming whose edit it overrides) and the
git guard (see sessionward.guards). Every other call, and every Bash command with neither
`git` nor `sessionward` in it, is answered "no opinion" before any state is read: this runs
before every tool call.

Before a Write into the drafts directory (sessionward.drafts: /end's notes on their way to
`note ... --text-file`), that directory is made private: the Write tool would create a
missing one 0755, and the draft 0644, readable by every local user. When it cannot be made
private, the Write is denied and the model told why. Drafts get no file guard: each is one
session's scratch file, written once and removed by `note`, never shared, so another
session's draft of the same name is no collision (PostToolUse records no claim on them)."""

import os

from sessionward.claude_tools import WRITE_TOOLS
from sessionward.hooks import HookEvent


def handle(event: HookEvent) -> dict | None:
    tool = event.payload.get("tool_name")
    if tool == "Bash":
        return _bash(event)
    if tool not in WRITE_TOOLS:
        return None
    path = event.file_path(event.mapping("tool_input"))
    if path is None:
        return None
    from sessionward import paths

    if paths.is_in_drafts_dir(path):  # private scratch, never shared: no guard, no claim
        return answer(_drafts_dir_refusal()) if tool == "Write" else None
    from sessionward.config import load_config
    from sessionward.guards import check_file_edit

    verdict = check_file_edit(path, event.owner, load_config(event.environ))
    return answer(noted(event, verdict, f"edit {os.path.basename(path)}"))


def _drafts_dir_refusal():
    """None when the drafts directory is (now) private; else a deny."""
    from sessionward import drafts
    from sessionward.errors import SessionwardError

    try:
        drafts.ensure_drafts_dir()
    except SessionwardError as exc:
        from sessionward.guards import DENY, Verdict

        return Verdict(DENY, f"the drafts directory cannot be made private, so a draft there could be read by "
                               f"other users: {exc}", "drafts")
    return None


def _bash(event: HookEvent) -> dict | None:
    command = event.mapping("tool_input").get("command")
    if not isinstance(command, str):
        return None
    # gitcmd.mentions_git, inlined: importing gitcmd would cost ~0.3 ms on every Bash call
    git = "git" in command or "gh pr " in command or "gh co " in command
    if not git and "sessionward" not in command:
        return None
    from sessionward.config import load_config
    from sessionward.guards import check_git_command, check_take_over

    config = load_config(event.environ)
    verdict = check_take_over(command, event.cwd, event.owner, config)
    if verdict:
        return answer(noted(event, verdict, "take-over"))
    if git:
        return answer(noted(event, check_git_command(command, event.cwd, event.owner, config), "git command"))
    return None


def noted(event: HookEvent, verdict, what: str):
    """`verdict`; an ask is noted for this session's status line (the person sees it there
    once Claude Code's dialog is answered: sessionward.status_stamp)."""
    if verdict and verdict.decision == "ask":
        from sessionward._humanize import short_session_id
        from sessionward.status_stamp import note_asked

        ids = [o.get("session") or o.get("id") for o in verdict.others if isinstance(o, dict)]
        who = [short_session_id(w) for w in ids if isinstance(w, str)]
        note_asked(event.payload.get("session_id"), f"{what} (session {', '.join(who)})" if who else what)
    return verdict


def answer(verdict) -> dict | None:
    """The documented PreToolUse JSON for a verdict: deny and ask as permission decisions
    (deny's reason reaches the model, ask's the user); warn lets the call go and tells the
    user (answering "allow" would skip Claude Code's own permission prompt)."""
    if not verdict:
        return None
    if verdict.decision == "warn":
        return {"systemMessage": f"sessionward: {verdict.reason}"}
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": verdict.decision,
            "permissionDecisionReason": f"sessionward: {verdict.reason}",
        }
    }
