"""The origin's guide, verbatim: its commands typed as written, in a real shell.

The shell reads the guide's lines on stdin (like a terminal), so the shell is the session's
owner, exactly as when a person types them.
"""

import glob
import os
import pwd
import stat
import subprocess

import pytest

from helpers import run_cli

GUIDE = "python3 ~/scripts/obsidian_session_manager.py"


def seed_paths(tmp_path):
    home = tmp_path / "home"
    return [
        home / "scripts" / "obsidian_session_manager.py",
        home / ".claude" / "shell-config" / "end-lock-helpers.sh",
        home / ".claude" / "shell-config" / "obsidian-session-helpers.sh",
    ]


@pytest.fixture
def installed(tmp_path):
    result = run_cli("install", "--seed-paths", check=True)
    assert result.stdout == "".join(f"created {p}\n" for p in seed_paths(tmp_path))
    return seed_paths(tmp_path)[0]


def shell(lines: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-s"], input=lines, capture_output=True, text=True, timeout=60, **kw)


def test_guide_commands_verbatim(installed, tmp_path):
    project_dir = tmp_path / "windsurf"
    project_dir.mkdir()
    result = shell(
        f"{GUIDE} register windsurf-project {project_dir}\n"
        f"{GUIDE} list\n"
        f"{GUIDE} check windsurf-project; echo \"check exit $?\"\n"
        f"{GUIDE} unregister\n"
        f"{GUIDE} list\n"
        "echo \"shell $$\"\n"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    shell_pid = out[-1].split()[1]
    assert out[0].startswith("registered session s-")
    assert f"project windsurf-project, worktree {project_dir}, owner pid {shell_pid} (bash)" in out[0]
    assert out[1].split("\t") == ["ID", "PROJECT", "WORKTREE", "BRANCH", "PID", "KIND", "UP", "SEEN", "WHERE", "ACTIVITY"]
    row = out[2].split("\t")
    assert row[1:6] == ["windsurf-project", str(project_dir), "-", shell_pid, "shell"]
    assert row[8] == "here"
    assert out[3] == f"project windsurf-project, worktree {project_dir}"
    assert out[4] == "no other live session"
    assert out[5] == "check exit 0"
    assert out[6].startswith("unregistered session s-") and f"pid {shell_pid}" in out[6]
    assert out[7] == "no live sessions"
    assert result.stderr == ""


def test_two_terminals_same_project_check_warns(installed, tmp_path, keeper):
    a, b = tmp_path / "wt-a", tmp_path / "wt-b"
    a.mkdir(), b.mkdir()
    run_cli("register", "windsurf-project", str(b), "--pid", str(keeper), check=True)
    result = shell(f"cd {a}\n{GUIDE} register windsurf-project {a} >/dev/null\n{GUIDE} check windsurf-project\necho \"exit $?\"\n")
    lines = result.stdout.splitlines()
    assert lines[1] == "WARNING: 1 session works on this project in another worktree"
    assert f"pid {keeper}" in lines[2] and str(b) in lines[2]
    assert lines[-1] == "exit 1"


def test_orphan_session_troubleshooting(installed, tmp_path):
    """'Session orpheline': list, then unregister <pid>, as the guide says."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        run_cli("register", "windsurf-project", str(tmp_path), "--pid", str(proc.pid), check=True)
        result = shell(f"{GUIDE} list\n{GUIDE} unregister {proc.pid}\n{GUIDE} list\n")
    finally:
        proc.kill()
        proc.wait()
    lines = result.stdout.splitlines()
    assert lines[1].split("\t")[4] == str(proc.pid)
    assert lines[2].startswith("unregistered session") and f"pid {proc.pid}" in lines[2]
    assert lines[3] == "no live sessions"


def test_dead_sessions_cleaned_automatically(installed, tmp_path):
    proc = subprocess.Popen(["sleep", "600"])
    run_cli("register", "gone", str(tmp_path), "--pid", str(proc.pid), check=True)
    proc.kill()
    proc.wait()
    result = shell(f"{GUIDE} list\n")
    assert result.stdout.splitlines() == ["no live sessions"]  # data only: the sweep is a notice, on stderr
    assert result.stderr.splitlines() == [
        f"sessionward: swept dead session {result.stderr.split()[4]} (project gone, pid {proc.pid}): process {proc.pid} is gone",
    ]


def _interpreters() -> list[str]:
    """Every runnable python3 on the machine (system, and pyenv's real binaries, not shims)."""
    home = pwd.getpwuid(os.getuid()).pw_dir
    found = glob.glob(os.path.join(home, ".pyenv", "versions", "3.*", "bin", "python3"))
    found += [p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)]
    return sorted(set(found))


@pytest.mark.parametrize("exe", _interpreters())
def test_runs_with_any_python3_on_the_machine(installed, exe, tmp_path):
    result = subprocess.run([exe, str(installed), "list"], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "no live sessions\n", "")


def test_install_is_idempotent_and_keeps_a_foreign_file(tmp_path):
    script = tmp_path / "home" / "scripts" / "obsidian_session_manager.py"
    script.parent.mkdir(parents=True)
    script.write_text("# my own manager\n")
    first = run_cli("install", "--seed-paths", check=True).stdout.splitlines()
    backups = [p for p in os.listdir(script.parent) if ".bak-" in p]
    assert len(backups) == 1
    assert first[0] == f"replaced {script} (yours kept as {script.parent / backups[0]}; uninstall puts it back)"
    assert first[1:] == [f"created {p}" for p in seed_paths(tmp_path)[1:]]
    assert (script.parent / backups[0]).read_text() == "# my own manager\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert [stat.S_IMODE(p.stat().st_mode) for p in seed_paths(tmp_path)[1:]] == [0o644, 0o644]
    second = run_cli("install", "--seed-paths", check=True).stdout
    assert second == "".join(f"unchanged {p}\n" for p in seed_paths(tmp_path))
    assert len([p for p in os.listdir(script.parent) if ".bak-" in p]) == 1


def test_dry_run_changes_nothing(tmp_path):
    result = run_cli("install", "--seed-paths", "--dry-run", check=True)
    assert result.stdout == "".join(f"would create {p}\n" for p in seed_paths(tmp_path))
    assert not (tmp_path / "home" / "scripts").exists()
    assert not (tmp_path / "home" / ".claude").exists()


def test_script_without_sessionward_says_so(installed, tmp_path):
    orphan = tmp_path / "orphan.py"
    text = installed.read_text()
    import re

    text = re.sub(r'SESSIONWARD = ".*?"', 'SESSIONWARD = "/nonexistent/sessionward"', text)
    text = re.sub(r'PYTHON = ".*?"', 'PYTHON = "/nonexistent/python"', text)
    orphan.write_text(text)
    result = subprocess.run(["python3", str(orphan), "list"], capture_output=True, text=True, env=dict(os.environ, PATH="/usr/bin:/bin"))
    assert result.returncode == 3
    assert result.stderr == (
        "obsidian_session_manager: sessionward is not installed "
        "(install it, then run 'sessionward install --seed-paths')\n"
    )
