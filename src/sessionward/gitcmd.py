"""Which git commands in a shell command line would hurt another session in the same worktree.

risky_git_commands(command, cwd) -> [GitCommand]: every invocation in `command` that either
  destructive  switches or discards what another session sees: checkout, switch, reset,
               stash (not `list`/`show`), rebase, merge, pull, restore, clean (not `-n`),
               cherry-pick, revert, am, bisect (not `log`/`view`/...), mv, rm (not `-n`),
               sparse-checkout (not `list`), filter-branch, filter-repo, submodule
               update/deinit, worktree remove/move (aimed at that worktree), and the
               plumbing that moves HEAD, the index or the files (read-tree, update-ref HEAD,
               symbolic-ref HEAD <ref>, checkout-index -f, update-index other than
               --refresh, apply other than --check/--stat); `gh pr checkout` (`gh co`), and
               `gh pr merge -d/--delete-branch` (it switches and pulls);
  sweep        takes another session's uncommitted work into this session's commit: add/stage
               of everything (-A, --all, -u, --update) or of a broad pathspec (`.`, `:/`, a
               glob, a directory, or paths fed by xargs); commit without a pathspec (it
               commits the whole index, the other session's staged work included), with -a,
               -i, --amend (rewrites the shared tip), or with a broad pathspec.
A command that acts on named files only (`checkout [<rev>] -- f`, `checkout f` where f exists,
`restore f`, `reset [<rev>] f`, `rm f`, `add f`, `commit -m m f`) carries them in `paths`:
whether they are another session's is for the guard to know (its claims), not the reader.
A sweep of more than named files carries in `scope` what it takes (a Scope: the staged
files, the tracked changes, or those and the untracked files, under which pathspecs; whether
it amends HEAD), for the guard to ask git which files those are; None when no reader can know
(paths from xargs or --pathspec-from-file, commit --include).
Not risky: `-h`/`--help`, dry runs (`clean -n`, `commit --dry-run`, `add -n`, `rm -n`).

Shapes it reads: `&&`, `||`, `;`, `|`, `&` and newline chains; `( ... )` subshells, `{ ...; }`
groups, `$( ... )` and backtick substitutions (also inside double quotes, and with quotes,
parentheses and heredocs inside them); process substitution `<( ... )`; shell keywords
(`if`, `then`, `do`, `!`, ...); function definitions (`f() { ...; }`, `function f { ...; }`:
the body is read where it is defined); comments; heredocs, whose bodies are text (a commit
message written with `$(cat <<'EOF' ... EOF)`, `cat > x.sh <<EOF`), except when a shell
reads them (`bash <<EOF`); `NAME=value` prefixes; the wrappers sudo, doas, env, command (not
`command -v`), exec, time, nohup, nice, ionice, stdbuf, timeout, builtin, xargs (its paths
come from stdin), watch, and `bash`/`sh`/`zsh`/`dash`/`ksh -c 'script'` and `eval` (their text
is read as a command line). Where each git command acts: `git -C DIR`, `--work-tree`,
`--git-dir`, `GIT_DIR=`/`GIT_WORK_TREE=` prefixes and `export`s, `cd DIR` / `cd -`, `pushd` /
`popd` earlier in the line (a `cd` inside a subshell or substitution stays there; a `cd` to a
substitution, like `cd "$(git rev-parse --show-toplevel)"`, is taken to stay in the same
worktree).

Out of reach, as for any reader that is not a shell: git aliases (`git co main`), variables
(`$GIT checkout`, `git $cmd`), scripts and makefiles (`./sync.sh`, `make deploy`), a
heredoc piped into a shell (`cat <<EOF | sh`), and functions defined in an earlier Bash call.
The guard is advice to a cooperative agent, not a sandbox.

No `re`, no `shlex`: this runs before every Bash call that mentions git, and importing those
costs more than the whole check.
"""

import os

DESTRUCTIVE = "destructive"
SWEEP = "sweep"

