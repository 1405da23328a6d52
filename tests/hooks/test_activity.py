"""Activity from hook events (sessionward.activity): the real payload sequences of Claude Code
2.1.331 and 2.1.112 fed to `sessionward hook` through the stand-in Claude process, the state
read back through the API after every event.

The Notification and PermissionRequest payloads are real (payloads/2.1.331/permission,
captured from the interactive CLI, see its README.md): permission_prompt and idle_prompt. Only the kinds no
run produced here, auth_success and a Notification without notification_type (an older
Claude Code), are built from Claude Code's hooks reference: payloads/documented/
Notification.json (its "source" says so). Each gets its session id, transcript path and cwd
from the captured run it is put into.
"""

import json
import os
import time

import pytest

from sessionward import activity
from sessionward.hooks import EVENTS
from sessionward.transcript import utc_epoch

HERE = os.path.dirname(__file__)
DOCUMENTED = os.path.join(HERE, "payloads", "documented", "Notification.json")
PERMISSION_RUN = os.path.join(HERE, "payloads", "2.1.331", "permission")
REAL_NOTIFICATIONS = {"permission_prompt": "05-Notification.json", "idle_prompt": "08-Notification.json"}
REFUSAL_LINES = os.path.join(PERMISSION_RUN, "transcript-after-refusal.jsonl")
REFUSED_AT = "2026-12-06T04:14:14.077Z"  # the refusal's own time in those lines


def notification(kind: str, like: dict) -> dict:
    """A Notification of `kind` for the session of payload `like`: the real one captured from
    Claude Code 2.1.331 when there is one, else the one built from the docs."""
    if kind in REAL_NOTIFICATIONS:
        with open(os.path.join(PERMISSION_RUN, REAL_NOTIFICATIONS[kind]), encoding="utf-8") as f:
            payload = dict(json.load(f)["stdin_payload"])
    else:
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
            # Claude Code shows its permission dialog for the command; its Notification comes
            # ~6 s later, naming no tool: the wait counts from the PreToolUse.
            assert claude.hook("Notification", notification("permission_prompt", payload)).rc == 0
            waiting = state_of(sid)
            seen.append(summary(waiting))
            assert waiting["message"] == "Claude needs your permission"
            assert waiting["since"] == current["tool_since"]
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


def refuse_in_transcript(payloads, transcript: str) -> None:
    """What Claude Code 2.1.331 appended to the transcript when its person refused (captured
    lines, paths rewritten as the payloads' are): the only trace of a refusal, no hook runs."""
    os.makedirs(os.path.dirname(transcript), exist_ok=True)
    with open(REFUSAL_LINES, encoding="utf-8") as f:
        lines = f.read().replace("/tmp/rc/permission", payloads.root)
    with open(transcript, "a", encoding="utf-8") as f:
        f.write('{"type":"permission-mode","permissionMode":"default"}\n' + lines)


PERMISSION_SEQUENCE = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "Notification",
                       "PostToolUse", "Stop", "Notification", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
                       "SessionEnd"]


def permission_run(payloads) -> list:
    """The hook events of the real run of payloads/2.1.331/permission (its README.md)."""
    sequence = [(event, payload) for event, payload in payloads.sequence("2.1.331", "permission") if event in EVENTS]
    assert [event for event, _ in sequence] == PERMISSION_SEQUENCE
    return sequence


def test_a_permission_dialog_is_waiting_from_its_permission_request(fake_claude, payloads, project):
    """The real run of payloads/2.1.331/permission, allowed dialog first: PermissionRequest
    comes 0.04 s after the PreToolUse, as the dialog opens; Claude Code's Notification only
    ~6.5 s later. The session waits from the PermissionRequest, naming the tool and command;
    the late Notification changes neither its start nor what it names."""
    claude = fake_claude("2.1.331")
    sequence = permission_run(payloads)
    sid = sequence[0][1]["session_id"]
    seen = []
    for event, payload in sequence[:8]:
        before = time.time()
        assert claude.hook(event, payload).rc == 0
        current = state_of(sid)
        seen.append(summary(current))
        if event == "PermissionRequest":
            asked_at = current["since"]
            assert before <= asked_at <= time.time()
            assert current["target"] == "sleep 15; touch ok.txt"
            assert current["tool_use_id"] == sequence[2][1]["tool_use_id"]  # lent by its PreToolUse
            assert activity.describe(current, asked_at + 2) == "waiting: permission for Bash sleep 15; touch ok.txt 2s"
        if event == "Notification" and seen[-2][0] == "waiting":
            assert current["since"] == asked_at
            assert current["target"] == "sleep 15; touch ok.txt"
    assert seen == [("idle", None, None), ("busy", None, None), ("busy", "Bash", None),
                    ("waiting", "Bash", "permission"),  # PermissionRequest: the dialog is up
                    ("waiting", "Bash", "permission"),  # Notification permission_prompt, 6.5 s on
                    ("busy", None, None), ("idle", None, None),  # allowed, ran; the turn ended
                    ("waiting", None, "input")]  # Notification idle_prompt


