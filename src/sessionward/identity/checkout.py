"""The checkout a directory belongs to: project, worktree, branch.

Read from git's own files instead of running `git rev-parse` (a process spawn costs more than
the whole hook budget):
  worktree  the nearest ancestor holding `.git` (a directory, or a file `gitdir: ...` for
            linked worktrees and submodules); outside git, the directory itself
  project   all worktrees of one repository share `git rev-parse --git-common-dir` (the
            `commondir` file of a linked worktree's gitdir points to it); the project is
            named after the main worktree's directory; outside git, after the directory
  branch    from the worktree's HEAD: `ref: refs/heads/NAME` -> NAME; a detached HEAD ->
            "(detached abc1234)"
branch_now(worktree, recorded): the branch checked out in a recorded worktree now. Sessions
store the branch they had when they registered; a `git checkout` in a shared worktree
changes it for every session there, so what people read is taken from HEAD when shown.
"""

import os


class Checkout:
    __slots__ = ("worktree", "project", "project_key", "branch", "in_git", "gitdir")

    def __init__(self, worktree: str, project: str, project_key: str, branch: str | None, in_git: bool,
                 gitdir: str | None = None) -> None:
        self.worktree = worktree
        self.project = project
        self.project_key = project_key
        self.branch = branch
        self.in_git = in_git
        self.gitdir = gitdir  # the worktree's own git directory (its HEAD is there); None outside git

    def __repr__(self) -> str:
        return f"Checkout(project={self.project!r}, worktree={self.worktree!r}, branch={self.branch!r})"


def describe_checkout(cwd: str) -> Checkout:
    """Describe the checkout holding `cwd` (an absolute path; it need not be canonical)."""
    start = os.path.realpath(cwd)
    directory = start
    while True:
        dotgit = os.path.join(directory, ".git")
        gitdir = _gitdir_of(dotgit, directory)
        if gitdir is not None:
            common = _common_dir(gitdir)
            return Checkout(
                worktree=directory,
                project=_project_name(common, directory),
                project_key="git:" + common,
                branch=_branch(gitdir),
                in_git=True,
                gitdir=gitdir,
            )
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    name = os.path.basename(start) or start
    return Checkout(worktree=start, project=name, project_key="dir:" + start, branch=None, in_git=False)


def branch_now(worktree, recorded: str | None = None) -> str | None:
    """The branch checked out in `worktree` now, from its HEAD (a stat and one or two small
    reads; no git process: this runs in hooks). `recorded` when the worktree cannot be read
    from here (a path of another machine or container, a worktree since removed)."""
    if not isinstance(worktree, str) or not os.path.isabs(worktree):
        return recorded
    gitdir = _gitdir_of(os.path.join(worktree, ".git"), worktree)
    if gitdir is None:
        return recorded
    return _branch(gitdir) or recorded


def _gitdir_of(dotgit: str, worktree: str) -> str | None:
    if os.path.isdir(dotgit):
        return dotgit
    if not os.path.isfile(dotgit):
        return None
    try:
        with open(dotgit, encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    target = first[len("gitdir:") :].strip()
    return os.path.realpath(os.path.join(worktree, target))


def _common_dir(gitdir: str) -> str:
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8", errors="replace") as f:
            relative = f.readline().strip()
    except OSError:
        return os.path.realpath(gitdir)
    return os.path.realpath(os.path.join(gitdir, relative))


def _project_name(common: str, worktree: str) -> str:
    base = os.path.basename(common)
    if base == ".git":
        return os.path.basename(os.path.dirname(common)) or common
    if os.path.basename(os.path.dirname(common)) == "modules":
        return os.path.basename(worktree)  # a submodule: its own checkout names it
    return base[:-4] if base.endswith(".git") and len(base) > 4 else base


def _branch(gitdir: str) -> str | None:
    try:
        with open(os.path.join(gitdir, "HEAD"), encoding="utf-8", errors="replace") as f:
            head = f.readline().strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        return ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
    return f"(detached {head[:7]})" if head else None