# Subcommands that switch or discard another session's work (exceptions below).
RISKY_SUBCOMMANDS = (
    "checkout", "switch", "reset", "stash", "rebase", "merge", "pull", "restore", "clean",
    "cherry-pick", "revert", "am", "bisect", "mv", "rm", "sparse-checkout", "filter-branch",
    "filter-repo", "read-tree",
)
# Their read-only forms: `git <sub> <first word>`.
_HARMLESS_FIRST = {
    "stash": ("list", "show"),
    "bisect": ("log", "view", "visualize", "terms", "help"),
    "sparse-checkout": ("list",),
}
# Subcommands whose -n / --dry-run (or, for read-tree, -n) only shows what they would do.
_DRY_RUN = ("clean", "rm", "mv", "add", "stage", "read-tree")
_SHELLS = ("bash", "sh", "zsh", "dash", "ksh")
# Each wrapper's options that take a separate value (per wrapper: `time -p` and `sudo -S`
# take none, and one shared list made them swallow the `git` that followed).
_WRAPPERS = {
    "sudo": ("-u", "-g", "-h", "-p", "-U", "-C", "-D", "-r", "-t", "--user", "--group"),
    "doas": ("-u", "-C"),
    "command": (), "exec": ("-a",), "time": ("-o", "-f"), "nohup": (), "nice": ("-n",),
    "builtin": (), "env": ("-u", "-C", "-S"), "ionice": ("-c", "-n", "-p", "-P", "-u"),
    "stdbuf": ("-i", "-o", "-e"), "timeout": ("-s", "-k", "--signal", "--kill-after"),
    "xargs": ("-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a", "--arg-file", "--max-args",
              "--max-procs", "--delimiter", "--max-lines", "--max-chars"),
    "watch": ("-n", "--interval"),
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
_ADD_LONG_WITH_VALUE = ("--chmod", "--pathspec-from-file")
_MAX_NESTING = 50  # quoted substitutions and `-c` scripts read recursively; deeper is literal
_SEPARATORS = (";", "&", "|", "\n", "(", ")")
_WORD_END = " \t\n;&|()<>"
_FROM_STDIN = "\0xargs"  # the paths xargs appends: unknown, so broad


def mentions_git(command: str) -> bool:
    """Whether `command` could run git at all (the hook's test before it reads anything)."""
    return "git" in command or "gh pr " in command or "gh co " in command  # not "gh ": "through "


class GitCommand:
    """One risky invocation: its words from `git` (or `gh`) on, the directory it acts on, its
    kind (DESTRUCTIVE or SWEEP), and `paths`: the files it names when it acts on those files
    only (absolute), else None (the whole tree, or paths the reader cannot know)."""

    __slots__ = ("words", "directory", "kind", "paths", "scope")

    def __init__(self, words: list, directory: str, kind: str = DESTRUCTIVE, paths=None, scope=None) -> None:
        self.words = words
        self.directory = directory
        self.kind = kind
        self.paths = paths
        self.scope = scope

    @property
    def text(self) -> str:
        # on one line: a heredoc commit message in a word would spread a reason over many
        return " ".join(" ".join(w for w in self.words if w != _FROM_STDIN).split())

    def __repr__(self) -> str:
        return f"GitCommand({self.text!r}, {self.directory!r})"


def risky_git_commands(command: str, cwd: str) -> list:
    if not mentions_git(command):  # the common case, answered without parsing
        return []
    found: list = []
    _scan(command, cwd, found, 0)
    return found


def _scan(command: str, cwd: str, found: list, depth: int) -> None:
    here, previous, env = cwd, None, {}  # type: ignore[var-annotated]
    stack: list = []  # pushd's directories
    outer: list = []  # (here, previous, env) to restore when a subshell or substitution ends
    for words in _tokens(command, depth):
        if words == "(":  # a `cd` inside ( ... ) or $( ... ) does not leak out of it
            outer.append((here, previous, env))
            continue
        if words == ")":
            if outer:
                here, previous, env = outer.pop()
            continue
        words, assigned, inner = _strip_prefixes(words)
        if inner is not None:  # `bash -c '...'`, `eval ...`, `watch ...`: read that text
            if depth < _MAX_NESTING:
                _scan(inner, here, found, depth + 1)
            continue
        if not words:
            continue
        name = words[0]
        if name == "export":
            env = dict(env)
            for word in words[1:]:
                key, has_value, value = word.partition("=")
                if has_value and key in ("GIT_DIR", "GIT_WORK_TREE"):
                    env[key] = _join(here, value)
            continue
        if name in ("cd", "pushd") and len(words) <= 2:
            target = words[1] if len(words) == 2 else ("" if name == "pushd" else os.path.expanduser("~"))
            if name == "pushd" and target:
                stack = stack + [here]
            if target == "-":
                if previous is not None:  # `cd -` goes back to where the line was before
                    here, previous = previous, here
            elif target and "$(" not in target and "`" not in target:
                previous, here = here, _join(here, target)
            continue
        if name == "popd":
            if stack:
                previous, here, stack = here, stack[-1], stack[:-1]
            continue
        base = os.path.basename(name)
        if base in ("git", "gh"):
            words = _without_redirections(words)
        if base == "git":
            prefixed = {k: _join(here, v) for k, v in assigned.items() if k in ("GIT_DIR", "GIT_WORK_TREE")}
            risky = _risky_git(words, _directory(here, {**env, **prefixed}))
        elif base == "gh":
            risky = _risky_gh(words, here)
        else:
            continue
        if risky is not None:
            found.append(risky)


def _without_redirections(words: list) -> list:
    """`words` without `2>&1`, `>/dev/null`, `< in` and the like (they are not arguments)."""
    kept = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        operator = word.lstrip("0123456789&")
        if operator[:1] in ("<", ">"):
            skip = operator.strip("<>&|") == "" and not word.endswith("&")  # `> file`: the file follows
            continue
        kept.append(word)
    return kept


def _join(here: str, path: str) -> str:
    return os.path.normpath(os.path.join(here, os.path.expanduser(path)))


def _directory(here: str, env: dict) -> str:
    """Where git acts, from GIT_WORK_TREE / GIT_DIR (already absolute) and the cwd."""
    if "GIT_WORK_TREE" in env:
        return env["GIT_WORK_TREE"]
    git_dir = env.get("GIT_DIR")
    if git_dir:
        return os.path.dirname(git_dir) if os.path.basename(git_dir) == ".git" else git_dir
    return here


def split_simple_commands(command: str) -> list:
    """The words of each simple command, split on unquoted operators; quotes removed
    (a substitution's commands come before the command it stands in)."""
    return [words for words in _tokens(command, 0) if type(words) is list]


def _tokens(command: str, depth: int) -> list:
    """split_simple_commands, plus "(" and ")" where a subshell or substitution opens and closes."""
    commands: list = []
    words: list = []
    word: list = []
    in_word = False
    heredocs: list = []  # (delimiter, strip tabs, the words of the command it feeds)
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
                elif command.startswith("$(", i) or command[i] == "`":
                    i = _substitution(command, i, depth, commands, word)
                    continue
                word.append(command[i])
                i += 1
            in_word = True
            i += 1
            continue
        if (c == "$" and command.startswith("$(", i) and not command.startswith("$((", i)) or c == "`":
            i = _substitution(command, i, depth, commands, word)
            in_word = True
            continue
        if c == "#" and not in_word:  # a comment, to the end of the line
            end = command.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "<" and _is_heredoc(command, i):
            delimiter, strip, i = _heredoc_delimiter(command, i + 2)
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            heredocs.append((delimiter, strip, words))
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
            i += 1
            if c == "\n" and heredocs:
                for delimiter, strip, fed in heredocs:
                    start = i
                    i = _heredoc_end(command, i, delimiter, strip)
                    if _is_shell_reading_stdin(fed) and depth < _MAX_NESTING:
                        commands += ["(", *_tokens(command[start:i], depth + 1), ")"]
                heredocs = []
            continue
        word.append(c)
        in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    if words:
        commands.append(words)
    return commands


def _substitution(command: str, i: int, depth: int, commands: list, word: list) -> int:
    """Read the `$( ... )` or backtick substitution at `i`: its commands go to `commands`
    (between "(" and ")"), its text to `word`; returns where it ends."""
    start = i + (2 if command[i] == "$" else 1)
    end = _closing(command, start, command[i])
    if depth < _MAX_NESTING:
        commands += ["(", *_tokens(command[start:end], depth + 1), ")"]
    word.append(command[i : end + 1])
    return end + 1


def _closing(command: str, start: int, opener: str) -> int:
    """Where the substitution opened by `opener` before `start` ends (its `)` or backtick),
    past quotes, nested parentheses and heredoc bodies inside it."""
    n = len(command)
    if opener == "`":
        end = command.find("`", start)
        return n if end < 0 else end
    stack = [")"]  # what closes each open context: ")" a parenthesis, '"' a double quote
    heredocs: list = []
    i = start
    while i < n:
        c = command[i]
        if c == "\\":
            i += 2
            continue
        if stack[-1] == '"':
            if c == '"':
                stack.pop()
            elif command.startswith("$(", i):
                stack.append(")")
                i += 1
            elif c == "`":
                end = command.find("`", i + 1)
                i = n if end < 0 else end
            i += 1
            continue
        if c == "'":
            end = command.find("'", i + 1)
            i = n if end < 0 else end + 1
            continue
        if c == '"':
            stack.append('"')
        elif c == "(":
            stack.append(")")
        elif c == ")":
            stack.pop()
            if not stack:
                return i
        elif c == "`":
            end = command.find("`", i + 1)
            i = n if end < 0 else end
        elif c == "<" and _is_heredoc(command, i):
            delimiter, strip, i = _heredoc_delimiter(command, i + 2)
            heredocs.append((delimiter, strip))
            continue
        elif c == "\n" and heredocs:
            i += 1
            for delimiter, strip in heredocs:
                i = _heredoc_end(command, i, delimiter, strip)
            heredocs = []
            continue
        i += 1
    return n


def _is_heredoc(command: str, i: int) -> bool:
    """Whether the `<` at `i` opens a heredoc: `<<` (not `<<<`), and not a shift (`$((1<<2))`)."""
    return (command.startswith("<<", i) and not command.startswith("<<<", i)
            and not (i and command[i - 1] in "0123456789"))


def _heredoc_delimiter(command: str, i: int) -> tuple:
    """(delimiter, strip leading tabs, where it ends) for the `<<` just before `i`."""
    strip = command.startswith("-", i)
    i += strip
    n = len(command)
    while i < n and command[i] in " \t":
        i += 1
    chars = []
    while i < n and command[i] not in _WORD_END:
        c = command[i]
        if c in "'\"":
            end = command.find(c, i + 1)
            end = n if end < 0 else end
            chars.append(command[i + 1 : end])
            i = end + 1
            continue
        if c == "\\":
            i += 1
            continue
        chars.append(c)
        i += 1
    return "".join(chars), strip, i


def _heredoc_end(command: str, i: int, delimiter: str, strip: bool) -> int:
    """Past the body that starts at `i` and its delimiter line (the end when there is none)."""
    n = len(command)
    while i < n:
        end = command.find("\n", i)
        line = command[i : n if end < 0 else end]
        if (line.lstrip("\t") if strip else line) == delimiter:
            return n if end < 0 else end + 1
        if end < 0:
            break
        i = end + 1
    return n


def _is_shell_reading_stdin(words: list) -> bool:
    words = _strip_prefixes(words)[0]
    return bool(words) and os.path.basename(words[0]) in _SHELLS and all(w.startswith("-") for w in words[1:])


def _strip_prefixes(words: list) -> tuple:
    """(the real command's words, its NAME=value prefixes, the text a `bash -c` / `eval` /
    `watch` runs or None). A command xargs runs gets a last word standing for the paths it feeds."""
    assigned = {}
    from_stdin = False
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].replace("_", "a").isalnum():
            key, _, value = word.partition("=")
            assigned[key] = value
            i += 1
        elif word in _KEYWORDS:
            i += 1
        elif word == "function":  # `function name {` or `function name()`: the body follows
            i += 2
        elif word in _WRAPPERS:
            i += 1
            with_value = _WRAPPERS[word]
            while i < len(words) and words[i].startswith("-") and words[i] != "-":  # its own options
                if word == "command" and words[i] in ("-v", "-V"):
                    return [], assigned, None  # `command -v git` looks git up
                i += 2 if words[i] in with_value else 1
            if word == "timeout" and i < len(words):
                i += 1  # the duration
            elif word == "xargs":
                from_stdin = True
            elif word == "watch":
                return [], assigned, " ".join(words[i:])
        elif word == "eval":
            return [], assigned, " ".join(words[i + 1 :])
        elif os.path.basename(word) in _SHELLS and i + 2 < len(words) and _has_short(words[i + 1], "c"):
            return [], assigned, words[i + 2]
        else:
            break
    rest = words[i:]
    if from_stdin and rest:
        rest = rest + [_FROM_STDIN]
    return rest, assigned, None


