"""gitcmd: which git invocations in a Bash command line move HEAD or rewrite the index/tree,
and the directory each acts on. Table-driven: command line -> [(text, directory)]."""

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from sessionward.gitcmd import RISKY_SUBCOMMANDS, risky_git_commands, split_simple_commands

CWD = "/w/repo"
HOME = "/home/tester"


@pytest.fixture(autouse=True)
def _fixed_home(monkeypatch):
    monkeypatch.setenv("HOME", HOME)  # `cd ~` and `cd` resolve against it


def found(command: str, cwd: str = CWD) -> list:
    """The risky commands that act on the whole tree (asked whenever another session shares it)."""
    return [(g.text, g.directory) for g in risky_git_commands(command, cwd) if g.paths is None]


def named(command: str, cwd: str = CWD) -> list:
    """The risky commands that act on named files only: (text, kind, paths)."""
    return [(g.text, g.kind, g.paths) for g in risky_git_commands(command, cwd) if g.paths is not None]


# Each risky subcommand on its own.
@pytest.mark.parametrize("sub", RISKY_SUBCOMMANDS)
def test_each_risky_subcommand_is_found(sub):
    assert [(g.text, g.directory) for g in risky_git_commands(f"git {sub} x", CWD)] == [(f"git {sub} x", CWD)]


def test_the_risky_list_is_the_documented_one():
    assert RISKY_SUBCOMMANDS == (
        "checkout", "switch", "reset", "stash", "rebase", "merge", "pull", "restore", "clean",
        "cherry-pick", "revert", "am", "bisect", "mv", "rm", "sparse-checkout", "filter-branch",
        "filter-repo", "read-tree",
    )


