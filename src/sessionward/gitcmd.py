"""Which git commands in a shell command line move HEAD or rewrite the index or the tree.

risky_git_commands(command, cwd) -> [GitCommand]: every git invocation in `command` that
changes what another session in the same worktree sees: checkout, switch, reset, stash
(not `stash list|show`), rebase, merge, pull, restore, clean, cherry-pick, revert, am, and
commit with -a/--all. Found behind env prefixes (`GIT_DIR=x git ...`), wrappers (sudo, env,
command, exec, time, nohup, nice), shell keywords (`if`, `then`, `do`, `{`, `!`), `git -C DIR` /
`--work-tree`, in `&&`/`||`/`;`/`|` chains, subshells and command substitutions (also inside
double quotes); `cd DIR` (and `cd -`) earlier in the line moves where later parts run, except
out of the subshell it was run in.

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
# Each wrapper's options that take a separate value (per wrapper: `time -p` and `sudo -S`
# take none, and one shared list made them swallow the `git` that followed).
_WRAPPERS = {
    "sudo": ("-u", "-g", "-h", "-p", "-U", "-C", "-D", "-r", "-t", "--user", "--group"),
    "command": (), "exec": ("-a",), "time": ("-o", "-f"), "nohup": (), "nice": ("-n",),
    "builtin": (), "env": ("-u", "-C", "-S"),
}
# Shell keywords that may stand before a command (`if git ...`, `do git ...`, `{ git ...`).
_KEYWORDS = ("!", "{", "}", "if", "then", "else", "elif", "do", "while", "until")
# git's global options that take a separate value.
_GIT_OPTS_WITH_VALUE = ("-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--exec-path")
# `git commit` short options whose value follows (so an `a` after them is not --all).
_COMMIT_SHORT_WITH_VALUE = "mFCctS"
# ... and those whose value may also be the next word (-S<keyid> must be stuck).
_COMMIT_SHORT_NEXT_VALUE = "mFCct"
_COMMIT_LONG_WITH_VALUE = (
    "--message", "--file", "--reuse-message", "--reedit-message", "--template", "--author",
    "--date", "--cleanup", "--fixup", "--squash", "--trailer", "--pathspec-from-file",
)
_MAX_NESTING = 50  # quoted substitutions parsed recursively; deeper text is taken as literal
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
    here, previous = cwd, None
    outer = []  # (here, previous) to restore when a subshell or substitution ends
    for words in _tokens(command, 0):
        if words == "(":  # a `cd` inside ( ... ) or $( ... ) does not leak out of it
            outer.append((here, previous))
            continue
        if words == ")":
            if outer:
                here, previous = outer.pop()
            continue
        words = _strip_prefixes(words)
        if not words:
            continue
        if words[0] == "cd" and len(words) <= 2:
            target = words[1] if len(words) == 2 else os.path.expanduser("~")
            if target != "-":
                previous, here = here, os.path.normpath(os.path.join(here, os.path.expanduser(target)))
            elif previous is not None:  # `cd -` goes back to where the line was before
                here, previous = previous, here
            continue
        if os.path.basename(words[0]) == "git":
            risky = _risky_git(words, here)
            if risky is not None:
                found.append(risky)
    return found


def split_simple_commands(command: str) -> list:
    """The words of each simple command, split on unquoted operators; quotes removed."""
    return [words for words in _tokens(command, 0) if type(words) is list]


def _tokens(command: str, depth: int) -> list:
    """split_simple_commands, plus "(" and ")" where a subshell or substitution opens and closes."""
    commands: list = []
    words: list = []
    word: list = []
    in_word = False
    in_backticks = False
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c == "\\" and i + 1 < n:
            if command[i + 1] == "\n":  # a line continuation joins the lines
                i += 2
                continue
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
                elif depth < _MAX_NESTING and (command.startswith("$(", i) or command[i] == "`"):
                    # a substitution runs inside double quotes too: parse what it runs
                    start = i + (2 if command[i] == "$" else 1)
                    end = _closing(command, start, command[i])
                    commands += ["(", *_tokens(command[start:end], depth + 1), ")"]
                    i = end + 1
                    continue
                word.append(command[i])
                i += 1
            in_word = True
            i += 1
            continue
        if c == "&" and word and word[-1] in "<>":  # `2>&1`, `<&3`: a redirection, not `&`
            word.append(c)
            i += 1
            continue
        if c in " \t" or c in _SEPARATORS:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            if c in _SEPARATORS and words:
                commands.append(words)
                words = []
            if c == "(" or c == ")":
                commands.append(c)
            elif c == "`":
                in_backticks = not in_backticks
                commands.append("(" if in_backticks else ")")
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


def _closing(command: str, start: int, opener: str) -> int:
    """Where the substitution opened by `opener` before `start` ends (its `)` or backtick)."""
    if opener == "`":
        end = command.find("`", start)
        return len(command) if end < 0 else end
    level = 1
    for i in range(start, len(command)):
        if command[i] == "(":
            level += 1
        elif command[i] == ")":
            level -= 1
            if level == 0:
                return i
    return len(command)


def _strip_prefixes(words: list) -> list:
    """Drop `NAME=value` assignments and wrapper commands before the real one."""
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].replace("_", "a").isalnum():
            i += 1
        elif word in _KEYWORDS:
            i += 1
        elif word in _WRAPPERS:
            i += 1
            with_value = _WRAPPERS[word]
            while i < len(words) and words[i].startswith("-"):  # the wrapper's own options
                i += 2 if words[i] in with_value else 1
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
    value_next = False
    for arg in args:
        if value_next:  # `-m -a`: "-a" is the message, not --all
            value_next = False
            continue
        if arg == "--":
            return False
        if arg in ("--all", "-a"):
            return True
        if arg in _COMMIT_LONG_WITH_VALUE:
            value_next = True
        elif arg.startswith("-") and not arg.startswith("--"):
            for k, flag in enumerate(arg[1:], 2):
                if flag == "a":
                    return True
                if flag in _COMMIT_SHORT_WITH_VALUE:
                    value_next = k == len(arg) and flag in _COMMIT_SHORT_NEXT_VALUE
                    break
    return False
