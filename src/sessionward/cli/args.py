"""A small declarative command-line parser.

Why not argparse: importing it (with `re`, `enum` and `gettext`) costs more than a bare
interpreter start on a slow machine, and every hook, status-line refresh and shell helper
starts this CLI. This parser covers what sessionward's commands use: subcommands (one or two
words), positionals (required, optional, or everything after `--`), `--flag`, `--opt VALUE`,
`--opt=VALUE`, and `-h/--help`. The same specs generate `--help` and docs/CLI.md.
"""

from sessionward.errors import UsageError

PROG = "sessionward"
# What shell completion (sessionward.cli.completion) offers for a value: a tuple of the words
# themselves, or one of these kinds; None offers nothing.
COMPLETE_KINDS = ("file", "dir", "command", "lock", "session", "pid", "project", "event", "shell")


class Opt:
    """An option. `value` is None for a flag; otherwise the metavar of its value. `complete`
    says what completes its value (see COMPLETE_KINDS). `repeat`: may be given several times,
    its values collected in a list (empty when never given)."""

    __slots__ = ("name", "dest", "value", "help", "convert", "default", "complete", "repeat")

    def __init__(self, name: str, help: str, value: str | None = None, convert=None, default=None,
                 complete=None, repeat: bool = False) -> None:
        self.name = name
        self.complete = complete
        self.repeat = repeat
        self.dest = name.lstrip("-").replace("-", "_")
        self.value = value
        self.help = help
        self.convert = convert
        self.default = default if value is not None else False

    @property
    def label(self) -> str:
        label = f"{self.name} {self.value}" if self.value else self.name
        return label + "..." if self.repeat else label


class Arg:
    """A positional argument; `remainder` takes everything after `--`; `many` (the last one)
    takes every positional left, as a list (empty when none and not required). `complete` says
    what completes it (see COMPLETE_KINDS)."""

    __slots__ = ("name", "help", "required", "remainder", "convert", "many", "complete")

    def __init__(self, name: str, help: str, required: bool = True, remainder: bool = False, convert=None,
                 many: bool = False, complete=None) -> None:
        self.name = name
        self.complete = complete
        self.help = help
        self.required = required
        self.remainder = remainder
        self.convert = convert
        self.many = many

    @property
    def label(self) -> str:
        if self.remainder:
            return f"-- {self.name.upper()}..."
        if self.many:
            return f"<{self.name}>..." if self.required else f"[{self.name}...]"
        return f"<{self.name}>" if self.required else f"[{self.name}]"


class Command:
    """One command: its words ("register", or "lock acquire"), its arguments, and the
    "module:function" that runs it (imported only when this command is chosen)."""

    __slots__ = ("name", "summary", "args", "opts", "runner", "details")

    def __init__(self, name: str, summary: str, runner: str, args=(), opts=(), details: str = "") -> None:
        self.name = name
        self.summary = summary
        self.runner = runner
        self.args = list(args)
        self.opts = list(opts)
        self.details = details

    @property
    def usage(self) -> str:
        parts = [PROG, self.name]
        parts += [f"[{o.label}]" for o in self.opts]
        parts += [a.label for a in self.args]
        return " ".join(parts)

    def help_text(self) -> str:
        lines = [f"usage: {self.usage}", "", self.summary]
        if self.details:
            lines += ["", self.details]
        if self.args:
            lines += ["", "arguments:"]
            lines += [f"  {a.label:<22} {a.help}" for a in self.args]
        lines += ["", "options:"]
        lines += [f"  {o.label:<22} {o.help}" for o in self.opts]
        lines.append(f"  {'-h, --help':<22} show this help")
        return "\n".join(lines)


class Parsed:
    """The outcome of parsing: a command with its values, or a help/version request
    (help_for: a Command, a group's first word such as "lock", or "all")."""

    __slots__ = ("command", "values", "help_for", "version")

    def __init__(self, command=None, values=None, help_for=None, version=False) -> None:
        self.command = command
        self.values = values or {}
        self.help_for = help_for
        self.version = version


