"""PostToolUse: after Read, Edit, Write, MultiEdit and NotebookEdit, record the claim
(session, absolute path, time, the file's size/mtime/digest after the call)."""

import time

from sessionward.hooks import HookEvent

CLAIM_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit", "Read")


def handle(event: HookEvent) -> dict | None:
    tool = event.payload.get("tool_name")
    if tool not in CLAIM_TOOLS:
        return None
    path = event.file_path(event.mapping("tool_input"))
    if path is None:
        return None
    from sessionward import claims
    from sessionward.identity import describe_checkout

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
    )
    return None
