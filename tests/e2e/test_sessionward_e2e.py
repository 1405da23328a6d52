"""sessionward installed for real into a HOME, driven by the real Claude Code CLI (offline,
against the scripted stub): two concurrent sessions in one worktree, a Write refused or asked
per policy with the reason reaching B's model, B's first request naming A, a `git checkout`
asked, an empty registry once both ended, and a `kill -9` of A swept by B's next hook; /end
saving a note through a draft its Write tool wrote (allowed by end.md) and `--text-file`.

The hooks are the ones `sessionward install` writes into $HOME/.claude/settings.json: nothing
here is wired by hand, so a broken install, matcher or launcher path fails these tests too.
"""

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sessionward import paths

from e2e.mock_messages_api import bash, flatten_text, text, tool_result_text, write
from helpers import SESSIONWARD, cli_json, make_git_repo, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def installed(claude_home):
    """sessionward's hooks installed into the test HOME's settings.json, as a user would."""
    ran = run_cli("install")
    assert ran.returncode == 0, ran.stderr
    events = claude_home.settings()["hooks"]
    assert sorted(events) == sorted(["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest",
                                     "Notification", "Stop", "SessionEnd"])
    return claude_home


@pytest.fixture
def proj(tmp_path):
    return make_git_repo(tmp_path / "proj")


def registry_ids(state_dir) -> list[str]:
    """The ids in the registry document as it is on disk (nobody sweeps when reading it)."""
    try:
        doc = json.loads((state_dir / "obsidian_sessions.json").read_text())
    except FileNotFoundError:
        return []
    return sorted(doc["sessions"])