TABLE = [
    # harmless subcommands and forms
    ("git status", []),
    ("git log --oneline -5", []),
    ("git diff HEAD~1", []),
    ("git stash list", []),
    ("git stash show -p stash@{0}", []),
    ("git --no-pager stash list", []),
    ("git commit -m x file.py", []),  # named files: whose they are is the guard's business
    ("git commit -m 'fix all the things' -- a.py b.py", []),
    ("git add a.py && git commit -m wip a.py", []),
    ("git branch -f x", []),
    ("git fetch origin", []),
    ("git config core.x 1", []),
    ("git checkout-index -a", []),  # another subcommand, not checkout; without -f it overwrites nothing
    ("git", []),
    ("git -C sub", []),
    # stash forms that do move work
    ("git stash", [("git stash", CWD)]),
    ("git stash push -m x", [("git stash push -m x", CWD)]),
    ("git stash pop", [("git stash pop", CWD)]),
    ("git stash drop", [("git stash drop", CWD)]),
    # commit: the whole index unless files are named; a value after -m/-F/-C/-c/-t is not a flag
    ("git commit -m x", [("git commit -m x", CWD)]),
    ("git commit -a", [("git commit -a", CWD)]),
    ("git commit -am msg", [("git commit -am msg", CWD)]),
    ("git commit --all -m x", [("git commit --all -m x", CWD)]),
    ("git commit -m x -a", [("git commit -m x -a", CWD)]),
    ("git commit -qam m", [("git commit -qam m", CWD)]),
    ("git commit -ma f", []),  # message "a"
    ("git commit -ca f", []),  # -c takes "a"
    ("git commit -Sa f", []),  # -S<keyid>: key "a"
    ("git commit -m -a f", []),  # message "-a"
    ("git commit --message -a f", []),  # message "-a"
    ("git commit -F -a f", []),  # message file "-a"
    ("git commit -- -a", []),  # a path named -a
    # git's own options before the subcommand
    ("git -C sub stash", [("git stash", "/w/repo/sub")]),
    ("git -C /abs/other checkout x", [("git checkout x", "/abs/other")]),
    ("git -C a -C b reset", [("git reset", "/w/repo/a/b")]),
    ("git -C ~/proj pull", [("git pull", f"{HOME}/proj")]),
    ("git --work-tree=wt reset --hard", [("git reset --hard", "/w/repo/wt")]),
    ("git --work-tree /t clean -fd", [("git clean -fd", "/t")]),
    ("git -c core.pager=cat merge dev", [("git merge dev", CWD)]),
    ("git -c k=v --no-pager pull", [("git pull", CWD)]),
    ("git --git-dir=.git --no-pager rebase main", [("git rebase main", CWD)]),
    ("git --git-dir .git status", []),
    # env prefixes and wrappers
    ("A=1 B=2 git merge x", [("git merge x", CWD)]),
    ("GIT_DIR=x GIT_WORK_TREE=y git checkout z", [("git checkout z", "/w/repo/y")]),
    ("GIT_DIR=/o/.git git checkout z", [("git checkout z", "/o")]),
    ("sudo -u bob git checkout y", [("git checkout y", CWD)]),
    ("sudo git switch y", [("git switch y", CWD)]),
    ("sudo -S git switch y", [("git switch y", CWD)]),  # -S: password on stdin, no value
    ("env -i git clean -fd", [("git clean -fd", CWD)]),
    ("env -i PATH=/bin git clean -fd", [("git clean -fd", CWD)]),
    ("env -u HOME git clean -fd", [("git clean -fd", CWD)]),
    ("command git switch x", [("git switch x", CWD)]),
    ("nice -n 5 git rebase main", [("git rebase main", CWD)]),
    ("nice git rebase main", [("git rebase main", CWD)]),
    ("time git pull", [("git pull", CWD)]),
    ("time -p git pull", [("git pull", CWD)]),  # -p: POSIX format, no value
    ("nohup git pull &", [("git pull", CWD)]),
    ("exec git checkout x", [("git checkout x", CWD)]),
    ("sudo -u bob env A=1 nice -n 2 git reset", [("git reset", CWD)]),
    ("/usr/bin/git checkout x", [("git checkout x", CWD)]),
    ("./git checkout x", [("git checkout x", CWD)]),
    # shell keywords before a command
    ("if git checkout x; then echo ok; fi", [("git checkout x", CWD)]),
    ("if true; then git reset --hard; else git stash; fi",
     [("git reset --hard", CWD), ("git stash", CWD)]),
    ("for b in a b; do git checkout $b; done", [("git checkout $b", CWD)]),
    ("while true; do git pull; done", [("git pull", CWD)]),
    ("! git merge x", [("git merge x", CWD)]),
    ("{ git stash; git pull; }", [("git stash", CWD), ("git pull", CWD)]),
    # chains, pipes, newlines
    ("make && git stash || git reset; git pull | cat\ngit am x",
     [("git stash", CWD), ("git reset", CWD), ("git pull", CWD), ("git am x", CWD)]),
    ("git fetch && git rebase origin/main", [("git rebase origin/main", CWD)]),
    ("git log | head; git status", []),
    ("git stash 2>&1 | tail -1", [("git stash", CWD)]),  # a redirection, not `&` (nor an argument)
    ("git commit -a \\\n  -m msg", [("git commit -a -m msg", CWD)]),  # line continuation
    ("git \\\n  checkout x", [("git checkout x", CWD)]),
    ("git\tcheckout x", [("git checkout x", CWD)]),
    # subshells and command substitutions
    ("(git stash)", [("git stash", CWD)]),
    ("echo $(git stash)", [("git stash", CWD)]),
    ("echo `git reset`", [("git reset", CWD)]),
    ('x="$(git stash)"', [("git stash", CWD)]),  # substitution runs inside double quotes too
    ('echo "stashed: `git stash`"', [("git stash", CWD)]),
    ('echo "$(git log --format="%h" -1) $(git pull)"', [("git pull", CWD)]),
    ("echo '$(git stash)'", []),  # single quotes: literal text
    ('echo "\\$(git stash)"', []),  # escaped: literal text
    # cd moves where later parts run
    ("cd sub && git stash", [("git stash", "/w/repo/sub")]),
    ("cd sub; cd ..; git stash", [("git stash", CWD)]),
    ("cd /elsewhere && git -C x checkout y", [("git checkout y", "/elsewhere/x")]),
    ("cd 'my dir' && git stash", [("git stash", "/w/repo/my dir")]),
    ("cd ~ && git stash", [("git stash", HOME)]),
    ("cd && git stash", [("git stash", HOME)]),
    ("builtin cd sub; git stash", [("git stash", "/w/repo/sub")]),
    ("cd sub && cd - && git stash", [("git stash", CWD)]),  # `cd -` goes back
    ("cd - && git stash", [("git stash", CWD)]),  # no earlier directory known: stays
    ("(cd sub && git stash) && git checkout x", [("git stash", "/w/repo/sub"), ("git checkout x", CWD)]),
    ("echo $(cd sub; pwd) && git stash", [("git stash", CWD)]),
    ("(cd a); (git stash)", [("git stash", CWD)]),
    ("case x in a) cd sub;; esac; git stash", [("git stash", "/w/repo/sub")]),
    # text that only mentions git
    ('echo "git checkout"', []),
    ("echo 'git checkout x'", []),
    ("echo git checkout", []),
    ("grep -r 'git reset' .", []),
    ('git commit -m "then git checkout main" f.py', []),
    ("cat .gitignore", []),
    ("gitk --all", []),
    ("legit checkout", []),
]


