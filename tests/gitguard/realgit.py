"""Run a shell command for real in a scratch repository that a second session shares, and say
what it did to that second session: "destructive", "sweep" or "harmless".

The scratch layout (built once per scenario, copied for every command):
    base/work        the shared checkout, on `main`, upstream origin/main; the command runs here
    base/origin.git  a bare remote one commit ahead on main, with branches feature, pr-7
    base/other       an unrelated repository (for `git -C ../other ...`)
    base/bin         stubs on PATH: `gh` (pr checkout N: fetch pr-N and switch to it; pr merge N
                     --delete-branch: switch back to main if on pr-N, delete pr-N, pull; anything
                     else: no-op), `sudo`/`doas` (run the rest), `watch` (run the command once)
This session's own files are MINE (src/app.py modified, tests/test_app.py new). The second
session's are THEIRS; its work is in one of three states (SCENARIOS), and a command's label
is the worst effect over the three, because git refuses some commands in some states (a merge
with a dirty index, a rebase with unstaged changes) that it runs in others:
    staged      src/util.py staged, lib/theirs.py unstaged, lib/new_theirs.py untracked
    unstaged    src/util.py and lib/theirs.py unstaged, lib/new_theirs.py untracked
    committed   its work is the commit at HEAD, lib/new_theirs.py untracked (and this
                session's only change is its untracked file)
It also has a stash entry in every state.

From the second session's side, after the command:
    destructive  HEAD's branch changed, or HEAD moved other than by one new commit on top
                 (reset, checkout, merge, pull, bisect, rebase); or its stash list changed; or
                 a file it changed, or any tracked file not MINE, changed or vanished in the
                 working tree; or its index entry changed other than to its own work
    sweep        a new commit on top (or an amended HEAD) carries its changes, or the commit
                 it made was rewritten (--amend), or its work was staged by this command
    harmless     none of that
"""

import os
import shutil
import subprocess
import tempfile

MINE = ("src/app.py", "tests/test_app.py")
THEIRS = ("src/util.py", "lib/theirs.py", "lib/new_theirs.py")
SCENARIOS = ("staged", "unstaged", "committed")
_RANK = {"harmless": 0, "sweep": 1, "destructive": 2}
_TIMEOUT_S = 20

_GH = r"""#!/bin/sh
# a stub of GitHub's CLI, local: what `gh pr checkout N` and `gh pr merge N -d` do to the checkout
[ "$1" = pr ] || exit 0
case "$2" in
checkout)
    git fetch -q origin "pr-$3" && git checkout -q -B "pr-$3" FETCH_HEAD ;;
merge)
    n=$3; shift 3
    for a in "$@"; do
        case "$a" in -d|--delete-branch)
            if [ "$(git symbolic-ref --short HEAD)" = "pr-$n" ]; then
                git checkout -q main && git pull -q --ff-only
            fi
            git branch -q -D "pr-$n" 2>/dev/null ;;
        esac
    done ;;
esac
exit 0
"""
_RUN_REST = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -u|-g|-C) shift 2 ;; -*) shift ;; *) break ;; esac; done
exec "$@"
"""
_WATCH = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -n|-d|--interval) shift 2 ;; -*) shift ;; *) break ;; esac; done
exec sh -c "$*"
"""


# the system's PATH, not the test run's: nothing another test put on PATH reaches these runs
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def git_env(home: str, bin_dir: str) -> dict:
    env = {
        "PATH": bin_dir + os.pathsep + _SYSTEM_PATH,
        "HOME": home, "LANG": "C", "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true", "GIT_PAGER": "cat", "PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0", "EDITOR": "true",
    }
    return env


