"""PreToolUse: before Edit/Write/MultiEdit/NotebookEdit, the file guards; before Bash, the
git guard (see sessionward.guards). Every other call, and every Bash command without `git`
in it, is answered "no opinion" before any state is read: this runs before every tool call."""

from sessionward.hooks import HookEvent

FILE_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")


def handle(event: HookEvent) -> dict | None:
    tool = event.payload.get("tool_name")
    if tool == "Bash":
        return _bash(event)
    if tool not in FILE_TOOLS:
        return None
    path = event.file_path(event.mapping("tool_input"))
    if path is None:
        return None
    from sessionward.config import load_config
    from sessionward.guards import check_file_edit

    return answer(check_file_edit(path, event.owner, load_config(event.environ)))


def _bash(event: HookEvent) -> dict | None:
    command = event.mapping("tool_input").get("command")
    if not isinstance(command, str) or "git" not in command:
        return None
    from sessionward.config import load_config
    from sessionward.guards import check_git_command

    return answer(check_git_command(command, event.cwd, event.owner, load_config(event.environ)))


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