def test_a_permission_request_for_a_tool_without_our_pre_tool_use_names_that_tool():
    """PermissionRequest fires for every tool, ours (Edit, Bash...) or not (WebFetch, an MCP
    tool): nothing of the call before is kept; our own ask's wait keeps its start and reason."""
    busy = activity.next_activity("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "make"},
                                                 "tool_use_id": "b"}, {"state": "busy", "since": 1.0}, 5.0)
    done = activity.next_activity("PostToolUse", {"tool_use_id": "b"}, busy, 6.0)
    asked = activity.next_activity("PermissionRequest", {"tool_name": "WebFetch", "tool_input": {
        "url": "https://example.org/x", "prompt": "read it"}}, done, 7.0)
    assert (asked["state"], asked["wait"], asked["tool"], asked["target"], asked["since"], asked.get("tool_use_id")) \
        == ("waiting", "permission", "WebFetch", "https://example.org/x", 7.0, None)
    ours = dict(busy, state="waiting", wait="permission", since=5.5, message="sessionward: why", asked="b")
    same = activity.next_activity("PermissionRequest", {"tool_name": "Bash", "tool_input": {"command": "make"}}, ours, 5.6)
    assert (same["since"], same["message"], same["asked"], same["tool_use_id"]) == (5.5, "sessionward: why", "b", "b")


@pytest.mark.parametrize("dialog_up_s", [3, 7, None],
                         ids=["refused-before-the-notification", "refused-after-it", "no-permission-request-hook"])
def test_a_refused_permission_dialog_ends_the_wait_at_the_refusal(fake_claude, payloads, project, dialog_up_s):
    """The real run of payloads/2.1.331/permission: a dialog allowed, then one refused. Claude
    Code runs no hook after a refusal; the readers find it in the transcript and show the
    session idle since the refusal, not waiting (nor busy with the refused tool). Also for an
    install from before the PermissionRequest hook (None): the tool is busy, then refused."""
    claude = fake_claude("2.1.331")
    sequence = permission_run(payloads)
    if dialog_up_s is None:
        sequence = [(event, payload) for event, payload in sequence if event != "PermissionRequest"]
    sid = sequence[0][1]["session_id"]
    for event, payload in sequence[:-1]:
        assert claude.hook(event, payload).rc == 0
    refused_tool = next(payload for event, payload in reversed(sequence) if event == "PreToolUse")
    if dialog_up_s is None:
        assert summary(state_of(sid)) == ("busy", "Bash", None)
        time.sleep(1.0)  # busy with the tool that long (activity.SETTLE_AFTER_S): the readers look
    else:
        assert summary(state_of(sid)) == ("waiting", "Bash", "permission")  # the dialog is up, at once
        if dialog_up_s > 6:  # the dialog stayed up long enough for Claude Code's Notification
            assert claude.hook("Notification", notification("permission_prompt", refused_tool)).rc == 0
            assert summary(state_of(sid)) == ("waiting", "Bash", "permission")
    refuse_in_transcript(payloads, refused_tool["transcript_path"])
    after = state_of(sid)
    assert (after["state"], after["event"], after["tool"]) == ("idle", "refused", "Bash")
    assert after["since"] == utc_epoch(REFUSED_AT)
    assert activity.describe(after, after["since"] + 5) == "idle: refused Bash 5s"
    assert activity.read_all_activity()[sid] == after  # what watch reads
    # The next event writes its own state, as always.
    assert claude.hook("SessionEnd", sequence[-1][1]).rc == 0
    assert summary(state_of(sid)) == ("ended", None, None)


def test_an_allowed_tool_still_running_stays_waiting_and_a_foreign_result_changes_nothing(tmp_path):
    """No refusal in the transcript: the wait stands (Claude Code writes nothing while an
    allowed tool runs); a result of another call, or no transcript at all, changes nothing."""
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"type":"user","timestamp":"2026-12-06T04:14:14.077Z","message":{"content":'
                          '[{"type":"tool_result","tool_use_id":"other","content":"The user doesn\'t want to proceed'
                          ' with this tool use."}]}}\n')
    activity.note_event("PreToolUse", "s2", {"tool_name": "Bash", "tool_input": {"command": "make"},
                                             "tool_use_id": "mine", "transcript_path": str(transcript)})
    activity.note_event("Notification", "s2", {"notification_type": "permission_prompt"})
    assert summary(activity.read_activity("s2")) == ("waiting", "Bash", "permission")
    transcript.unlink()
    assert summary(activity.read_activity("s2")) == ("waiting", "Bash", "permission")