def _has_short(word: str, flag: str) -> bool:
    """Whether `word` is a cluster of short options (`-lc`) that holds `flag`."""
    return word.startswith("-") and not word.startswith("--") and flag in word[1:]


def _risky_git(words: list, directory: str):
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
                if option in ("-h", "--help", "--version", "-v"):
                    return None
                continue
        if name == "-C" and value:
            directory = _join(directory, value)
        elif name == "--work-tree" and value:
            directory = _join(directory, value)
        elif name == "--git-dir" and value:
            git_dir = _join(directory, value)
            directory = os.path.dirname(git_dir) if os.path.basename(git_dir) == ".git" else git_dir
    if i >= len(words):
        return None
    sub, rest = words[i], words[i + 1 :]
    kind = _kind(sub, rest, directory)
    if kind is None:
        return None
    if sub == "worktree":
        directory = _join(directory, _positionals(rest[1:])[0])
    paths = _named_files(sub, rest, directory) if sub in _PATH_LEVEL else None
    scope = _sweep_scope(sub, rest) if kind == SWEEP and paths is None else None
    return GitCommand(["git"] + words[i:], directory, kind, paths, scope)


def _kind(sub: str, rest: list, directory: str):
    """DESTRUCTIVE, SWEEP or None for `git <sub> <rest...>`."""
    if rest and rest[0] in ("-h", "--help"):
        return None
    if sub in _DRY_RUN and _dry_run(rest):
        return None
    if sub in ("add", "stage"):
        return SWEEP if _adds_broadly(rest, directory) or _named_files(sub, rest, directory) else None
    if sub == "commit":
        return _commit_kind(rest)
    if sub in RISKY_SUBCOMMANDS:
        harmless = _HARMLESS_FIRST.get(sub)
        if harmless and rest and rest[0] in harmless:
            return None
        return DESTRUCTIVE
    if sub == "submodule":
        return DESTRUCTIVE if any(w in ("update", "deinit") for w in rest) else None
    if sub == "worktree":
        return DESTRUCTIVE if rest[:1] in (["remove"], ["move"]) and _positionals(rest[1:]) else None
    if sub == "checkout-index":
        return DESTRUCTIVE if any(w == "--force" or _has_short(w, "f") for w in rest) else None
    if sub == "update-index":
        return DESTRUCTIVE if any(w not in ("--refresh", "--really-refresh", "-q") for w in rest) else None
    if sub == "update-ref":
        return DESTRUCTIVE if "HEAD" in rest else None
    if sub == "symbolic-ref":
        return DESTRUCTIVE if len(_positionals(rest)) >= 2 and _positionals(rest)[0] == "HEAD" else None
    if sub == "apply":
        looks = ("--check", "--stat", "--numstat", "--summary")
        return None if any(w in looks for w in rest) and "--apply" not in rest else DESTRUCTIVE
    return None


