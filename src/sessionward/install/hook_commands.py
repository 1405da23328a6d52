"""Which hook and statusLine commands are sessionward's own: recognised by what they run.

install writes `<launcher> hook <Event>` for the hooks, with <launcher> the absolute path of
a sessionward launcher (the hooks' own, install.hook_launcher, or the package's for a project
scope), shell-quoted when it needs it, and `sh <fast path> <launcher>` for
the status line, with <fast path> the absolute path of install/status_line.sh (which runs
`<launcher> status-line` when the row it cached is out of date). Users edit these:
they append `2>>~/hook.log`, call `sessionward` from PATH, wrap it in `timeout 5 ...`. So a
command is ours when, read as ONE simple shell command, it runs a program whose basename is
`sessionward` with exactly the arguments `hook <Event>` (the event it is listed under) or
`status-line`, or runs a shell (basename `sh`, `dash`, `bash`) with a script named
status_line.sh and a launcher (the status line's fast path, or an older install's plain
`<launcher> status-line`), with around it at most:
  - NAME=value assignments, then one wrapper program from WRAPPERS with its own arguments,
    in front: `FOO=1 sessionward ...`, `timeout 5 /opt/sw/bin/sessionward hook Stop`;
  - redirections, anywhere: `2>>~/hook.log`, `>/dev/null 2>&1`.
It is PRISTINE when it is exactly what install writes (for any absolute launcher path: a moved
virtualenv's entry is still pristine, and install points it at today's launcher), EDITED
otherwise: install keeps an edited command as it is, uninstall removes it.

A command that mentions sessionward without being ours by that rule is the user's: part of a
pipeline or list (`|`, `;`, `&&`, `&`), a subshell or substitution, run by another program
(`bash -c '...'`, `echo sessionward`), or with other arguments. Nobody can tell whether
removing it would remove only sessionward, so both commands leave it alone and say why.
"""

import os
import shlex

PRISTINE = "pristine"
EDITED = "edited"
MENTIONS = "mentions"
LAUNCHER_NAME = "sessionward"
# Programs that run the command they are given, after their own options and arguments.
WRAPPERS = frozenset(("env", "timeout", "nice", "ionice", "nohup", "setsid", "stdbuf", "taskset",
                      "chrt", "flock", "exec", "command", "time"))
_OPERATOR_CHARS = frozenset("();<>|&")
_REDIRECTIONS = frozenset((">", ">>", "<", ">&", "<&", "&>", "&>>", ">|", "<>"))
WHY_COMPOUND = "it is part of a longer shell command"
WHY_PROGRAM = "sessionward is not the program it runs"


def hook_args(event: str) -> tuple[str, ...]:
    return ("hook", event)


STATUS_LINE_ARGS = ("status-line",)
STATUS_LINE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "status_line.sh")
_SHELLS = frozenset(("sh", "dash", "bash"))


def status_line_command(launcher: str, script: str = STATUS_LINE_SCRIPT) -> str:
    """What install writes for the status line: the fast path given the launcher (already
    shell-quoted)."""
    return " ".join(("sh", shlex.quote(script), launcher))


def pristine_command(launcher: str, args: tuple[str, ...]) -> str:
    """What install writes: `launcher` (already shell-quoted) and the arguments."""
    return " ".join((launcher, *args))


def attribute(command, args: tuple[str, ...]) -> tuple[str | None, str]:
    """(PRISTINE | EDITED | MENTIONS | None, detail) for `command` meant to run sessionward
    with `args`: for ours, detail is the launcher as written (unquoted); for MENTIONS, why it
    is not ours; for None (nothing to do with sessionward), ""."""
    if not isinstance(command, str):
        return None, ""
    words = _simple_command_words(command)
    if words is None:
        return _mentions(command, WHY_COMPOUND)
    if args == STATUS_LINE_ARGS:
        fast = _fast_path_launcher(words)
        if fast is not None:
            script, launcher = fast
            pristine = os.path.isabs(script) and os.path.isabs(launcher)
            if pristine and command == status_line_command(shlex.quote(launcher), script):
                return PRISTINE, launcher
            return EDITED, launcher
    launcher_at = _launcher_index(words)
    if launcher_at is None:
        return _mentions(command, WHY_PROGRAM)
    launcher = words[launcher_at]
    if tuple(words[launcher_at + 1 :]) != args:
        return _mentions(command, f"it runs sessionward with other arguments than `{' '.join(args)}`")
    if os.path.isabs(launcher) and command == pristine_command(shlex.quote(launcher), args):
        return PRISTINE, launcher
    return EDITED, launcher


def launcher_of(command, args: tuple[str, ...]) -> str | None:
    """The launcher an own command runs, as written (a path, or a bare name looked up in PATH)."""
    kind, detail = attribute(command, args)
    return detail if kind in (PRISTINE, EDITED) else None


def _mentions(command: str, why: str) -> tuple[str | None, str]:
    return (MENTIONS, why) if LAUNCHER_NAME in command else (None, "")


def _simple_command_words(command: str) -> list[str] | None:
    """The words of `command` without its redirections, or None unless it is one simple
    command (no pipeline, list, subshell, substitution; quotes balanced)."""
    if "\n" in command or "\r" in command or "`" in command or "$(" in command:
        return None  # a line break separates commands; substitutions run commands of their own
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes
        return None
    words: list[str] = []
    last_word_at = -1  # the token index of words[-1]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token and set(token) <= _OPERATOR_CHARS:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            if token not in _REDIRECTIONS or not target or set(target) <= _OPERATOR_CHARS:
                return None
            if words and last_word_at == i - 1 and words[-1].isdigit():
                words.pop()  # the file descriptor of `2>>log` (shlex splits it off)
            i += 2
            continue
        words.append(token)
        last_word_at = i
        i += 1
    return words


def fast_path_of(command) -> tuple[str, str] | None:
    """(script, launcher) as written when `command` runs the status line's fast path (what
    install writes), else None (an older install's `<launcher> status-line`, or not ours)."""
    words = _simple_command_words(command) if isinstance(command, str) else None
    return _fast_path_launcher(words) if words is not None else None


def _fast_path_launcher(words: list[str]) -> tuple[str, str] | None:
    """(script, launcher) when `words` run the status line's fast path: a shell, a script
    named status_line.sh, a launcher named sessionward (after NAME=value assignments and one
    wrapper, as for the other commands)."""
    at = 0
    while at < len(words) and _is_assignment(words[at]):
        at += 1
    if at < len(words) and os.path.basename(words[at]) in WRAPPERS:
        at = next((i for i in range(at + 1, len(words)) if os.path.basename(words[i]) in _SHELLS), len(words))
    rest = words[at:]
    if (len(rest) == 3 and os.path.basename(rest[0]) in _SHELLS
            and os.path.basename(rest[1]) == os.path.basename(STATUS_LINE_SCRIPT)
            and os.path.basename(rest[2]) == LAUNCHER_NAME):
        return rest[1], rest[2]
    return None


def _launcher_index(words: list[str]) -> int | None:
    at = 0
    while at < len(words) and _is_assignment(words[at]):
        at += 1
    if at == len(words):
        return None
    if os.path.basename(words[at]) == LAUNCHER_NAME:
        return at
    if os.path.basename(words[at]) not in WRAPPERS:
        return None
    for i in range(at + 1, len(words)):
        if os.path.basename(words[i]) == LAUNCHER_NAME:
            return i
    return None


def _is_assignment(word: str) -> bool:
    name, equals, _ = word.partition("=")
    return bool(equals) and name.isidentifier()
