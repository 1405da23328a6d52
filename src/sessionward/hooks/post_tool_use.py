"""PostToolUse: after Read, Edit, Write, MultiEdit and NotebookEdit, record the claim
(session, absolute path, time, the file's size/mtime/digest after the call); none for a
draft in the drafts directory (sessionward.drafts)."""

import time

from sessionward.claude_tools import CLAIM_TOOLS
from sessionward.hooks import HookEvent


def handle(event: HookEvent) -> dict | None:
    claim = _claim_of(event)
    if claim is not None:
        from sessionward import claims

        path, fields = claim
        # a shared store that does not answer: the claim is kept, recorded by a later hook
        claims.record_claim(path, owner=event.owner, keep_if_unreachable=True, **fields)
    return None


def keep_claim(event: HookEvent) -> None:
    """Keep this event's claim for a later hook to record, without asking the store: the
    hook runner found it unreachable (recording the claims kept before this one)."""
    claim = _claim_of(event)
    if claim is not None:
        from sessionward import claims

        path, fields = claim
        event.owner.watch()  # as record_claim does: the claim says whether a watcher vouches for its owner
        claims.keep_for_later(path, claims.new_claim(path, owner=event.owner, **fields))


def _claim_of(event: HookEvent) -> tuple[str, dict] | None:
    """(the path, the claim's fields but its owner) this event claims; None for a tool that
    claims nothing, a draft, or a Read of nothing on disk."""
    tool = event.payload.get("tool_name")
    if tool not in CLAIM_TOOLS:
        return None
    path = event.file_path(event.mapping("tool_input"))
    if path is None:
        return None
    from sessionward import claims, paths
    from sessionward.identity import describe_checkout

    if paths.is_in_drafts_dir(path):
        return None  # a draft: one session's private scratch, never shared (see pre_tool_use)

    state = claims.file_state(path)
    if state is None and tool == "Read":
        return None  # nothing on disk to have seen (a directory, a vanished file)
    return path, {"session_id": event.session_id, "tool": tool, "checkout": describe_checkout(event.cwd),
                  "now": time.time(), "state": state}
