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


def _architecture_modules(text: str) -> tuple[set, set]:
    """The modules docs/ARCHITECTURE.md's layer picture names, as paths under src/sessionward:
    (every name that may be a module, those written with .py). In a box titled `PKG/`, a
    word (with or without .py) is a module of PKG, `../NAME.py` a top-level one; elsewhere a
    word ending in .py is a path (`locks.py`, `cli/entry.py`). Boxes may stand side by side:
    a box is the columns between its ┌ and ┐, down to its └."""
    picture = text.split("## Modules, in layers", 1)[1].split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    width = max(map(len, picture))
    grid = [line.ljust(width) for line in picture]
    named, with_py = set(), set()
    outside = [list(line) for line in grid]  # what no package box covers
    word = r"(?:\.\./)?[\w*-]+(?:/[\w*-]+)*(?:\.\w+)?"
    for top, line in enumerate(grid):
        for opened in re.finditer(r"┌─ (\S+)[^┐]*┐", line):
            package = opened.group(1)
            if not package.endswith("/"):
                continue
            left, right = opened.start(), opened.end() - 1
            bottom = next(k for k in range(top + 1, len(grid)) if grid[k][left] == "└")
            for k in range(top, bottom + 1):
                for col in range(left, right + 1):
                    outside[k][col] = " "
            for k in range(top + 1, bottom):
                for name in re.findall(word, grid[k][left + 1:right]):
                    path = name[3:] if name.startswith("../") else package + name
                    path = path if path.endswith(".py") else path + ".py"
                    named.add(path)
                    if name.endswith(".py"):
                        with_py.add(path)
    for line in outside:
        for name in re.findall(word, "".join(line)):
            if name.endswith(".py"):
                named.add(name)
                with_py.add(name)
    return named, with_py


def test_architecture_lists_every_module():
    import ast

    src = os.path.join(ROOT, "src", "sessionward")
    modules = set()
    for folder, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.relpath(os.path.join(folder, name), src)
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                body = ast.parse(f.read()).body
            marker_only = name == "__init__.py" and os.sep in path and len(body) <= 1 and all(
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)
            if not marker_only:  # a package's docstring-only __init__.py: the package is the box
                modules.add(path.replace(os.sep, "/"))
    named, with_py = _architecture_modules(read("docs/ARCHITECTURE.md"))
    missing = sorted(modules - named)
    assert not missing, f"docs/ARCHITECTURE.md's layer picture does not name these modules: {missing}"
    gone = sorted(path for path in with_py if not os.path.exists(os.path.join(src, path)))
    assert not gone, f"docs/ARCHITECTURE.md names modules that do not exist: {gone}"
