"""A shell that is PID 1 (a container's `docker run -it IMAGE bash`) owns its sessions and locks.

`unshare -fp --mount-proc` makes the program it runs PID 1 of a new PID namespace, with a
/proc of its own. There, bash reading a script on stdin (a shell, not a transient `bash -c`)
registers, takes the end lock through the shell helpers and is named as the owner; a caller
that was really reparented to PID 1 (a PID 1 that is no shell, or one whose session it is not
in) is still refused with the one clear line.
"""

import os
import shutil
import subprocess

import pytest

from helpers import SESSIONWARD, run_cli

pytestmark = pytest.mark.slow


def _can_unshare_pid() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-fp", "--mount-proc", "true"], capture_output=True).returncode == 0


needs_pidns = pytest.mark.skipif(not _can_unshare_pid(), reason="needs root and unshare -p")


def as_pid1(program: str, script: str) -> subprocess.CompletedProcess:
    """Run `program -s` (a shell reading `script` on stdin) as PID 1 of a new PID namespace."""
    return subprocess.run(["unshare", "-fp", "--mount-proc", program, "-s"], input=script,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, SW=SESSIONWARD))


@needs_pidns
def test_a_pid1_shell_registers_and_holds_the_end_lock(tmp_path):
    run_cli("install", "--seed-paths", check=True)
    work = tmp_path / "work"
    work.mkdir()
    config = os.path.join(os.environ["HOME"], ".claude", "shell-config")
    done = as_pid1("bash", f"""set -euo pipefail
source {config}/end-lock-helpers.sh
source {config}/obsidian-session-helpers.sh
echo "shell $$"
"$SW" register p {work}
"$SW" whoami --shell-pid $$
end_lock_acquire
cat {tmp_path}/state/end.lock
"$SW" lock status end
end_lock_release
obsidian_session_register q {work} >/dev/null
obsidian_session_unregister
""")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "shell 1"
    assert lines[1].startswith("registered session s-") and lines[1].endswith(", owner pid 1 (bash)"), lines[1]
    assert lines[2] == "owner     pid 1 (bash), resolved via shell; kind shell"
    assert lines[5].startswith("acquired lock end (holder pid 1, "), lines[5]
    assert lines[6] == "1"
    assert lines[7].startswith("end: held by pid 1 (bash), ") and lines[7].endswith("; process 1 is running"), lines[7]
    assert lines[8] == "released lock end"
    assert lines[9].startswith("unregistered session ")
    assert done.stderr == ""


# A caller reparented to PID 1: its parent `sh -c` exits at once, so the inner one (a transient
# wrapper, skipped) is adopted by PID 1 before it runs sessionward.
ORPHAN = """{prefix}sh -c 'sh -c "sleep 0.3; \\"\\$SW\\" register p {work} 2>{tmp}/err; echo \\$? >{tmp}/rc" & exit 0'
while [ ! -s {tmp}/rc ]; do sleep 0.05; done
cat {tmp}/rc {tmp}/err
"""


# PID 1 by another name: an init (tini), or a sandbox's supervisor that starts everything in
# its own session (CI's `process_api`), so an orphan it adopted is in its session: no caller.
@needs_pidns
@pytest.mark.parametrize("name", ["tini", "process_api"])
def test_a_caller_reparented_to_a_pid1_that_is_no_shell_is_refused(tmp_path, name):
    pid1 = tmp_path / name  # bash under another name
    pid1.symlink_to(shutil.which("bash"))
    work = tmp_path / "work"
    work.mkdir()
    done = as_pid1(str(pid1), ORPHAN.format(prefix="", work=work, tmp=tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"2\nsessionward: the calling process has exited (reparented to init, pid 1 ({name})); pass --pid\n"
    )


@needs_pidns
def test_a_caller_adopted_by_a_pid1_shell_of_another_session_is_refused(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    done = as_pid1("bash", ORPHAN.format(prefix="setsid ", work=work, tmp=tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "2\nsessionward: the calling process has exited (reparented to init, pid 1 (bash)); pass --pid\n"
    )
