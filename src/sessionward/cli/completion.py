"""completion: the shell completion scripts, made from the command table (cli.main.COMMANDS).

`sessionward completion bash|zsh|fish` prints a script that completes the commands, the
subcommands of a group ("lock" -> acquire, release, ...), each command's options, and the
values its arguments and options declare with `complete=` (cli.args.COMPLETE_KINDS): words
given in the table (--scope user|project), the shells, the hook events, files, directories, a
command after `--`, and values read when TAB is pressed: lock names, and the ids, owner PIDs
and projects of the recorded sessions. For those the scripts run
`sessionward completion --values KIND`, which reads the state without a lock and without
changing anything (a dead session's id may be offered until something sweeps it).

Nothing here is a second list of commands: a command added to the table completes in every
shell the next time the script is printed (tests/cli/test_completion.py loads each script
in the real shell and checks every command of the table). The scripts themselves are in
cli.completion_scripts, one function per shell, from the Spec below.
"""

from sessionward.cli.render import Output
from sessionward.errors import BadInput

SHELLS = ("bash", "zsh", "fish")
DYNAMIC_KINDS = ("lock", "session", "pid", "project")  # read when TAB is pressed: --values KIND


class Spec:
    """The command table as the scripts need it. `top`: (word, summary) of the first words;
    `groups`: {group: [(subcommand, summary)]}; `commands`: [(name, opts, args, rest)], where
    opts are (option, metavar (None for a flag), kind, help), args (name, kind, many,
    required) and rest the kind after `--` (None: the command takes no `--` command)."""

    def __init__(self, commands) -> None:
        self.top: list = []
        self.groups: dict = {}
        self.commands: list = []
        for command in commands:
            first, _, sub = command.name.partition(" ")
            if sub:
                if first not in self.groups:
                    self.groups[first] = []
                    self.top.append((first, f"{first} commands"))
                self.groups[first].append((sub, command.summary))
            else:
                self.top.append((first, command.summary))
            opts = [(o.name, o.value, kind_of(o) if o.value else None, o.help) for o in command.opts]
            opts.append(("--help", None, None, "show this help"))
            args = [(a.name, kind_of(a), a.many, a.required) for a in command.args if not a.remainder]
            rest = next((kind_of(a) or "command" for a in command.args if a.remainder), None)
            self.commands.append((command.name, opts, args, rest))
        for group, subs in self.groups.items():
            names = ", ".join(sub for sub, _ in subs)
            self.top = [(w, f"{w} commands: {names}" if w == group else s) for w, s in self.top]


def kind_of(item) -> str | tuple | None:
    """What completes an option's value or an argument: a kind, or a tuple of words (the
    shells and the hook events are resolved here, into words)."""
    kind = item.complete
    if kind == "shell":
        return SHELLS
    if kind == "event":
        from sessionward.hooks import EVENTS

        return tuple(EVENTS)
    return kind


def render_script(shell: str, commands=None) -> str:
    from sessionward.cli import completion_scripts

    if commands is None:
        from sessionward.cli.main import COMMANDS as commands
    return getattr(completion_scripts, shell)(Spec(commands))


def completion_values(kind: str) -> list[str]:
    """The values of a dynamic kind now, read without a lock; nothing when the state cannot
    be read (completion never complains)."""
    if kind == "lock":
        from sessionward.locks import END_LOCK, known_lock_names

        return list(dict.fromkeys([END_LOCK, *known_lock_names()]))
    from sessionward.store import open_store

    try:
        sessions = list(open_store().load_sessions().values())
    except (OSError, ValueError):
        return []
    if kind == "session":
        return [s["id"] for s in sessions if s.get("id")]
    if kind == "pid":
        return list(dict.fromkeys(str(s["owner"]["pid"]) for s in sessions if s.get("owner", {}).get("pid")))
    return sorted({s["project"] for s in sessions if s.get("project")})


def run_completion(values: dict) -> Output:
    kind = values["values"]
    shell = values["shell"]
    if kind is not None:
        if kind not in DYNAMIC_KINDS:
            raise BadInput(f"completion: unknown kind {kind!r} (one of: {', '.join(DYNAMIC_KINDS)})")
        found = completion_values(kind)
        return Output("completion", {"kind": kind, "values": found}, lambda style: found)
    if shell is None:
        raise BadInput(f"completion: name a shell: {', '.join(SHELLS)}")
    shell = shell.rsplit("/", 1)[-1]  # `sessionward completion $SHELL` gives /usr/bin/zsh
    if shell not in SHELLS:
        raise BadInput(f"completion: unknown shell {values['shell']!r} (one of: {', '.join(SHELLS)})")
    script = render_script(shell)
    return Output("completion", {"shell": shell, "script": script}, lambda style: script.splitlines())
