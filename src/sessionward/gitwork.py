"""What git says is changed in a worktree, for the git guard (sessionward.guards).

changed_files(directory, toplevel, pathspecs, untracked) -> [(path, X, Y)] or None:
  `git status --porcelain` of the worktree holding `directory`, limited to `pathspecs` (as
  written, relative to `directory`; empty: the whole tree), untracked files included only when
  asked; each path absolute (joined to `toplevel`), X and Y the index and working-tree columns
  of `git status --short`. None when git cannot tell (not a repository, git missing, slower
  than GIT_TIMEOUT_S): the guard then asks as if everything were at stake.
head_commit(directory) -> (committer time, subject) of the commit at HEAD, or None.

It runs `git --no-optional-locks`: a status must not take index.lock, which would make the
other session's own git commands fail while it runs. Imported only when a guard needs git
(never for a command that needs no git process: the hook path stays light).
"""

import os
import subprocess

GIT_TIMEOUT_S = 3.0
# What would point git at another repository or index than the one `directory` is in (a hook
# started from inside a git hook, say, inherits them).
_REPOSITORY_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                   "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX")


def _git(directory: str, args: list):
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_ENV}
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", directory, *args], capture_output=True,
            stdin=subprocess.DEVNULL, timeout=GIT_TIMEOUT_S, env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def changed_files(directory: str, toplevel: str, pathspecs: list, untracked: bool):
    args = ["status", "--porcelain", "-z", "--no-renames", "--untracked-files=" + ("all" if untracked else "no")]
    out = _git(directory, args + ["--", *pathspecs] if pathspecs else args)
    if out is None:
        return None
    found = []
    for entry in out.split(b"\0"):
        if len(entry) > 3:  # "XY path", the path relative to the top of the worktree
            found.append((os.path.join(toplevel, os.fsdecode(entry[3:])), chr(entry[0]), chr(entry[1])))
    return found


def head_commit(directory: str):
    out = _git(directory, ["log", "-1", "--format=%ct%n%s", "HEAD"])
    if not out:
        return None
    when, _, subject = out.decode(errors="replace").partition("\n")
    try:
        return float(when), subject.strip()
    except ValueError:
        return None
