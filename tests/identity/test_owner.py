"""Owner resolution on real process trees: claude -> sh -c -> sessionward."""

import json
import os
import subprocess
import sys

import pytest

from helpers import SESSIONWARD, run_cli

# A stand-in for Claude Code: a Python program whose comm is `claude` (started through a
# symlink of that name). It runs one command through `sh -c`, as Claude Code runs hooks and
# Bash commands, and prints its own PID and the command's output.
FAKE_CLAUDE = r"""
import json, os, subprocess, sys
out = subprocess.run(["/bin/sh", "-c", sys.argv[1]], capture_output=True, text=True)
print(json.dumps({"claude_pid": os.getpid(), "stdout": out.stdout, "stderr": out.stderr}))
"""


@pytest.fixture
def fake_claude(tmp_path):
    script = tmp_path / "fake_claude.py"
    script.write_text(FAKE_CLAUDE)
    link = tmp_path / "claude"
    link.symlink_to(sys.executable)

    def run(command: str, env=None):
        result = subprocess.run([str(link), str(script), command], capture_output=True, text=True, env=env, check=True)
        return json.loads(result.stdout)

    return run


def _whoami(stdout: str) -> dict:
    return json.loads(stdout)["result"]


def test_claude_ancestor_through_sh_c_is_the_owner(fake_claude):
    seen = fake_claude(f"{SESSIONWARD} whoami --json")
    who = _whoami(seen["stdout"])
    assert who["owner"]["pid"] == seen["claude_pid"]
    assert who["owner"]["comm"] == "claude"
    assert who["resolved_via"] == "claude ancestor"
    assert who["kind"] == "claude-code"


def test_claude_ancestor_found_through_nested_shells(fake_claude):
    seen = fake_claude(f"bash -c '{SESSIONWARD} whoami --json; true'")
    assert _whoami(seen["stdout"])["owner"]["pid"] == seen["claude_pid"]


def test_claude_pid_wins_when_it_names_an_ancestor(fake_claude):
    # This test process is an ancestor of the fake claude: named by CLAUDE_PID, it wins over
    # the nearer `claude` ancestor.
    env = dict(os.environ, CLAUDE_PID=str(os.getpid()))
    who = _whoami(fake_claude(f"{SESSIONWARD} whoami --json", env=env)["stdout"])
    assert who["owner"]["pid"] == os.getpid()
    assert who["resolved_via"] == "CLAUDE_PID"


def test_claude_pid_naming_a_claude_that_is_not_our_ancestor_is_ignored(fake_claude, tmp_path):
    other_claude = tmp_path / "bin" / "claude"  # another Claude Code process, not our ancestor
    other_claude.parent.mkdir()
    other_claude.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(other_claude), "60"])
    try:
        env = dict(os.environ, CLAUDE_PID=str(proc.pid))
        seen = fake_claude(f"{SESSIONWARD} whoami --json", env=env)
    finally:
        proc.kill()
        proc.wait()
    who = _whoami(seen["stdout"])
    assert who["owner"]["pid"] == seen["claude_pid"]
    assert who["resolved_via"] == "claude ancestor"


def test_claude_pid_naming_an_unrelated_process_is_ignored(keeper):
    for pid in (str(keeper), "1"):
        who = _whoami(run_cli("whoami", "--json", env=dict(os.environ, CLAUDE_PID=pid)).stdout)
        assert who["owner"]["pid"] == os.getpid() and who["resolved_via"] == "caller"


def test_stale_claude_pid_is_ignored(fake_claude):
    gone = subprocess.Popen(["true"])
    gone.wait()
    env = dict(os.environ, CLAUDE_PID=str(gone.pid))
    seen = fake_claude(f"{SESSIONWARD} whoami --json", env=env)
    assert _whoami(seen["stdout"])["owner"]["pid"] == seen["claude_pid"]


def test_outside_claude_the_direct_caller_owns():
    # This test process runs the CLI directly: it is the caller.
    who = _whoami(run_cli("whoami", "--json").stdout)
    assert who["owner"]["pid"] == os.getpid()
    assert who["resolved_via"] == "caller"