# Subcommands that may act on named files only: `checkout -- f`, `restore f`, `reset f`, `rm f`,
# `add f`, `commit f`. Their options that take the next word as a value.
_PATH_LEVEL = {
    "checkout": ("--pathspec-from-file",), "restore": ("-s", "--source", "--pathspec-from-file"),
    "reset": ("--pathspec-from-file",), "rm": ("--pathspec-from-file",),
    "add": _ADD_LONG_WITH_VALUE, "stage": _ADD_LONG_WITH_VALUE,
    "commit": _COMMIT_LONG_WITH_VALUE + ("-m", "-F", "-C", "-c", "-t"),
}
# Options that make the command act on more than named files (a switch, a mode, everything).
_WHOLE = ("-b", "-B", "--orphan", "--detach", "--hard", "--soft", "--keep", "--merge", "-a", "--all",
          "--amend", "-i", "--include", "-A", "-u", "--update", "--pathspec-from-file", "-p", "--patch")


def _named_files(sub: str, rest: list, directory: str):
    """The files `git <sub> <rest>` acts on, absolute, when it acts on named files only;
    else None. Before `--`, a first word that is no file is the commit or tree it reads
    from (`git checkout main -- f`, `git reset HEAD f`); a lone one is a switch or a move."""
    with_value = _PATH_LEVEL[sub]
    before, after, dashes = [], [], False
    value_next = False
    for word in rest:
        if value_next:
            value_next = False
        elif dashes:
            after.append(word)
        elif word == "--":
            dashes = True
        elif word.startswith("-") and word != "-":
            if word in _WHOLE or word.split("=", 1)[0] in _WHOLE:
                return None
            if sub == "commit" and not word.startswith("--"):
                if _commit_whole(word):
                    return None
                value_next = _commit_value_next(word)
            elif word in with_value:
                value_next = True
        else:
            before.append(word)
    if sub in ("checkout", "reset") and before and not os.path.exists(os.path.join(directory, before[0])):
        if not after and len(before) == 1:
            return None  # `git checkout dev`, `git reset HEAD~1`
        before = before[1:]
    paths = (before or []) + after
    if not paths or any(p == _FROM_STDIN or _broad(p, directory) for p in paths):
        return None
    return [_join(directory, p) for p in paths]


