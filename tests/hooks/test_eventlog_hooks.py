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