def _git(cwd, env, *args) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:  # git's own words: a CalledProcessError would not show them
        raise AssertionError(f"git {' '.join(args)} in {cwd}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def build_scenario(base: str, scenario: str) -> str:
    """base/{work,origin.git,other,bin,home} for `scenario`; returns base/work."""
    home = os.path.join(base, "home")
    bin_dir = os.path.join(base, "bin")
    os.makedirs(home)
    os.makedirs(bin_dir)
    for name, text in (("gh", _GH), ("sudo", _RUN_REST), ("doas", _RUN_REST), ("watch", _WATCH)):
        _write(bin_dir, name, text)
        os.chmod(os.path.join(bin_dir, name), 0o755)
    env = git_env(home, bin_dir)
    work = os.path.join(base, "work")
    origin = os.path.join(base, "origin.git")
    other = os.path.join(base, "other")
    for repo in (work, other):
        os.makedirs(repo)
        _git(repo, env, "init", "-q", "-b", "main")
    _write(other, "README.md", "other\n")
    _git(other, env, "add", "-A")
    _git(other, env, "commit", "-q", "-m", "other")
    files = {
        "README.md": "# project\n", "docs/notes.md": "notes\n", ".gitignore": "build/\n*.log\n",
        "src/app.py": "app = 1\n", "src/util.py": "util = 1\n", "lib/theirs.py": "theirs = 1\n",
        "Makefile": "all:\n\ttrue\n",
    }
    for path, text in files.items():
        _write(work, path, text)
    _git(work, env, "add", "-A")
    _git(work, env, "commit", "-q", "-m", "init")
    _write(work, "docs/notes.md", "notes\nmore\n")
    _git(work, env, "commit", "-q", "-am", "notes")
    _git(work, env, "tag", "v1.0")
    _git(work, env, "branch", "dev")
    _git(work, env, "checkout", "-q", "-b", "feature")
    _write(work, "README.md", "# project\nfeature\n")
    _git(work, env, "commit", "-q", "-am", "feature")
    _git(work, env, "checkout", "-q", "main")
    _write(work, "docs/notes.md", "notes\nmore\nmain\n")
    _git(work, env, "commit", "-q", "-am", "main work")
    _git(work, env, "init", "-q", "--bare", "-b", "main", origin)
    _git(work, env, "remote", "add", "origin", origin)
    _git(work, env, "push", "-q", "-u", "origin", "main", "feature")
    # the remote moves on: one commit ahead on main, and a PR branch
    _git(work, env, "checkout", "-q", "-b", "pr-7")
    _write(work, "docs/pr.md", "pr 7\n")
    _git(work, env, "add", "docs/pr.md")
    _git(work, env, "commit", "-q", "-m", "pr 7")
    _git(work, env, "push", "-q", "origin", "pr-7")
    _git(work, env, "checkout", "-q", "main")
    _git(work, env, "branch", "-q", "-D", "pr-7")
    _git(work, env, "checkout", "-q", "-b", "ahead")
    _write(work, "Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")
    _git(work, env, "commit", "-q", "-am", "upstream work")
    _git(work, env, "push", "-q", "origin", "ahead:main")
    _git(work, env, "checkout", "-q", "dev")  # `git checkout -` goes back to dev
    _git(work, env, "checkout", "-q", "main")
    _git(work, env, "branch", "-q", "-D", "ahead")
    _git(work, env, "fetch", "-q", "origin")
    # the second session's stash entry
    _write(work, "docs/notes.md", "notes\nmore\nmain\nstashed by them\n")
    _git(work, env, "stash", "push", "-q", "-m", "theirs")
    # the second session's work
    _write(work, "src/util.py", "util = 2  # theirs\n")
    _write(work, "lib/theirs.py", "theirs = 2  # theirs\n")
    if scenario == "staged":
        _git(work, env, "add", "src/util.py")
    elif scenario == "committed":
        _git(work, env, "commit", "-q", "-am", "their work")
    _write(work, "lib/new_theirs.py", "new = 1  # theirs\n")
    # this session's own work (in "committed", untracked only, so that git rebases)
    if scenario != "committed":
        _write(work, "src/app.py", "app = 2  # mine\n")
    _write(work, "tests/test_app.py", "def test(): pass\n")
    return work


class Snapshot:
    """What the second session sees: HEAD, its index entries, the working files, its stash."""

    __slots__ = ("branch", "head", "parents", "index", "files", "stash", "tracked", "tree")

    def __init__(self, work: str, env: dict) -> None:
        out = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=work, env=env, capture_output=True, text=True)
        self.branch = out.stdout.strip()
        self.head = _git(work, env, "rev-parse", "HEAD").strip()
        self.parents = _git(work, env, "rev-parse", "HEAD^@").split()
        stage = {}
        for line in _git(work, env, "ls-files", "-s", "-z").split("\0"):
            if line:
                info, path = line.split("\t", 1)
                stage[path] = info
        self.tracked = sorted(stage)
        self.index = {path: stage.get(path) for path in THEIRS}
        self.files = {}
        for path in set(self.tracked) | set(THEIRS):
            full = os.path.join(work, path)
            try:
                with open(full, "rb") as f:
                    self.files[path] = f.read()
            except OSError:
                self.files[path] = None
        out = subprocess.run(["git", "rev-list", "--walk-reflogs", "refs/stash"], cwd=work, env=env,
                             capture_output=True, text=True)
        self.stash = out.stdout.split()
        self.tree = dict(
            line.split("\t", 1)[::-1] for line in _git(work, env, "ls-tree", "-r", "-z", "HEAD").split("\0") if line
        )