@pytest.mark.parametrize("command,expected", TABLE, ids=[c for c, _ in TABLE])
def test_command_lines(command, expected):
    assert found(command) == expected


def test_directory_of_a_relative_cwd_is_joined_and_normalised():
    assert found("git -C ../b//c/. stash", "/w/repo") == [("git stash", "/w/b/c")]


def test_split_simple_commands_removes_quotes_and_splits_on_operators():
    assert split_simple_commands("a 'b c' \"d\\\"e\" && f|g; h\ni") == [
        ["a", "b c", 'd"e'], ["f"], ["g"], ["h"], ["i"],
    ]
    assert split_simple_commands("") == []
    assert split_simple_commands("echo $(git stash) done") == [["git", "stash"], ["echo", "$(git stash)", "done"]]


def test_git_command_repr_and_words():
    (git,) = risky_git_commands("sudo git -C x reset --hard HEAD", "/r")
    assert git.words == ["git", "reset", "--hard", "HEAD"]
    assert repr(git) == "GitCommand('git reset --hard HEAD', '/r/x')"


# -- properties --------------------------------------------------------------------------------


TOKENS = [
    "git", "/usr/bin/git", "checkout", "stash", "list", "commit", "-a", "-m", "-am", "-C", "-c", "--work-tree=",
    "cd", "cd -", "..", "sub", "~", "-", "sudo", "env", "-u", "nice", "-n", "time", "-p", "A=1", "if", "then", "do",
    "(", ")", "$(", "`", '"', "'", "\\", "\\\n", "&&", "||", ";", "|", "&", "2>&1", "\n", " ", " ", "\t", "{", "}", "!",
]
SHELLISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=300), SHELLISH))
def test_never_raises_on_arbitrary_text(command):
    result = risky_git_commands(command, CWD)
    assert type(result) is list
    for git in result:
        assert git.words[0] in ("git", "gh") and git.kind in ("destructive", "sweep")
        assert os.path.isabs(git.directory) and os.path.normpath(git.directory) == git.directory


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000).filter(lambda t: "git" not in t and "gh " not in t))
def test_text_without_git_is_answered_empty_and_fast(command):
    # nor `gh`: `gh co N` checks a branch out (hypothesis found "gh co " once in 300 texts)
    timings = []
    for _ in range(3):  # the best of three: a GC pause or a busy machine is not the code
        started = time.perf_counter()
        assert risky_git_commands(command, CWD) == []
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.0005


def test_text_without_git_is_not_even_parsed(monkeypatch):
    from sessionward import gitcmd

    monkeypatch.setattr(gitcmd, "_tokens", lambda *a: pytest.fail("parsed a line without git"))
    assert risky_git_commands("ls -la && (cd x; make) | tee `date`", CWD) == []
    assert risky_git_commands("echo 'high enough, though' | grep -c gh", CWD) == []  # words ending in gh


def test_deeply_nested_substitutions_do_not_raise():
    command = '"$(' * 3000 + "git stash" + ')"' * 3000
    risky_git_commands(command, CWD)  # no RecursionError
    assert found("(" * 5000 + "git stash" + ")" * 5000) == [("git stash", CWD)]


def test_a_long_line_is_parsed_in_linear_time():
    command = "git status && " * 20000 + "git stash"
    started = time.perf_counter()
    assert found(command) == [("git stash", CWD)]
    assert time.perf_counter() - started < 2.0


def test_importing_gitcmd_imports_neither_re_nor_shlex():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import sessionward.gitcmd as g\n"
        "g.risky_git_commands('cd x && git stash', '/r')\n"
        "print(sorted({'re', 'shlex'} & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


# -- issue 12: the shapes the reader missed, and what it asked needlessly --------------------------

