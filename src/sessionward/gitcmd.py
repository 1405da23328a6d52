"""Which git commands in a shell command line move HEAD or rewrite the index or the tree.

risky_git_commands(command, cwd) -> [GitCommand]: every git invocation in `command` that
changes what another session in the same worktree sees: checkout, switch, reset, stash
(not `stash list|show`), rebase, merge, pull, restore, clean, cherry-pick, revert, am, and
commit with -a/--all. Found behind env prefixes (`GIT_DIR=x git ...`), wrappers (sudo, env,
command, exec, time, nohup, nice), `git -C DIR` / `--work-tree`, in `&&`/`||`/`;`/`|` chains,
subshells and command substitutions; `cd DIR` earlier in the line moves where later parts
run.

It is a reader of intent, not a shell: variables, aliases and `eval` are not expanded, so
`$GIT checkout` slips through (the guard is advice to a cooperative agent, not a sandbox).
No `re`, no `shlex`: this runs before every Bash call, and importing those costs more than
the whole check.
"""

import os

RISKY_SUBCOMMANDS = (
    "checkout", "switch", "reset", "stash", "rebase", "merge", "pull", "restore", "clean",
    "cherry-pick", "revert", "am",
)
_HARMLESS_STASH = ("list", "show")
_WRAPPERS = ("sudo", "command", "exec", "time", "nohup", "nice", "builtin", "env")
_WRAPPER_OPTS_WITH_VALUE = ("-u", "-g", "-h", "-p", "-U", "-C", "-D", "-r", "-t", "-n", "-S", "-a")
# git's global options that take a separate value.
_GIT_OPTS_WITH_VALUE = ("-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--exec-path")
# `git commit` short options whose value follows (so an `a` after them is not --all).
_COMMIT_SHORT_WITH_VALUE = "mFCctS"
_SEPARATORS = (";", "&", "|", "\n", "(", ")", "`")


class GitCommand:
    """One risky git invocation: its words from `git` on, and the directory it acts on."""

    __slots__ = ("words", "directory")

    def __init__(self, words: list, directory: str) -> None:
        self.words = words
        self.directory = directory

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def __repr__(self) -> str:
        return f"GitCommand({self.text!r}, {self.directory!r})"


def risky_git_commands(command: str, cwd: str) -> list:
    if "git" not in command:  # the common case, answered without parsing
        return []
    found = []
    here = cwd
    for words in split_simple_commands(command):
        words = _strip_prefixes(words)
        if not words:
            continue
        if words[0] == "cd" and len(words) <= 2:
            target = words[1] if len(words) == 2 else os.path.expanduser("~")
            if target != "-":
                here = os.path.normpath(os.path.join(here, os.path.expanduser(target)))
            continue
        if os.path.basename(words[0]) == "git":
            risky = _risky_git(words, here)
            if risky is not None:
                found.append(risky)
    return found


def split_simple_commands(command: str) -> list:
    """The words of each simple command, split on unquoted operators; quotes removed."""
    commands = []
    words: list = []
    word: list = []
    in_word = False
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c == "\\" and i + 1 < n:
            word.append(command[i + 1])
            in_word = True
            i += 2
            continue
        if c == "'":
            end = command.find("'", i + 1)
            end = n if end < 0 else end
            word.append(command[i + 1 : end])
            in_word = True
            i = end + 1
            continue
        if c == '"':
            i += 1
            while i < n and command[i] != '"':
                if command[i] == "\\" and i + 1 < n and command[i + 1] in '"\\$`':
                    i += 1
                word.append(command[i])
                i += 1
            in_word = True
            i += 1
            continue
        if c in " \t" or c in _SEPARATORS:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            if c in _SEPARATORS and words:
                commands.append(words)
                words = []
            i += 1
            continue
        if c == "$" and i + 1 < n and command[i + 1] == "(":
            i += 1  # `$(`: the `(` that follows separates
            continue
        word.append(c)
        in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    if words:
        commands.append(words)
    return commands


def _strip_prefixes(words: list) -> list:
    """Drop `NAME=value` assignments and wrapper commands before the real one."""
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].replace("_", "a").isalnum():
            i += 1
        elif word in _WRAPPERS:
            i += 1
            while i < len(words) and words[i].startswith("-"):  # the wrapper's own options
                i += 2 if words[i] in _WRAPPER_OPTS_WITH_VALUE else 1
        else:
            break
    return words[i:]


def _risky_git(words: list, cwd: str):
    directory = cwd
    i = 1
    while i < len(words) and words[i].startswith("-"):
        option = words[i]
        name, has_value, value = option.partition("=")
        if option in _GIT_OPTS_WITH_VALUE:
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 2
        else:
            i += 1
            if not has_value:
                continue
        if name == "-C" and value:
            directory = os.path.normpath(os.path.join(directory, os.path.expanduser(value)))
        elif name == "--work-tree" and value:
            directory = os.path.normpath(os.path.join(directory, os.path.expanduser(value)))
    if i >= len(words):
        return None
    sub, rest = words[i], words[i + 1 :]
    if sub == "stash" and rest and rest[0] in _HARMLESS_STASH:
        return None
    if sub in RISKY_SUBCOMMANDS or (sub == "commit" and _commits_all(rest)):
        return GitCommand(["git"] + words[i:], directory)
    return None


def _commits_all(args: list) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg in ("--all", "-a"):
            return True
        if arg.startswith("-") and not arg.startswith("--"):
            for flag in arg[1:]:
                if flag == "a":
                    return True
                if flag in _COMMIT_SHORT_WITH_VALUE:
                    break
    return False
