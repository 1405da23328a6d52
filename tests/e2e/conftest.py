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

def pytest_collection_modifyitems(config, items):
    """Whatever runs the real CLI is `e2e` and `slow`, marked or not."""
    for item in items:
        if "claude_bin" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


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
