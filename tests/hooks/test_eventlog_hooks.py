"""The event log from real hook runs: the captured payloads of Claude Code 2.1.331 and 2.1.112
fed through the stand-in Claude process (conftest.FakeClaude), two sessions in one worktree.
What the guards asked or denied, what the person then did, sessions started, ended and found
dead all appear in `sessionward log`, as the person would read them."""

import json
import os

from sessionward import eventlog

from helpers import run_cli


def logged(*names) -> list:
    return [(r["event"], r.get("session")) for r in eventlog.read_events() if not names or r["event"] in names]


def test_hooks_log_starts_denies_asks_what_the_person_did_ends_and_deaths(sessions, project):
    a, b, c = sessions(0), sessions(1), sessions(2)
    assert a.start().rc == 0 and b.start().rc == 0
    path = os.path.join(project, "shared.txt")
    a.pre_write(path)
    a.write(path, "from A\n")
    denied = b.pre_write(path)
    assert denied.json["hookSpecificOutput"]["permissionDecision"] == "deny"
    # A git checkout in the shared worktree is asked; the tool then ran: the person allowed it.
    asked = b.hook("PreToolUse", b.payload("05-PreToolUse", tool_input={"command": "git checkout -b topic"},
                                            tool_use_id="toolu_checkout"))
    assert asked.json["hookSpecificOutput"]["permissionDecision"] == "ask"
    assert b.hook("PostToolUse", b.payload("07-PostToolUse", tool_name="Bash", tool_input={"command": "git checkout -b topic"},
                                           tool_use_id="toolu_checkout")).rc == 0
    # Asked again; the turn ends without the tool having run: not run.
    b.hook("PreToolUse", b.payload("05-PreToolUse", tool_input={"command": "git stash"}, tool_use_id="toolu_stash"))
    assert b.stop().rc == 0
    assert b.stop().rc == 0  # nothing more to say about it
    assert a.end().rc == 0
    b.claude.kill()  # kill -9: no SessionEnd
    assert c.start().rc == 0  # sweeps b
    assert logged() == [
        ("session.started", a.session_id), ("session.started", b.session_id),
        ("edit.denied", b.session_id),
        ("git.asked", b.session_id), ("git.allowed", b.session_id),
        ("git.asked", b.session_id), ("git.not_run", b.session_id),
        ("session.ended", a.session_id),
        ("session.died", b.session_id), ("session.started", c.session_id),
    ]
    by_event = {r["event"]: r for r in eventlog.read_events()}
    assert by_event["edit.denied"]["target"] == path and by_event["edit.denied"]["tool"] == "Write"
    assert "edited" in by_event["edit.denied"]["reason"]
    assert by_event["git.allowed"]["target"] == "git checkout -b topic"
    assert by_event["git.not_run"]["target"] == "git stash"
    assert by_event["session.died"]["check"] == "pid" and by_event["session.died"]["pid"] == b.pid
    # The person's view: b's events, its project learnt from its start, in JSON lines.
    shown = run_cli("log", "--session", b.session_id, "--project", "proj", "--jsonl", check=True).stdout
    assert [json.loads(line)["event"] for line in shown.splitlines()] == [
        "session.started", "edit.denied", "git.asked", "git.allowed", "git.asked", "git.not_run", "session.died"]
    # The table names the project of every row --project counted, a hook's too.
    table = run_cli("log", "--session", b.session_id, check=True).stdout.splitlines()
    assert [line.split("\t")[2] for line in table[1:]] == ["proj"] * 7, table
    asked = [line for line in table if "\tgit.asked\t" in line][0]
    assert "\tBash git checkout -b topic · sessionward: " in asked, asked


def test_a_quiet_tool_call_writes_no_event(sessions, project):
    a = sessions(0)
    a.start()
    before = logged()
    a.prompt()
    a.pre_write(os.path.join(project, "alone.txt"))
    a.write(os.path.join(project, "alone.txt"))
    a.pre_bash("ls -la")
    a.stop()
    assert logged() == before == [("session.started", a.session_id)]


