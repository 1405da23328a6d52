"""Docs stay true: the generated reference is current, every command is documented, and the
examples README.md shows are what the tool prints."""

import os
import re

from sessionward.cli import reference
from sessionward.cli.main import COMMANDS

from helpers import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def test_cli_reference_is_current():
    assert reference.splice(read(reference.DOC), reference.render_reference()) == read(reference.DOC), (
        "docs/CLI.md is stale: run python -m sessionward.cli.reference --write"
    )


def test_every_command_is_in_the_readme_table():
    readme = read("README.md")
    for command in COMMANDS:
        assert re.search(rf"^\| `{command.name}[ `]", readme, re.M), f"{command.name} missing from README"


def test_readme_json_example_is_real():
    readme = read("README.md")
    shown = re.search(r'^\$ sessionward register "" /tmp --json\n(.*)$', readme, re.M).group(1)
    assert run_cli("register", "", "/tmp", "--json").stdout == shown + "\n"


def test_readme_starts_with_the_two_newcomer_commands():
    readme = read("README.md")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("./scripts/install && ~/.local/bin/sessionward demo")
    assert first_block.splitlines()[1].startswith("./scripts/test")
    assert "exec ./scripts/test" in read(".ci/run")


def on_a_terminal(*args) -> list[str]:
    """What `sessionward ARGS` prints to a terminal (paths shortened to ~), as README shows it."""
    from helpers import run_on_a_terminal

    status, shown, errors = run_on_a_terminal(*args)
    assert (status, errors) == (0, "")
    return shown.splitlines()


def readme_console(first_line: str) -> list[str]:
    """The lines of the README's console example that starts with `first_line`, after it."""
    block = read("README.md").split(first_line + "\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_readme_install_and_uninstall_examples_are_real(tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir()
    shown = readme_console("$ sessionward install")
    assert on_a_terminal("install") == shown
    (home / ".bashrc").write_text("source ~/.claude/shell-config/end-lock-helpers.sh\n")
    with open(home / ".claude" / "commands" / "end.md", "a") as f:
        f.write("4. push the notes repository\n")
    shown = readme_console("$ sessionward uninstall\nremoved ~/.claude/settings.json (install created it; nothing else was left in it)")
    assert on_a_terminal("uninstall") == [
        "removed ~/.claude/settings.json (install created it; nothing else was left in it)"] + shown