D, S = "destructive", "sweep"
SHAPES = [
    # sweeps
    ("git add -A && git commit -m x", [("git add -A", CWD, S), ("git commit -m x", CWD, S)]),
    ("git add .", [("git add .", CWD, S)]),
    ("git add -u", [("git add -u", CWD, S)]),
    ("git add ':/'", [("git add :/", CWD, S)]),
    ("git add 'src/*.py'", [("git add src/*.py", CWD, S)]),
    ("git add dir/", [("git add dir/", CWD, S)]),
    ("git commit --amend --no-edit", [("git commit --amend --no-edit", CWD, S)]),
    ("git commit -m x .", [("git commit -m x .", CWD, S)]),
    ("git commit -i a.py -m x", [("git commit -i a.py -m x", CWD, S)]),
    ("git ls-files -m | xargs git add", [("git add", CWD, S)]),
    # wrappers
    ("timeout 60 git pull", [("git pull", CWD, D)]),
    ("timeout -s KILL --kill-after=5 30 git stash", [("git stash", CWD, D)]),
    ("git diff --name-only | xargs git checkout --", [("git checkout --", CWD, D)]),
    ("git ls-files -m | xargs -I{} git checkout -- {}", [("git checkout -- {}", CWD, D)]),
    ("bash -c 'git checkout dev'", [("git checkout dev", CWD, D)]),
    ('sh -c "cd sub && git stash"', [("git stash", "/w/repo/sub", D)]),
    ("bash -lc 'git reset --hard'", [("git reset --hard", CWD, D)]),
    ("stdbuf -oL git pull", [("git pull", CWD, D)]),
    ("ionice -c 2 -n 7 git stash", [("git stash", CWD, D)]),
    ("nice -10 git checkout dev", [("git checkout dev", CWD, D)]),
    ("watch -n 1 git stash", [("git stash", CWD, D)]),
    ("doas -u root git stash", [("git stash", CWD, D)]),
    ("eval 'git checkout dev'", [("git checkout dev", CWD, D)]),
    ("undo() { git reset --hard; }; undo", [("git reset --hard", CWD, D)]),
    ("function sw { git checkout \"$1\"; }; sw dev", [("git checkout $1", CWD, D)]),
    ("bash <<'EOF'\ngit checkout dev\nEOF", [("git checkout dev", CWD, D)]),
    # subcommands
    ("git bisect start HEAD HEAD~2", [("git bisect start HEAD HEAD~2", CWD, D)]),
    ("git sparse-checkout set docs", [("git sparse-checkout set docs", CWD, D)]),
    ("git filter-branch --tree-filter true HEAD", [("git filter-branch --tree-filter true HEAD", CWD, D)]),
    ("git worktree remove ../wt", [("git worktree remove ../wt", "/w/wt", D)]),
    ("git submodule update --init", [("git submodule update --init", CWD, D)]),
    ("git read-tree -um HEAD dev", [("git read-tree -um HEAD dev", CWD, D)]),
    ("git update-ref HEAD HEAD~1", [("git update-ref HEAD HEAD~1", CWD, D)]),
    ("git symbolic-ref HEAD refs/heads/dev", [("git symbolic-ref HEAD refs/heads/dev", CWD, D)]),
    ("git checkout-index -a -f", [("git checkout-index -a -f", CWD, D)]),
    # other programs that move git
    ("gh pr checkout 7", [("gh pr checkout 7", CWD, D)]),
    ("gh co 7", [("gh co 7", CWD, D)]),
    ("gh pr merge 7 --squash --delete-branch", [("gh pr merge 7 --squash --delete-branch", CWD, D)]),
    # where the command acts
    ('cd "$(git rev-parse --show-toplevel)" && git stash', [("git stash", CWD, D)]),
    ("cd $(git rev-parse --show-toplevel) && git stash", [("git stash", CWD, D)]),
    ("GIT_DIR=../o/.git GIT_WORK_TREE=../o git reset --hard", [("git reset --hard", "/w/o", D)]),
    ("export GIT_WORK_TREE=/t; git reset --hard", [("git reset --hard", "/t", D)]),
    ("(export GIT_WORK_TREE=/t); git reset --hard", [("git reset --hard", CWD, D)]),
    ("git --git-dir=/o/.git checkout x", [("git checkout x", "/o", D)]),
    ("pushd /o && git stash && popd && git pull", [("git stash", "/o", D), ("git pull", CWD, D)]),
    # not risky: dry runs, help, text that is not run
    ("git clean -n", []), ("git clean -ndx", []), ("git commit --dry-run -a", []), ("git add -n .", []),
    ("git rm -r -n --cached lib", []), ("git checkout -h", []), ("git reset --help", []),
    ("git stash -h", []), ("git bisect log", []), ("git sparse-checkout list", []),
    ("git update-index --refresh", []), ("git apply --check p.diff", []), ("command -v git", []),
    ("git commit -m \"$(cat <<'EOF'\nFix (part 1)\n\ngit checkout main; git reset --hard\n2) more\nEOF\n)\" a.py", []),
    ("cat > s.sh <<'EOF'\ngit reset --hard\nEOF", []),
    ("cat <<-EOF > s.txt\n\tgit stash\n\tEOF\nls", []),
    ("gh pr create --title t --body \"$(cat <<'EOF'\n- git checkout dev (1)\nEOF\n)\"", []),
    ("gh pr create --body 'git reset --hard'", []),
    ("# git reset --hard\nls", []),
    ("ls # git checkout x", []),
    ("gh pr view 7", []),
    ("gh pr merge 7 --squash", []),
    ("git log > /tmp/x", []),
]


