"""Activity from hook events (sessionward.activity): the real payload sequences of Claude Code
2.1.331 and 2.1.112 fed to `sessionward hook` through the stand-in Claude process, the state
read back through the API after every event.

No Notification payload was captured from the real CLI: payloads/documented/Notification.json
is built from Claude Code's hooks reference (its "source" says so) and gets its session id,
transcript path and cwd from the captured run it is put into.
"""

import json
import os

import pytest

from sessionward import activity
from sessionward.hooks import EVENTS

DOCUMENTED = os.path.join(os.path.dirname(__file__), "payloads", "documented", "Notification.json")


def notification(kind: str, like: dict) -> dict:
    with open(DOCUMENTED, encoding="utf-8") as f:
        payload = dict(json.load(f)[kind])
    for key in ("session_id", "transcript_path", "cwd"):
        payload[key] = like[key]
    return payload


def hook_sequence(payloads, version: str) -> list:
    """The captured hook events of the basic run (not the Bash tool's own record)."""
    return [(event, payload) for event, payload in payloads.sequence(version, "basic") if event in EVENTS]


def state_of(session_id: str) -> dict:
    found = activity.read_activity(session_id)
    assert found is not None, "no activity noted"
    return found


def summary(current: dict) -> tuple:
    return (current["state"], current.get("tool"), current.get("wait"))


def test_a_real_session_goes_idle_busy_tool_waiting_busy_idle_ended(fake_claude, payloads, version, project):
    claude = fake_claude(version)
    sequence = hook_sequence(payloads, version)
    sid = sequence[0][1]["session_id"]
    seen = []
    for event, payload in sequence:
        ran = claude.hook(event, payload)
        assert ran.rc == 0, ran
        current = state_of(sid)
        seen.append(summary(current))
        if event == "PreToolUse" and payload["tool_name"] == "Bash":
            # Claude Code shows its permission dialog for the command: the documented Notification.
            assert claude.hook("Notification", notification("permission_prompt", payload)).rc == 0
            waiting = state_of(sid)
            seen.append(summary(waiting))
            assert waiting["message"] == "Claude needs your permission to use Bash"
            assert waiting["target"] == payload["tool_input"]["command"][: activity.MAX_TEXT - 1] + "…"
        if event == "PreToolUse" and payload["tool_name"] == "Write":
            assert current["target"] == payload["tool_input"]["file_path"]
        if event == "Stop":
            stopped_at = current["since"]
            assert claude.hook("Notification", notification("auth_success", payload)).rc == 0
            assert state_of(sid) == current  # nothing the person must do: unchanged
            assert claude.hook("Notification", notification("idle_prompt", payload)).rc == 0
            idle_wait = state_of(sid)
            seen.append(summary(idle_wait))
            assert idle_wait["since"] == stopped_at  # waiting for input since the turn ended
    assert seen == [
        ("idle", None, None),                 # SessionStart
        ("busy", None, None),                 # UserPromptSubmit
        ("busy", "Write", None),              # PreToolUse Write
        ("busy", None, None),                 # PostToolUse Write
        ("busy", "Bash", None),               # PreToolUse Bash
        ("waiting", "Bash", "permission"),    # Notification permission_prompt
        ("busy", None, None),                 # PostToolUse Bash: allowed, ran, done
        ("idle", None, None),                 # Stop
        ("waiting", None, "input"),           # Notification idle_prompt
        ("ended", None, None),                # SessionEnd
    ]
    assert state_of(sid)["reason"] == "other"


def test_busy_keeps_the_prompts_start_across_tools(fake_claude, payloads, version, project):
    claude = fake_claude(version)
    sequence = hook_sequence(payloads, version)
    sid = sequence[0][1]["session_id"]
    for event, payload in sequence[:2]:
        claude.hook(event, payload)
    prompt_at = state_of(sid)["since"]
    for event, payload in sequence[2:6]:
        claude.hook(event, payload)
        assert state_of(sid)["since"] == prompt_at


def test_an_untyped_notification_is_read_by_its_message_and_an_odd_id_gets_no_file(fake_claude, payloads, project):
    claude = fake_claude("2.1.112")
    start = payloads.get("2.1.112", "basic", "01-SessionStart")
    claude.hook("SessionStart", start)
    assert claude.hook("Notification", notification("untyped_permission", start)).rc == 0
    assert summary(state_of(start["session_id"])) == ("waiting", None, "permission")
    odd = dict(start, session_id="..")
    assert claude.hook("Notification", notification("permission_prompt", odd) | {"session_id": ".."}).rc == 0
    assert sorted(os.listdir(activity.activity_dir())) == [start["session_id"] + ".json"]


def test_parallel_tool_calls_clear_only_their_own_tool():
    started = activity.next_activity("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "make"},
                                                    "tool_use_id": "b"}, {"state": "busy", "since": 1.0}, 5.0)
    other_done = activity.next_activity("PostToolUse", {"tool_use_id": "a"}, started, 6.0)
    assert (other_done["tool"], other_done["target"], other_done["since"]) == ("Bash", "make", 1.0)
    own_done = activity.next_activity("PostToolUse", {"tool_use_id": "b"}, other_done, 7.0)
    assert own_done["tool"] is None and own_done["since"] == 1.0


@pytest.mark.parametrize("answer, expected", [
    ({"hookSpecificOutput": {"permissionDecision": "deny", "permissionDecisionReason": "no"}}, ("busy", None, None)),
    ({"hookSpecificOutput": {"permissionDecision": "ask", "permissionDecisionReason": "sessionward: why"}},
     ("waiting", "Edit", "permission")),
])
def test_a_deny_clears_the_tool_and_an_ask_is_waiting_for_permission(answer, expected):
    activity.note_event("PreToolUse", "s1", {"tool_name": "Edit", "tool_input": {"file_path": "/x"}})
    activity.note_decision("s1", {}, answer)
    assert summary(activity.read_activity("s1")) == expected


def test_describe_reads_as_a_person_would():
    now = 100.0
    assert activity.describe(None, now) == "-"
    assert activity.describe({"state": "waiting", "since": 88.0, "wait": "permission", "tool": "Bash"}, now) \
        == "waiting: permission for Bash 12s"
    assert activity.describe({"state": "busy", "since": 10.0, "tool": "Edit", "target": "/etc/x", "tool_since": 97.0},
                             now) == "busy: Edit /etc/x 3s"
    assert activity.describe({"state": "idle", "since": 40.0}, now) == "idle 1m"