def _blob(work, env, data) -> str:
    return subprocess.run(["git", "hash-object", "--stdin"], cwd=work, env=env, input=data, capture_output=True,
                          check=True).stdout.decode().strip()


def classify(before: Snapshot, after: Snapshot, work: str, env: dict) -> tuple:
    """(label, why) from the second session's side."""
    if after.branch != before.branch:
        return "destructive", f"HEAD switched from {before.branch or 'detached'} to {after.branch or 'detached'}"
    if after.stash != before.stash:
        return "destructive", "its stash list changed"
    for path, data in before.files.items():
        if path not in MINE and after.files.get(path) != data:
            return "destructive", f"{path} changed in the working tree"
    committed_on_top = after.head != before.head and after.parents == [before.head]
    amended = after.head != before.head and after.parents == before.parents and not committed_on_top
    if after.head != before.head and not committed_on_top and not amended:
        return "destructive", "HEAD moved"
    staged = False
    for path in THEIRS:
        was, now = before.index[path], after.index[path]
        if was == now:
            continue
        if now is not None and before.files[path] is not None and now.split()[1] == _blob(work, env, before.files[path]):
            staged = True  # its own work, staged (or committed below) by this command
            continue
        if committed_on_top or amended:
            continue  # the index follows the new commit, checked below
        return "destructive", f"its index entry for {path} changed"
    if amended:
        return "sweep", "HEAD (possibly its commit) was rewritten by --amend"
    if committed_on_top:
        for path in THEIRS:
            if after.tree.get(path) != before.tree.get(path):
                return "sweep", f"the new commit carries its {path}"
    if staged:
        return "sweep", "its work was staged"
    return "harmless", ""


class RealGit:
    """Scenario templates built once; run(command, subdir) -> (label, why) over all scenarios."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="sessionward-realgit-")
        self.templates = {}
        self.before = {}
        try:
            for scenario in SCENARIOS:
                base = os.path.join(self.root, "template-" + scenario)
                work = build_scenario(base, scenario)
                self.templates[scenario] = base
                self.before[scenario] = Snapshot(work, self._env(base))
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)  # nobody calls close() on a harness never made
            raise
        self.count = 0
        self.remotes = {scenario: self._remote_refs(base) for scenario, base in self.templates.items()}

    def _remote_refs(self, base: str) -> str:
        return _git(os.path.join(base, "origin.git"), self._env(base), "for-each-ref")

    def templates_changed(self) -> list:
        """What the runs changed in the templates (nothing, unless a run reached outside its copy:
        a later run would then start from another state, as a leaked force push once did)."""
        changed = []
        for scenario, base in self.templates.items():
            now = Snapshot(os.path.join(base, "work"), self._env(base))
            then = self.before[scenario]
            changed += [f"{scenario}: {name}" for name in Snapshot.__slots__ if getattr(now, name) != getattr(then, name)]
            if self._remote_refs(base) != self.remotes[scenario]:
                changed.append(f"{scenario}: the bare remote's refs")
        return changed

    def _env(self, base: str) -> dict:
        return git_env(os.path.join(base, "home"), os.path.join(base, "bin"))

    def run_one(self, scenario: str, command: str, subdir: str = "") -> tuple:
        self.count += 1
        base = os.path.join(self.root, f"run-{self.count}")
        shutil.copytree(self.templates[scenario], base, symlinks=True)
        try:
            env = self._env(base)
            work = os.path.join(base, "work")
            cwd = os.path.join(work, subdir) if subdir else work
            # a copied index's stat data is stale, and plumbing (read-tree, reset --keep) would
            # take every file for changed: refresh it, as any porcelain command would have
            subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=work, env=env, capture_output=True)
            # and its remote is this copy's own: a push must not change what later runs fetch
            _git(work, env, "remote", "set-url", "origin", os.path.join(base, "origin.git"))
            subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=_TIMEOUT_S,
                           start_new_session=True)
            return classify(self.before[scenario], Snapshot(work, env), work, env)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def run(self, command: str, subdir: str = "") -> tuple:
        worst = ("harmless", "")
        for scenario in SCENARIOS:
            label, why = self.run_one(scenario, command, subdir)
            if _RANK[label] > _RANK[worst[0]]:
                worst = (label, f"{scenario}: {why}")
        return worst

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
