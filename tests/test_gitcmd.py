"""gitcmd: which git invocations in a Bash command line move HEAD or rewrite the index/tree,
and the directory each acts on. Table-driven: command line -> [(text, directory)]."""

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.gitcmd import RISKY_SUBCOMMANDS, risky_git_commands, split_simple_commands

CWD = "/w/repo"
HOME = "/home/tester"


@pytest.fixture(autouse=True)
def _fixed_home(monkeypatch):
    monkeypatch.setenv("HOME", HOME)  # `cd ~` and `cd` resolve against it


def found(command: str, cwd: str = CWD) -> list:
    return [(g.text, g.directory) for g in risky_git_commands(command, cwd)]


# Each risky subcommand on its own.
@pytest.mark.parametrize("sub", RISKY_SUBCOMMANDS)
def test_each_risky_subcommand_is_found(sub):
    assert found(f"git {sub} x") == [(f"git {sub} x", CWD)]


def test_the_risky_list_is_the_documented_one():
    assert RISKY_SUBCOMMANDS == (
        "checkout", "switch", "reset", "stash", "rebase", "merge", "pull", "restore", "clean",
        "cherry-pick", "revert", "am",
    )


TABLE = [
    # harmless subcommands and forms
    ("git status", []),
    ("git log --oneline -5", []),
    ("git diff HEAD~1", []),
    ("git stash list", []),
    ("git stash show -p stash@{0}", []),
    ("git --no-pager stash list", []),
    ("git commit -m x", []),
    ("git commit -m 'fix all the things'", []),
    ("git add -A && git commit -m wip", []),
    ("git branch -f x", []),
    ("git fetch origin", []),
    ("git config core.x 1", []),
    ("git checkout-index -a", []),  # another subcommand, not checkout
    ("git", []),
    ("git -C sub", []),
    # stash forms that do move work
    ("git stash", [("git stash", CWD)]),
    ("git stash push -m x", [("git stash push -m x", CWD)]),
    ("git stash pop", [("git stash pop", CWD)]),
    ("git stash drop", [("git stash drop", CWD)]),
    # commit: only with -a / --all; a value after -m/-F/-C/-c/-t is not a flag
    ("git commit -a", [("git commit -a", CWD)]),
    ("git commit -am msg", [("git commit -am msg", CWD)]),
    ("git commit --all -m x", [("git commit --all -m x", CWD)]),
    ("git commit -m x -a", [("git commit -m x -a", CWD)]),
    ("git commit -qam m", [("git commit -qam m", CWD)]),
    ("git commit -ma", []),  # message "a"
    ("git commit -ca", []),  # -c takes "a"
    ("git commit -Sa", []),  # -S<keyid>: key "a"
    ("git commit -m -a", []),  # message "-a"
    ("git commit --message -a", []),  # message "-a"
    ("git commit -F -a", []),  # message file "-a"
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
    ("GIT_DIR=x GIT_WORK_TREE=y git checkout z", [("git checkout z", CWD)]),
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
    ("git stash 2>&1 | tail -1", [("git stash 2>&1", CWD)]),  # a redirection, not `&`
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
    ('git commit -m "then git checkout main"', []),
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
    assert split_simple_commands("echo $(git stash) done") == [["echo"], ["git", "stash"], ["done"]]


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
        assert git.words[0] == "git" and git.words[1] in RISKY_SUBCOMMANDS + ("commit",)
        assert os.path.isabs(git.directory) and os.path.normpath(git.directory) == git.directory


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000).filter(lambda t: "git" not in t))
def test_text_without_git_is_answered_empty_and_fast(command):
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