def _dry_run(rest: list) -> bool:
    for word in rest:
        if word == "--":
            return False
        if word == "--dry-run" or _has_short(word, "n"):
            return True
    return False


def _positionals(args: list) -> list:
    return [a for a in args if not a.startswith("-")] or [""]


def _broad(path: str, directory: str) -> bool:
    """Whether a pathspec may cover files this session did not name: `.`, `:/`, a glob, a
    directory, the paths xargs appends."""
    if path == _FROM_STDIN or path in (".", "..", ":", ":/") or path.endswith("/") or path.startswith(":"):
        return True
    if "*" in path or "?" in path or "[" in path:
        return True
    return os.path.isdir(os.path.join(directory, path))


def _adds_broadly(args: list, directory: str) -> bool:
    value_next = False
    paths = False
    for arg in args:
        if value_next:
            value_next = False
            continue
        if paths or not arg.startswith("-") or arg == _FROM_STDIN:
            if _broad(arg, directory):
                return True
            continue
        if arg == "--":
            paths = True
        elif arg in ("--all", "--update", "-A", "--no-ignore-removal") or arg.startswith("--pathspec-from-file"):
            return True  # everything, or paths the reader cannot see
        elif arg in _ADD_LONG_WITH_VALUE:
            value_next = True
        elif _has_short(arg, "A") or _has_short(arg, "u"):
            return True
    return False