def parse(argv: list[str], commands: list[Command]) -> Parsed:
    """Parse argv (without the program name) against `commands`; UsageError on any mistake."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        topic = argv[1:] if argv and argv[0] == "help" else []
        if len(topic) == 1 and topic[0] in _groups(commands):
            return Parsed(help_for=topic[0])
        if topic:
            return Parsed(help_for=_find(topic, commands)[0])
        return Parsed(help_for="all")
    if argv[0] == "--version":
        return Parsed(version=True)
    if argv[0] in _groups(commands) and argv[1:2] in (["-h"], ["--help"]):
        return Parsed(help_for=argv[0])  # `sessionward lock --help`: the group's subcommands
    command, rest = _find(argv, commands)
    if "-h" in rest or "--help" in rest:
        cut = rest.index("--") if "--" in rest else len(rest)
        if "-h" in rest[:cut] or "--help" in rest[:cut]:
            return Parsed(help_for=command)
    return Parsed(command=command, values=_parse_rest(command, rest))


def _find(argv: list[str], commands: list[Command]) -> tuple[Command, list[str]]:
    for words in (2, 1):
        name = " ".join(argv[:words])
        for command in commands:
            if command.name == name:
                return command, argv[words:]
    if argv[0] in _groups(commands):
        subs = ", ".join(c.name.split()[1] for c in commands if c.name.startswith(argv[0] + " "))
        what = f"unknown '{argv[0]}' subcommand {argv[1]!r}" if len(argv) > 1 else f"'{argv[0]}' needs a subcommand"
        raise UsageError(f"{what} (one of: {subs})", f"see '{PROG} {argv[0]} --help'")
    raise UsageError(f"unknown command {argv[0]!r}", f"see '{PROG} --help' for the list")


def _groups(commands: list[Command]) -> set[str]:
    """The first words of two-word commands ("lock" of "lock acquire")."""
    return {c.name.split()[0] for c in commands if " " in c.name}


def _parse_rest(command: Command, rest: list[str]) -> dict:
    values = {o.dest: [] if o.repeat else o.default for o in command.opts}
    by_name = {o.name: o for o in command.opts}
    positionals: list[str] = []
    remainder: list[str] | None = None
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "--":
            # After `--` everything is positional: a command's REMAINDER, or plain arguments
            # that happen to start with a dash.
            if any(a.remainder for a in command.args):
                remainder = rest[i:]
            else:
                positionals.extend(rest[i:])
            break
        if token.startswith("-") and " " in token.partition("=")[0]:
            # No option has a space in its name: "- 14:02 fixed the bug" is text (a note's
            # Markdown list item), not a mistyped option.
            positionals.append(token)
        elif token.startswith("--"):
            name, has_value, inline = token.partition("=")
            opt = by_name.get(name)
            if opt is None:
                raise _usage(command, f"unknown option {name}")
            if opt.value is None:
                if has_value:
                    raise _usage(command, f"option {name} takes no value")
                values[opt.dest] = True
                continue
            if not has_value:
                # The next word is the value, unless it is an option itself: `--session --json`
                # is a forgotten value, not a session named "--json" (write --session=--json).
                if i >= len(rest) or (rest[i].startswith("--") and len(rest[i]) > 2):
                    raise _usage(command, f"option {name} needs a value ({opt.value})")
                inline = rest[i]
                i += 1
            value = opt.convert(inline) if opt.convert else inline
            if opt.repeat:
                values[opt.dest].append(value)
            else:
                values[opt.dest] = value
        elif token.startswith("-") and len(token) > 1:
            raise _usage(command, f"unknown option {token}")
        else:
            positionals.append(token)

    plain = [a for a in command.args if not a.remainder]
    if plain and plain[-1].many:
        many = plain.pop()
        taken, positionals = positionals[len(plain):], positionals[: len(plain)]
        if not taken and many.required:
            raise _usage(command, f"missing argument <{many.name}>")
        values[many.name] = [many.convert(raw) if many.convert else raw for raw in taken]
    if len(positionals) > len(plain):
        raise _usage(command, f"unexpected argument {positionals[len(plain)]!r}")
    for index, arg in enumerate(plain):
        if index < len(positionals):
            raw = positionals[index]
            values[arg.name] = arg.convert(raw) if arg.convert else raw
        elif arg.required:
            raise _usage(command, f"missing argument <{arg.name}>")
        else:
            values[arg.name] = None
    for arg in command.args:
        if arg.remainder:
            if not remainder:
                raise _usage(command, f"missing command after '--' (usage: {command.usage})")
            values[arg.name] = remainder
    return values


def _usage(command: Command, message: str) -> UsageError:
    return UsageError(f"{command.name}: {message}", f"see '{PROG} {command.name} --help'")
