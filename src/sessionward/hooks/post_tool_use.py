"""PostToolUse: after Read, Edit, Write, MultiEdit and NotebookEdit, record the claim
(session, absolute path, time, the file's size/mtime/digest after the call); none for a
draft in the drafts directory (sessionward.drafts)."""

import time

from sessionward.claude_tools import CLAIM_TOOLS
from sessionward.hooks import HookEvent


def handle(event: HookEvent) -> dict | None:
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
    claims.record_claim(
        path,
        owner=event.owner,
        session_id=event.session_id,
        tool=tool,
        checkout=describe_checkout(event.cwd),
        now=time.time(),
        state=state,
        keep_if_unreachable=True,  # a shared store that does not answer: recorded by a later hook
    )
    return None
