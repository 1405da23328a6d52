"""The command-line parser: forms it accepts, and every command documented in --help."""

import pytest

from sessionward.cli.args import Arg, Command, Opt, parse
from sessionward.cli.main import COMMANDS
from sessionward.errors import UsageError

from helpers import run_cli

RUN = Command("run", "run a thing", "m:f", args=[Arg("cmd", "command", remainder=True)], opts=[Opt("--timeout", "t", "S", float)])
PAIR = Command("pair", "two args", "m:f", args=[Arg("a", "a"), Arg("b", "b", required=False)], opts=[Opt("--flag", "f")])


def test_values_flags_and_equals():
    parsed = parse(["pair", "x", "--flag"], [PAIR])
    assert parsed.values == {"a": "x", "b": None, "flag": False} | {"flag": True}
    assert parse(["run", "--timeout=2.5", "--", "echo", "--flag"], [RUN]).values == {"timeout": 2.5, "cmd": ["echo", "--flag"]}
    assert parse(["run", "--timeout", "3", "--", "ls"], [RUN]).values["timeout"] == 3.0


def test_double_dash_makes_dashed_words_positional():
    assert parse(["pair", "--", "-x", "-y"], [PAIR]).values["b"] == "-y"


def test_help_is_recognised_before_a_remainder_only():
    assert parse(["pair", "--help"], [PAIR]).help_for is PAIR
    assert parse(["run", "--", "grep", "--help"], [RUN]).values["cmd"] == ["grep", "--help"]


@pytest.mark.parametrize("argv, message", [
    (["run"], "missing command after '--'"),
    (["pair"], "missing argument <a>"),
    (["pair", "a", "b", "c"], "unexpected argument 'c'"),
    (["pair", "--flag=1"], "option --flag takes no value"),
    (["run", "--timeout"], "option --timeout needs a value"),
    (["nope"], "unknown command 'nope'"),
])
def test_usage_errors(argv, message):
    with pytest.raises(UsageError) as info:
        parse(argv, [RUN, PAIR])
    assert message in str(info.value)


def test_every_command_has_help_that_names_its_options():
    top = run_cli("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert f"  {command.name} " in top.stdout
        page = run_cli(*command.name.split(), "--help")
        assert page.returncode == 0 and page.stdout.startswith(f"usage: sessionward {command.name}")
        for opt in command.opts:
            assert opt.name in page.stdout


def test_version():
    from sessionward import __version__

    assert run_cli("--version").stdout == f"sessionward {__version__}\n"


@pytest.mark.parametrize("argv", [["lock", "--help"], ["lock", "-h"], ["help", "lock"]])
def test_a_command_groups_help_lists_its_subcommands(argv):
    done = run_cli(*argv)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == "usage: sessionward lock <subcommand> [options]"
    listed = [line.split()[1] for line in lines if line.startswith("  lock ")]
    assert listed == [c.name.split()[1] for c in COMMANDS if c.name.startswith("lock ")]
    assert lines[-1] == "Run 'sessionward lock <subcommand> --help' for its options."


def test_a_group_without_subcommand_points_at_a_help_that_works():
    done = run_cli("note")
    assert done.returncode == 2
    assert done.stderr == ("sessionward: 'note' needs a subcommand (one of: append, write); "
                           "see 'sessionward note --help'\n")
    assert run_cli("note", "--help").returncode == 0


def test_a_dashed_word_with_a_space_is_text_not_an_option():
    assert parse(["pair", "- a list item", "--flag"], [PAIR]).values == {"a": "- a list item", "b": None, "flag": True}
    assert parse(["pair", "x", "--no such"], [PAIR]).values["b"] == "--no such"
    with pytest.raises(UsageError):
        parse(["pair", "x", "-y"], [PAIR])


def test_an_option_never_takes_another_option_as_its_value():
    with pytest.raises(UsageError, match="option --timeout needs a value"):
        parse(["run", "--timeout", "--other", "--", "ls"], [RUN])
    assert parse(["run", "--timeout=-1", "--", "ls"], [RUN]).values["timeout"] == -1.0  # `=` says it is the value


def test_hook_help_after_double_dash_is_not_help():
    done = run_cli("hook", "--json", "--", "-h")
    assert (done.returncode, done.stdout) == (1, "")  # the hook runner's fail-open, never the usage code 2
    assert done.stderr.count("\n") == 1


def test_a_repeated_option_collects_its_values():
    from sessionward.cli.args import Command, Opt, parse

    table = [Command("install", "x", "m:f", opts=[Opt("--vault", "v", "PATH", repeat=True), Opt("--yes", "y")])]
    assert parse(["install"], table).values == {"vault": [], "yes": False}
    assert parse(["install", "--vault", "/a", "--vault=/b"], table).values["vault"] == ["/a", "/b"]
    assert table[0].usage == "sessionward install [--vault PATH...] [--yes]"