def _commit_kind(args: list):
    """SWEEP unless a dry run: even of named files (whose they are is the guard's business)."""
    value_next = False
    for arg in args:
        if value_next:  # `-m --dry-run`: the message
            value_next = False
        elif arg == "--":
            break
        elif arg == "--dry-run":
            return None
        elif arg in _COMMIT_LONG_WITH_VALUE:
            value_next = True
        elif arg.startswith("-") and not arg.startswith("--"):
            value_next = _commit_value_next(arg)
    return SWEEP


def _commit_value_next(arg: str) -> bool:
    """Whether the short-option cluster `arg` of `git commit` takes the next word as a value."""
    for k, flag in enumerate(arg[1:], 2):
        if flag in _COMMIT_SHORT_WITH_VALUE:
            return k == len(arg) and flag in _COMMIT_SHORT_NEXT_VALUE
    return False


def _commit_whole(arg: str) -> bool:
    """Whether the short-option cluster `arg` of `git commit` holds -a or -i (before a value)."""
    for flag in arg[1:]:
        if flag in "ai":
            return True
        if flag in _COMMIT_SHORT_WITH_VALUE:
            return False
    return False


# What a sweep takes (Scope.changes): the staged files (a commit of the index), those and the
# tracked files changed in the working tree (commit -a), the tracked files changed under the
# pathspec (add -u, commit -- <pathspec>), or those and the untracked ones (add -A, add .).
STAGED = "staged"
STAGED_AND_TRACKED = "staged+tracked"
TRACKED = "tracked"
ALL = "all"


