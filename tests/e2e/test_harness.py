"""The end-to-end harness works with the real Claude Code CLI: a scripted tool call is carried
out, hook answers reach the model, two sessions run at once, and the PID it reports is the one
hooks see as CLAUDE_PID. Hooks here are tiny shell scripts, not sessionward's."""

import json
import os
import signal
import time

import pytest

from e2e.claude_harness import proc_comm, write_script
from e2e.mock_messages_api import bash, text, tool_result_text, write

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DENY = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                               "permissionDecisionReason": "REASON-123"}}
CONTEXT = {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "CTX-456"}}


@pytest.fixture
def proj(tmp_path):
    path = tmp_path / "proj"
    path.mkdir()
    return path


def answer_hook(tmp_path, name, answer: dict):
    """A hook command that reads its input and prints `answer` as JSON."""
    return str(write_script(tmp_path / "hooks" / name,
                            f"#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' '{json.dumps(answer)}'\n"))


def test_scripted_write_creates_the_file(claude_home, proj):
    target = proj / "x.txt"
    result = claude_home.run([write(target, "hello from the stub\n"), text("wrote it")], cwd=proj).check()
    assert target.read_text() == "hello from the stub\n"
    assert result.stdout.strip() == "wrote it"
    [tool_result] = claude_home.api.tool_results(result.marker)
    assert not tool_result.get("is_error")


def test_pretooluse_deny_blocks_the_write_and_its_reason_reaches_the_model(claude_home, proj, tmp_path):
    claude_home.add_hook("PreToolUse", answer_hook(tmp_path, "deny.sh", DENY), matcher="Write")
    target = proj / "x.txt"
    result = claude_home.run([write(target, "must not appear\n"), text("ok")], cwd=proj).check()
    assert not target.exists()
    [tool_result] = claude_home.api.tool_results(result.marker)
    assert tool_result.get("is_error") is True
    assert "REASON-123" in tool_result_text(tool_result)


def test_sessionstart_context_is_in_the_first_request(claude_home, proj, tmp_path):
    claude_home.add_hook("SessionStart", answer_hook(tmp_path, "ctx.sh", CONTEXT))
    result = claude_home.run([text("hi")], cwd=proj).check()
    assert "CTX-456" in claude_home.api.first_request(result.marker).text()


def test_two_sessions_run_at_once(claude_home, tmp_path):
    """A stays alive, held mid-turn by the stub after its Write, while B runs from start to
    finish in another directory under the same HOME; then A is let go and finishes too."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = claude_home.start([write(a_dir / "a.txt", "A\n"), text("A done", hold=True)], cwd=a_dir)
    a.wait_held()
    assert (a_dir / "a.txt").read_text() == "A\n"

    b = claude_home.start([write(b_dir / "b.txt", "B\n"), text("B done")], cwd=b_dir)
    b_result = b.wait().check()
    assert a.alive(), "A ended while held"
    a.release()
    a_result = a.wait().check()

    assert (a_result.stdout.strip(), b_result.stdout.strip()) == ("A done", "B done")
    assert (b_dir / "b.txt").read_text() == "B\n"
    assert a.session_id() != b.session_id()
    assert a.pid != b.pid


def test_a_session_waits_in_bash_for_a_file_the_other_creates(claude_home, tmp_path):
    """The other way to keep a session alive: a Bash tool call that waits for a file (here
    written by a second session's Write), so the first one has a live tool process meanwhile."""
    waiter_dir, writer_dir = tmp_path / "waiter", tmp_path / "writer"
    waiter_dir.mkdir()
    writer_dir.mkdir()
    go = writer_dir / "go"
    waiter = claude_home.start(
        [bash(f"while [ ! -e {go} ]; do sleep 0.05; done; echo saw-go", timeout_ms=60_000),
         text("waited")], cwd=waiter_dir)
    time.sleep(1.0)
    assert waiter.alive()
    writer = claude_home.start([write(go, "go\n"), text("wrote go")], cwd=writer_dir)
    writer.wait().check()
    waiter.wait().check()
    [result] = waiter.tool_results()
    assert "saw-go" in tool_result_text(result) and not result.get("is_error")


def test_hooks_and_bash_see_claude_pid_of_the_reported_process(claude_home, proj, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    claude_home.add_hook("PreToolUse", str(write_script(
        tmp_path / "hooks" / "pid.sh",
        f'#!/bin/sh\ncat >/dev/null\necho "$CLAUDE_PID" > {seen}/hook_claude_pid\n'
        f'p=$$; while [ "$p" -gt 1 ]; do echo "$p"; p=$(cut -d " " -f 4 /proc/$p/stat); done'
        f' > {seen}/hook_ancestors\n')))
    s = claude_home.start([bash(f'echo "$CLAUDE_PID" > {seen}/bash_claude_pid'), text("ok", hold=True)],
                          cwd=proj)
    s.wait_held()
    assert proc_comm(s.pid) == "claude"
    hook_pid = int((seen / "hook_claude_pid").read_text())
    assert hook_pid == s.pid
    assert s.pid in [int(p) for p in (seen / "hook_ancestors").read_text().split()]
    assert int((seen / "bash_claude_pid").read_text()) == s.pid
    s.release()
    s.wait().check()


def test_kill_9_of_the_reported_pid_ends_the_session(claude_home, proj, tmp_path):
    ended = tmp_path / "session_end_ran"
    claude_home.add_hook("SessionEnd", f"touch {ended}")
    s = claude_home.start([text("never sent", hold=True)], cwd=proj)
    s.wait_held()
    os.kill(s.pid, signal.SIGKILL)
    assert s.wait().returncode == -signal.SIGKILL
    time.sleep(0.5)
    assert not ended.exists()  # FACTS.md: no SessionEnd when the process is killed


def test_a_slash_command_runs_its_bang_line_and_carries_the_marker(claude_home, proj):
    """User commands in ~/.claude/commands work under -p; "{marker}" in the prompt puts the
    script's marker where the command's arguments go."""
    commands = claude_home.path / ".claude" / "commands"
    commands.mkdir()
    (commands / "probe.md").write_text("---\ndescription: probe\nallowed-tools: Bash(echo *)\n---\n"
                                       "Probe said: !`echo BANG-789`\n")
    result = claude_home.run([text("ok")], cwd=proj, prompt="/probe {marker}").check()
    first = claude_home.api.first_request(result.marker).text()
    assert "Probe said: BANG-789" in first and "<command-name>/probe</command-name>" in first
