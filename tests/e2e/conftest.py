"""Fixtures for end-to-end tests with the real Claude Code CLI (see claude_harness.py).

    def test_something(claude_home, mock_api, tmp_path):
        proj = tmp_path / "proj"; proj.mkdir()
        claude_home.add_hook("SessionStart", "sessionward hook SessionStart")
        result = claude_home.run([text("done")], cwd=proj).check()

Every test that uses these fixtures is marked `e2e` and `slow`. Without the CLI (no node/npm, registry down)
they skip with the reason, or fail under CI=true, where a missing CLI must not pass quietly.
"""

import os

import pytest

from e2e.claude_harness import ClaudeHome, ClaudeUnavailable, claude_version, find_claude
from e2e.mock_messages_api import MockMessagesAPI

# The versions the interactive tier (test_tui.py) drives: the pinned native build, and the
# last cli.js build run by node, which differs in what its TUI shows (both install through
# scripts/claude-code, which scripts/test runs for each).
TUI_VERSIONS = ("2.1.331", "2.1.112")

def pytest_collection_modifyitems(config, items):
    """Whatever runs the real CLI is `e2e` and `slow`, marked or not."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "claude_bin" in names or "tui" in names:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)
        if "tui" in names:
            item.add_marker(pytest.mark.tui)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def claude_bin() -> str:
    """Path of the pinned `claude` binary (installed by scripts/claude-code when missing)."""
    try:
        return find_claude()
    except ClaudeUnavailable as exc:
        reason = f"the real Claude Code CLI is not available: {exc}"
        if _in_ci():
            pytest.fail(reason + " (CI=true: e2e tests must run in CI)", pytrace=False)
        pytest.skip(reason)


def _unavailable(reason: str):
    if _in_ci():
        pytest.fail(reason + " (CI=true: e2e tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", params=TUI_VERSIONS)
def tui_claude(request) -> str:
    """The `claude` binary of one TUI_VERSIONS entry (the test runs once per version)."""
    try:
        return find_claude(request.param)
    except ClaudeUnavailable as exc:
        _unavailable(f"Claude Code {request.param} is not available: {exc}")


@pytest.fixture
def tui(tui_claude, tmp_path):
    """A tui_harness.Tui on the test's own $HOME (sessionward's hooks installed into it, as a
    user would), its tmux server and stub in a loopback-only network namespace. Closed after
    the test: every session killed, the server gone."""
    from e2e.tui_harness import Tui, TuiUnavailable
    from helpers import run_cli

    ran = run_cli("install")
    assert ran.returncode == 0, ran.stderr
    try:
        tui = Tui(tmp_path / "tui", os.environ["HOME"], tui_claude)
    except TuiUnavailable as exc:
        _unavailable(f"the TUI tier cannot run here: {exc}")
    yield tui
    tui.close()


@pytest.fixture(scope="session")
def claude_code_version(claude_bin) -> str:
    """e.g. "2.1.331"."""
    return claude_version(claude_bin)


@pytest.fixture
def mock_api():
    """A fresh scripted Messages API stub on 127.0.0.1 for this test."""
    api = MockMessagesAPI().start()
    yield api
    api.stop()


@pytest.fixture
def claude_home(claude_bin, mock_api):
    """A ClaudeHome on the test's own $HOME (tests/conftest.py makes it per test), so hooks
    and `sessionward` commands run by the test see the same HOME and SESSIONWARD_HOME.
    Sessions still running at the end are killed."""
    home = ClaudeHome(os.environ["HOME"], mock_api, claude_bin)
    yield home
    home.close()
