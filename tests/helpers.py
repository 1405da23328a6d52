"""Helpers shared by the tests (importable as `helpers`: pytest puts tests/ on sys.path)."""

import json
import os
import shutil
import subprocess
import sys

VENV_BIN = os.path.dirname(sys.executable)
SESSIONWARD = os.path.join(VENV_BIN, "sessionward")


def run_cli(*args, cwd=None, env=None, input=None, check=False):
    """Run the real `sessionward` launcher as a process; return the CompletedProcess."""
    result = subprocess.run(
        [SESSIONWARD, *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sessionward {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


def cli_json(*args, **kwargs) -> dict:
    result = run_cli(*args, "--json", **kwargs)
    return json.loads(result.stdout)


def make_git_repo(path, branch="main"):
    """A repository with one commit at `path`; returns path."""
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    path.mkdir(parents=True, exist_ok=True)
    git = shutil.which("git")
    subprocess.run([git, "init", "-q", "-b", branch], cwd=path, check=True, env=env)
    (path / "README").write_text("x\n")
    subprocess.run([git, "add", "README"], cwd=path, check=True, env=env)
    subprocess.run([git, "commit", "-q", "-m", "init"], cwd=path, check=True, env=env)
    return path


def git(path, *args):
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def hold_flock(path, then: str = "") -> subprocess.Popen:
    """Another process holding an exclusive flock on `path` (a file, created if missing, or a
    directory) until killed;
    `then` is Python run while it holds (e.g. to release it on its own)."""
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"path = {str(path)!r}\n"
         "fd = os.open(path, os.O_RDONLY if os.path.isdir(path) else os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\n" + then + "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc
