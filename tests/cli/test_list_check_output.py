"""`list` and `check` for people and for pipes: on a terminal colours (not with NO_COLOR),
relative times, each session's activity and its relation to the caller in words; piped,
stdout holds only data (the sweep of a dead session is a notice, on stderr)."""

import os
import subprocess

from sessionward import activity

from helpers import run_cli, run_on_a_terminal


def on_a_terminal(*args, env=None, cwd=None) -> tuple[str, str]:
    """(what `sessionward ARGS` shows on a terminal, in colour unless env says NO_COLOR, its stderr)."""
    environ = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    _, shown, errors = run_on_a_terminal(*args, env={**environ, "TERM": "xterm", **(env or {})}, cwd=cwd)
    return shown, errors


def a_dead_session(tmp_path) -> int:
    doomed = subprocess.Popen(["sleep", "600"])
    run_cli("register", "proj", str(tmp_path), "--pid", str(doomed.pid), "--session", "doomed-1", check=True)
    doomed.kill()
    doomed.wait()
    return doomed.pid


def test_piped_list_holds_only_data_and_the_sweep_goes_to_stderr(tmp_path, keeper):
    run_cli("register", "proj", str(tmp_path), "--pid", str(keeper), "--session", "live-1", check=True)
    dead = a_dead_session(tmp_path)
    done = run_cli("list", check=True)
    lines = done.stdout.splitlines()
    assert lines[0].split("\t") == ["ID", "PROJECT", "WORKTREE", "BRANCH", "PID", "KIND", "UP", "SEEN", "WHERE",
                                    "ACTIVITY"]
    assert len(lines) == 2 and lines[1].split("\t")[:2] == ["live-1", "proj"] and lines[1].endswith("\t-")
    assert done.stderr == f"sessionward: swept dead session doomed-1 (project proj, pid {dead}): process {dead} is gone\n"


def test_piped_check_holds_only_data_and_the_sweep_goes_to_stderr(tmp_path, keeper):
    run_cli("register", "proj", str(tmp_path), "--pid", str(keeper), "--session", "live-1", check=True)
    dead = a_dead_session(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    done = run_cli("check", "proj", "--cwd", str(other))
    assert done.returncode == 1
    assert "swept" not in done.stdout and done.stdout.startswith("project proj, worktree ")
    assert done.stderr == f"sessionward: swept dead session doomed-1 (project proj, pid {dead}): process {dead} is gone\n"


def test_list_on_a_terminal_shows_activity_and_the_relation_in_words_in_colour(tmp_path, keeper):
    run_cli("register", "proj", str(tmp_path), "--pid", str(keeper), "--session", "busy-1", check=True)
    activity.note_event("PreToolUse", "busy-1", {"tool_name": "Edit", "tool_input": {"file_path": "/w/app.py"}})
    shown, err = on_a_terminal("list", cwd=str(tmp_path))
    assert err == ""
    head, row = shown.splitlines()[:2]
    assert "ACTIVITY" in head and "WITH YOU" in head
    assert "\033[32mbusy: Edit /w/app.py 0s\033[0m" in row  # busy: green
    assert "\033[1;31msame worktree\033[0m" in row  # the strong level, in words
    plain, _ = on_a_terminal("list", env={"NO_COLOR": "1"}, cwd=str(tmp_path))
    assert "\033[" not in plain and "busy: Edit /w/app.py" in plain and "same worktree" in plain
    activity.note_event("Notification", "busy-1", {"notification_type": "permission_prompt", "message": "m"})
    waiting, _ = on_a_terminal("check", "proj", cwd=str(tmp_path))
    assert "\033[1;33mwaiting: permission for Edit /w/app.py 0s\033[0m" in waiting  # who needs the person: yellow


def test_list_json_adds_activity_and_keeps_every_key(tmp_path, keeper):
    from helpers import cli_json

    run_cli("register", "proj", str(tmp_path), "--pid", str(keeper), "--session", "busy-1", check=True)
    assert cli_json("list")["result"]["sessions"][0]["activity"] is None
    activity.note_event("UserPromptSubmit", "busy-1", {})
    [session] = cli_json("list")["result"]["sessions"]
    assert session["activity"]["state"] == "busy" and session["id"] == "busy-1"