def transcript_result(path: str, tool_use_id: str, at: float, text: str) -> None:
    """The record Claude Code appends to its transcript when a call is answered (shape of
    payloads/2.1.331/permission/transcript-after-refusal.jsonl), dated `at`."""
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
    record = {"type": "user", "timestamp": stamp, "message": {"role": "user", "content": [
        {"type": "tool_result", "content": text, "is_error": True, "tool_use_id": tool_use_id}]}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


REFUSAL = ("The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file "
           "edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to "
           "tell you how to proceed.")


def test_a_refused_git_ask_is_logged_at_the_refusal_not_at_the_next_prompt(sessions, project):
    """Claude Code runs no hook at a refusal: the next prompt (here 40 s later) tells it, and
    the line is dated by the refusal's own time in the transcript; a result that is no
    refusal (the command ran, its PostToolUse missed: it failed) is logged as allowed."""
    import time

    a, b = sessions(0), sessions(1)
    assert a.start().rc == 0 and b.start().rc == 0
    asked_payload = b.payload("05-PreToolUse", tool_input={"command": "git stash"}, tool_use_id="toolu_stash")
    assert b.hook("PreToolUse", asked_payload).json["hookSpecificOutput"]["permissionDecision"] == "ask"
    refused_at = round(time.time() - 40.0, 3)  # the person refused; the next prompt came 40 s later
    transcript_result(asked_payload["transcript_path"], "toolu_stash", refused_at, REFUSAL)
    assert b.prompt().rc == 0
    [not_run] = [r for r in eventlog.read_events() if r["event"] == "git.not_run"]
    assert not_run["at"] == refused_at
    assert not_run["how"] == "refused by the person" and not_run["target"] == "git stash"
    assert not_run["learnt_at"] >= refused_at + 40.0
    # Asked again; the command ran and failed (no PostToolUse): its result says so.
    again = b.payload("05-PreToolUse", tool_input={"command": "git checkout main"}, tool_use_id="toolu_co")
    assert b.hook("PreToolUse", again).json["hookSpecificOutput"]["permissionDecision"] == "ask"
    ran_at = round(time.time() - 5.0, 3)
    transcript_result(again["transcript_path"], "toolu_co", ran_at, "error: Your local changes would be overwritten")
    assert b.stop().rc == 0
    [allowed] = [r for r in eventlog.read_events() if r["event"] == "git.allowed"]
    assert (allowed["at"], allowed["target"], allowed["how"]) == (ran_at, "git checkout main", "ran; no PostToolUse seen")
    table = run_cli("log", "--session", b.session_id, check=True).stdout
    assert "git.not_run\tBash git stash refused by the person" in table, table


def test_an_ended_session_keeps_its_project_worktree_and_branch_in_watch_and_log(sessions, project):
    """After its SessionEnd the registry forgets the session; `watch` still shows it a while
    ("1 ended lately") and names its project, worktree and branch, as `log` names its project."""
    a, b = sessions(0), sessions(1)
    assert a.start().rc == 0 and b.start().rc == 0
    assert a.end().rc == 0
    snapshot = json.loads(run_cli("watch", "--once", "--json", check=True).stdout)["result"]
    [ended] = [row for row in snapshot["sessions"] if row["id"] == a.session_id]
    assert ended["activity"]["state"] == "ended"
    assert (ended["project"], ended["worktree"], ended["branch"]) == ("proj", project, "main")
    plain = run_cli("watch", "--once", check=True).stdout
    assert "1 ended lately" in plain
    [row] = [line for line in plain.splitlines() if line.startswith(a.session_id[:8])]
    assert row.split("\t")[1:4] == ["proj", project, "main"], plain
    table = run_cli("log", "--session", a.session_id, check=True).stdout.splitlines()
    assert [line.split("\t")[2] for line in table[1:]] == ["proj", "proj"], table