@pytest.mark.parametrize("command,expected", SHAPES, ids=[c for c, _ in SHAPES])
def test_issue_12_shapes(command, expected):
    assert [(g.text, g.directory, g.kind) for g in risky_git_commands(command, CWD) if g.paths is None] == expected


NAMED = [
    ("git checkout -- a.py b.py", [("git checkout -- a.py b.py", D, ["/w/repo/a.py", "/w/repo/b.py"])]),
    ("git checkout main -- a.py", [("git checkout main -- a.py", D, ["/w/repo/a.py"])]),
    ("git restore --source=HEAD~1 gone.py", [("git restore --source=HEAD~1 gone.py", D, ["/w/repo/gone.py"])]),
    ("git restore -s HEAD~1 a.py", [("git restore -s HEAD~1 a.py", D, ["/w/repo/a.py"])]),
    ("git reset -q HEAD -- a.py", [("git reset -q HEAD -- a.py", D, ["/w/repo/a.py"])]),
    ("git rm --cached a.py", [("git rm --cached a.py", D, ["/w/repo/a.py"])]),
    ("cd sub && git add a.py && git commit -m 'x -a' a.py",
     [("git add a.py", S, ["/w/repo/sub/a.py"]), ("git commit -m x -a a.py", S, ["/w/repo/sub/a.py"])]),
    ("git commit -qm x -- a.py", [("git commit -qm x -- a.py", S, ["/w/repo/a.py"])]),
    # not named files only: a switch, a mode, everything, a broad pathspec
    ("git checkout dev", []), ("git checkout -b x a.py", []), ("git reset --hard HEAD a.py", []),
    ("git reset HEAD~1", []), ("git commit -am x a.py", []), ("git commit --amend a.py", []),
    ("git restore .", []), ("git rm -r --cached 'lib/*'", []), ("xargs git checkout --", []),
]


@pytest.mark.parametrize("command,expected", NAMED, ids=[c for c, _ in NAMED])
def test_commands_on_named_files_carry_them(command, expected):
    assert named(command) == expected


def test_a_heredoc_after_the_body_is_read_again():
    command = "cat > notes.txt <<'EOF'\ngit reset --hard\nEOF\ngit stash"
    assert found(command) == [("git stash", CWD)]


def test_a_shift_is_not_a_heredoc():
    assert found("echo $((1<<2))\ngit stash") == [("git stash", CWD)]


def test_an_unterminated_heredoc_hides_the_rest_as_bash_does():
    assert found("cat <<EOF\ngit reset --hard") == []


def test_a_heredoc_message_is_shown_on_one_line():
    (git,) = risky_git_commands("git commit -m \"$(cat <<'EOF'\nFix it\n\n- more\nEOF\n)\"", CWD)
    assert git.text == "git commit -m $(cat <<'EOF' Fix it - more EOF )"


@pytest.mark.parametrize("command,scope", [
    ("git add -A", ("all", [], False)),
    ("git add .", ("all", ["."], False)),
    ("git add -u src", ("tracked", ["src"], False)),
    ("git stage --update", ("tracked", [], False)),
    ("git add -- 'src/*.py'", ("all", ["src/*.py"], False)),
    ("git commit -m 'a -a b'", ("staged", [], False)),
    ("git commit -am x", ("staged+tracked", [], False)),
    ("git commit -vam x --amend", ("staged+tracked", [], True)),
    ("git commit --amend --no-edit", ("staged", [], True)),
    ("git commit -m x -- .", ("tracked", ["."], False)),
    ("git commit -um x", ("staged", [], False)),  # commit's -u is --untracked-files
    ("git ls-files -m | xargs git add", None),
    ("git add --pathspec-from-file=list", None),
    ("git commit -i -m x f", None),
])
def test_a_sweep_says_what_it_takes(command, scope):
    (git,) = risky_git_commands(command, CWD)
    found = git.scope and (git.scope.changes, git.scope.pathspecs, git.scope.amend)
    assert found == scope
