"""Packaging facts written in more than one place agree: the version, the supported Pythons."""

import importlib.metadata
import os
import re
import sys

import sessionward

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name: str) -> str:
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def pyproject() -> dict:
    return tomllib.loads(read("pyproject.toml"))


def test_the_version_is_written_once():
    project = pyproject()
    assert "version" not in project["project"], "pyproject.toml writes the version: it is __version__'s"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/sessionward/__init__.py"
    # a literal, so that `--version` and the hook path need no importlib.metadata
    assert re.search(r'^__version__ = "[0-9][^"]*"$', read("src/sessionward/__init__.py"), re.M)
    assert importlib.metadata.version("sessionward") == sessionward.__version__, "reinstall: pip install -e ."


def test_the_oldest_and_newest_python_agree_everywhere():
    project = pyproject()["project"]
    oldest = re.fullmatch(r">=(3\.\d+)", project["requires-python"]).group(1)
    listed = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
              if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    script = read("scripts/test")
    assert re.search(rf"^OLDEST_PYTHON={re.escape(oldest)}$", script, re.M), "scripts/test tests another oldest"
    newest = re.search(r"^NEWEST_PYTHON=(3\.\d+)$", script, re.M).group(1)
    minor = [int(v.split(".")[1]) for v in listed]
    assert minor == list(range(int(oldest.split(".")[1]), int(newest.split(".")[1]) + 1)), listed


def test_the_package_says_it_is_typed():
    assert os.path.isfile(os.path.join(os.path.dirname(sessionward.__file__), "py.typed"))
    assert "Typing :: Typed" in pyproject()["project"]["classifiers"]


def test_the_changelog_starts_with_unreleased_changes():
    headings = re.findall(r"^## \[([^\]]+)\]", read("CHANGELOG.md"), re.M)
    assert headings and headings[0] == "Unreleased", headings