def test_outside_claude_a_transient_sh_c_is_skipped():
    result = subprocess.run(["/bin/sh", "-c", f"{SESSIONWARD} whoami --json; true"], capture_output=True, text=True)
    assert _whoami(result.stdout)["owner"]["pid"] == os.getpid()


def test_never_the_cli_itself(fake_claude):
    seen = fake_claude(f"{SESSIONWARD} whoami --json & wait")
    who = _whoami(seen["stdout"])
    assert who["owner"]["pid"] == seen["claude_pid"]


def test_explicit_pid_wins_over_everything(fake_claude, keeper):
    env = dict(os.environ, CLAUDE_PID=str(os.getpid()))
    seen = fake_claude(f"{SESSIONWARD} whoami --pid {keeper} --json", env=env)
    who = _whoami(seen["stdout"])
    assert who["owner"]["pid"] == keeper
    assert who["resolved_via"] == "--pid"


@pytest.mark.parametrize("garbage", ["abc", "-5", "0", "1.5", "99999999999", "", "１２"])
def test_garbage_pid_is_exit_2_one_line(garbage):
    result = run_cli("whoami", "--pid", garbage)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "PID" in result.stderr


def test_pid_of_no_process_is_exit_2():
    gone = subprocess.Popen(["true"])
    gone.wait()
    result = run_cli("whoami", "--pid", str(gone.pid))
    assert result.returncode == 2
    assert result.stderr == f"sessionward: --pid {gone.pid}: no such running process\n"


def test_claude_code_session_id_keys_the_session(tmp_path, keeper):
    from helpers import cli_json

    env = dict(os.environ, CLAUDE_CODE_SESSION_ID="5f1c2d9e-0000-4000-8000-00000000abcd")
    reg = cli_json("register", "p", str(tmp_path), "--pid", str(keeper), env=env)
    assert reg["result"]["session"]["id"] == "5f1c2d9e-0000-4000-8000-00000000abcd"
    bad = dict(os.environ, CLAUDE_CODE_SESSION_ID="not ok!")
    other = cli_json("register", "q", str(tmp_path), "--pid", str(os.getpid()), env=bad)
    assert other["result"]["session"]["id"].startswith("s-")


def test_a_job_detached_from_claude_is_not_that_session(fake_claude, tmp_path):
    # The stand-in claude takes `end` from a child (as /end does from its Bash tool), a second
    # child re-enters it, then a job started from it detaches as tmux or `setsid` would (a new
    # session, its parent gone: adopted by init) while keeping CLAUDE_PID. That job is its own
    # owner: its acquire waits for the session's lock and times out naming the holder.
    job = tmp_path / "job.sh"
    job.write_text(f'sleep 0.3\n{SESSIONWARD} whoami --json >{tmp_path}/who\n'
                   f'{SESSIONWARD} lock acquire end --timeout 1 >{tmp_path}/out 2>{tmp_path}/err\n'
                   f'echo $? >{tmp_path}/rc\n')
    script = (
        f"{SESSIONWARD} lock acquire end --timeout 0 && {SESSIONWARD} lock acquire end --timeout 0"
        f" && echo detached=$(sh -c 'setsid bash -s <{job} >/dev/null 2>&1 & echo $!')"
        f" && while [ ! -s {tmp_path}/rc ]; do sleep 0.05; done"
    )
    env = dict(os.environ, CLAUDE_PID="")  # the stand-in sets it below, as Claude Code does
    seen = fake_claude(f'export CLAUDE_PID=$PPID; {script}', env=env)
    claude = seen["claude_pid"]
    first, again, detached = seen["stdout"].splitlines()
    assert first.startswith(f"acquired lock end (holder pid {claude}, "), seen
    assert again == f"lock end is already yours (pid {claude})"
    assert (tmp_path / "rc").read_text() == "1\n"
    assert (tmp_path / "err").read_text().splitlines()[-1].startswith(
        f"sessionward: lock end still held after 1.0 s by pid {claude} (claude), ")
    assert (tmp_path / "out").read_text() == ""
    who = json.loads((tmp_path / "who").read_text())["result"]
    assert who["owner"]["pid"] == int(detached.removeprefix("detached=")) and who["resolved_via"] == "caller"