class Scope:
    """What a sweep would take: `changes` (STAGED, STAGED_AND_TRACKED, TRACKED or ALL), under
    `pathspecs` (as written, relative to the command's directory; empty: the whole tree), and
    whether it rewrites the commit at HEAD (`amend`)."""

    __slots__ = ("changes", "pathspecs", "amend")

    def __init__(self, changes: str, pathspecs: list, amend: bool = False) -> None:
        self.changes = changes
        self.pathspecs = pathspecs
        self.amend = amend

    def __repr__(self) -> str:
        return f"Scope({self.changes!r}, {self.pathspecs!r}, amend={self.amend})"


def _sweep_scope(sub: str, rest: list):
    """The Scope of the sweep `git <sub> <rest>`, or None when the reader cannot know what it
    takes (paths from xargs or --pathspec-from-file, commit --include, add --patch)."""
    commit = sub == "commit"
    pathspecs, changes, amend = [], (STAGED if commit else ALL), False
    value_next = dashes = False
    for arg in rest:
        if value_next:
            value_next = False
        elif dashes or not arg.startswith("-") or arg == "-":
            if arg == _FROM_STDIN:
                return None
            pathspecs.append(arg)
        elif arg == "--":
            dashes = True
        elif arg.startswith("--pathspec-from-file") or arg in ("-i", "--include", "-p", "--patch", "--interactive"):
            return None
        elif arg in ("--all", "--no-ignore-removal"):
            changes = STAGED_AND_TRACKED if commit else ALL
        elif arg == "--update" and not commit:
            changes = TRACKED
        elif arg == "--amend":
            amend = True
        elif arg in (_COMMIT_LONG_WITH_VALUE if commit else _ADD_LONG_WITH_VALUE):
            value_next = True
        elif not arg.startswith("--"):
            for flag in arg[1:]:
                if commit and flag in _COMMIT_SHORT_WITH_VALUE:
                    break  # the rest of the cluster is its value
                if flag in "ipe" and not (commit and flag == "e"):
                    return None  # --include, --patch, --interactive, add --edit: hunks chosen by hand
                if flag == ("a" if commit else "A"):
                    changes = STAGED_AND_TRACKED if commit else ALL
                elif flag == "u" and not commit:
                    changes = TRACKED
            value_next = commit and _commit_value_next(arg)
    if commit and pathspecs:
        changes = TRACKED  # `git commit -- <pathspec>` takes those paths' tracked changes only
    return Scope(changes, pathspecs, amend)


def _risky_gh(words: list, directory: str):
    """`gh pr checkout N` / `gh co N` switch the checkout; `gh pr merge -d` switches and pulls."""
    args = [w for w in words[1:] if not w.startswith("-")]
    flags = words[1:]
    if args[:2] == ["pr", "checkout"] or args[:1] == ["co"]:
        return GitCommand(list(words), directory)
    if args[:2] == ["pr", "merge"] and ("--delete-branch" in flags or "-d" in flags):
        return GitCommand(list(words), directory)
    return None