def branch(repo) -> str:
    return subprocess.run(["git", "branch", "--show-current"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def refused(tool_result: dict) -> str:
    """The text of a tool call Claude Code refused (is_error), for assertions on its reason."""
    assert tool_result.get("is_error") is True, tool_result
    return tool_result_text(tool_result)


@pytest.mark.parametrize("policy", ["ask", "deny"])
def test_two_sessions_in_one_worktree(installed, proj, state_dir, policy):
    x = proj / "x.txt"
    # A writes x.txt, then stays alive mid-turn (the stub holds its next answer).
    a = installed.start([write(x, "from A\n"), text("A done", hold=True)], cwd=proj)
    a.wait_held()
    assert x.read_text() == "from A\n"
    a_id = a.session_id()
    assert registry_ids(state_dir) == [a_id]
    assert not any("sessionward" in tool_result_text(r) for r in a.tool_results())  # alone: no opinion

    b = installed.start([write(x, "from B\n"), bash("git checkout -q -b topic"), text("B done")],
                        cwd=proj, env={"SESSIONWARD_EDIT_POLICY": policy})
    b.wait().check()
    a_label, a_pid = a_id[:8], str(a.pid)

    # B's very first request tells its model about A: who, where, which branch.
    context = b.first_request().text()
    assert "other Claude Code sessions" not in a.first_request().text()
    assert "sessionward: other Claude Code sessions are working near this one right now." in context
    assert f"In this same worktree ({proj}): session {a_label} (project proj, worktree {proj}, branch main, pid {a_pid}" in context

    # B's Write was refused, A's file is intact, and B's model was told why.
    assert x.read_text() == "from A\n"
    write_result, checkout_result = b.tool_results()
    reason = refused(write_result)
    assert f"sessionward: session {a_label} (project proj, worktree {proj}, branch main, pid {a_pid}) edited {x}" in reason
    if policy == "deny":
        assert f"If they want this session to edit it anyway, run `sessionward claim take {x}`" in reason
    else:
        assert "Allow only if you know the edits do not collide" in reason

    # B's git checkout was put to the user (-p: refused), naming A; the branch did not move.
    reason = refused(checkout_result)
    assert f"'git checkout -q -b topic' moves HEAD or rewrites the index or files of {proj}" in reason
    assert f"session {a_label} (project proj" in reason and f"pid {a_pid}" in reason
    assert branch(proj) == "main"

    # B ended (SessionEnd): only A is left; then A ends too and nothing is left.
    assert registry_ids(state_dir) == [a_id]
    a.release()
    a.wait().check()
    assert registry_ids(state_dir) == []
    assert cli_json("list")["result"]["sessions"] == []


def test_without_another_session_nothing_is_said_or_refused(installed, proj, state_dir):
    """The negative control of the test above: the same script, alone, is not refused and
    its model hears nothing from sessionward."""
    x = proj / "x.txt"
    b = installed.start([write(x, "from B\n"), bash("git checkout -q -b topic"), text("B done")], cwd=proj)
    b.wait().check()
    assert "other Claude Code sessions" not in b.first_request().text()
    assert all(not r.get("is_error") for r in b.tool_results()), b.tool_results()
    assert x.read_text() == "from B\n" and branch(proj) == "topic"
    assert registry_ids(state_dir) == []


def test_kill_9_of_a_session_is_swept_at_the_others_next_hook(installed, proj, state_dir):
    x = proj / "x.txt"
    a = installed.start([write(x, "from A\n"), text("A done", hold=True)], cwd=proj)
    a.wait_held()
    a_id = a.session_id()
    # B starts while A lives (its first request names A), then waits on its model.
    b = installed.start([write(x, "from B\n", hold=True), text("B done")], cwd=proj)
    b.wait_held()
    b_id = b.session_id()
    assert f"pid {a.pid}" in b.first_request().text()
    assert registry_ids(state_dir) == sorted([a_id, b_id])

    a.kill()  # kill -9: no SessionEnd, A's record and claim stay behind
    a.proc.wait()
    assert registry_ids(state_dir) == sorted([a_id, b_id])

    b.release()
    b.wait().check()
    # B's Write went through (A's claim died with A) and B's hooks swept A's record.
    [write_result] = b.tool_results()
    assert not write_result.get("is_error"), write_result
    assert x.read_text() == "from B\n"
    assert registry_ids(state_dir) == []


def test_sessionstart_hook_sees_the_claude_process_as_owner(installed, proj, state_dir):
    """The record's owner is the real `claude` process (CLAUDE_PID or the ancestor walk), not
    the hook's `sh` or the sessionward process."""
    a = installed.start([text("A done", hold=True)], cwd=proj)
    a.wait_held()
    [record] = cli_json("list")["result"]["sessions"]
    assert record["id"] == a.session_id()
    assert (record["owner"]["pid"], record["owner"]["comm"], record["kind"]) == (a.pid, "claude", "claude-code")
    assert (record["project"], record["worktree"], record["branch"]) == ("proj", str(proj), "main")
    assert os.path.exists(f"/proc/{a.pid}")
    a.release()
    a.wait().check()


# -- /start and /end, the command files `sessionward install` placed, run by the real CLI ------


def test_start_shows_the_other_session_in_this_worktree(installed, proj):
    a = installed.start([text("A done", hold=True)], cwd=proj)
    a.wait_held()
    b = installed.start([text("B started")], cwd=proj, prompt="/start {marker}")
    b.wait().check()
    # The !`sessionward register` line ran before the prompt was sent; its report replaced it.
    sent = b.first_request().text()
    assert "STRONG WARNING: 1 session works in this same worktree" in sent
    assert f"  {a.session_id()[:8]}  project proj  {proj}  branch main  pid {a.pid}" in sent, sent
    a.release()
    a.wait().check()


def test_end_takes_the_lock_saves_releases_and_unregisters(installed, proj, state_dir):
    sw = SESSIONWARD
    saved = proj / "resume.md"
    drafts = Path(paths.drafts_dir())
    shutil.rmtree(drafts)  # gone since install: sessionward's PreToolUse hook makes it again, 0700
    draft = drafts / "resume-1.md"
    # The model's part of /end: one save step (the resume file) as end.md teaches it, its text
    # written to a draft with the Write tool (end.md's allowed-tools let it write there) and
    # handed over with --text-file; then release and unregister.
    b = installed.start([write(draft, "resume\n"), bash(f"{sw} note append {saved} --text-file {draft}"),
                         bash(f"{sw} lock status end --json", hold=True),
                         bash(f"{sw} lock release end"), bash(f"{sw} unregister"), text("saved")],
                        cwd=proj, prompt="/end {marker}")
    b.wait_held()
    assert f"acquired lock end (holder pid {b.pid}," in flatten_text(b.first_request().messages)
    # While B saves, `end` is held by B's claude process, and end.lock holds that PID alone.
    [status] = cli_json("lock", "status", "end")["result"]["locks"]
    assert (status["held"], status["pid"], status["holder"]["holder"]["comm"]) == (True, b.pid, "claude"), status
    assert (state_dir / "end.lock").read_text().strip() == str(b.pid)
    b.release()
    b.wait().check()
    assert saved.read_text() == "resume\n"
    assert all(not r.get("is_error") for r in b.tool_results()), b.tool_results()
    assert f"removed {draft}" in tool_result_text(b.tool_results()[1])
    assert not draft.exists() and stat.S_IMODE(drafts.stat().st_mode) == 0o700
    assert not (state_dir / "end.lock").exists()
    assert registry_ids(state_dir) == []


def test_end_while_another_session_holds_the_lock_names_it_and_saves_nothing(installed, proj, state_dir):
    """/end's !`...` line only tries (the TUI shows nothing while it runs); its line names the
    holder (short session id, project, worktree and branch, how long) and the next step,
    which the model runs as a Bash call (allowed by end.md) until the wait is over."""
    sw = SESSIONWARD
    a = installed.start([text("A done", hold=True)], cwd=proj)
    a.wait_held()
    held = run_cli("lock", "acquire", "end", "--pid", str(a.pid), "--purpose", "A's save")
    assert held.returncode == 0, held.stderr
    b = installed.start([bash(f'{sw} lock acquire end --step 1 --exit-zero --purpose "/end save"'), text("not saved")],
                        cwd=proj, prompt="/end {marker}", env={"SESSIONWARD_LOCK_TIMEOUT_S": "1"})
    b.wait().check()
    sent = flatten_text(b.first_request().messages)
    holder = f"pid {a.pid} (claude), session {a.session_id()[:8]}, project proj, worktree {proj} (main), purpose: A's save"
    assert f"sessionward: waiting for lock end (0 s of 1 s), held by {holder}, held for " in sent, sent
    assert "still waiting: run the next step, 'lock acquire end --step 1'" in sent
    [step] = b.tool_results()
    assert not step.get("is_error"), step  # end.md's allowed-tools let the model run the step
    assert f"sessionward: lock end still held after 1.0 s by {holder}" in tool_result_text(step)
    # B's turn ended without the lock: A still holds it.
    [status] = cli_json("lock", "status", "end")["result"]["locks"]
    assert (status["held"], status["pid"]) == (True, a.pid), status
    a.release()
    a.wait().check()
