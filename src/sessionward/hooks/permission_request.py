"""PermissionRequest: Claude Code is about to show its person a permission dialog for a tool
call (any tool). The dispatcher notes it as the session's activity, "waiting" for permission
with the tool and what it works on (sessionward.activity), from the moment the dialog opens:
Claude Code's own permission Notification comes only once the dialog has been up ~6 s.

This hook never decides. Claude Code reads a decision only from a JSON answer (exit 0,
`hookSpecificOutput.decision` allow or deny); an empty answer leaves the dialog to the
person. So handle() answers None, and the dispatcher adds nothing to it (no systemMessage:
hooks.with_pending_notices keeps pending notices for a later event). When sessionward itself
fails here it exits 1 with one line, as every hook does: seen with 2.1.331 and 2.1.112, a
PermissionRequest hook that exits 1 (or even 2) makes no decision either; the dialog shows
as usual (tests/e2e/test_tui.py checks it with exit 1)."""

from sessionward.hooks import HookEvent


def handle(event: HookEvent) -> dict | None:
    return None
