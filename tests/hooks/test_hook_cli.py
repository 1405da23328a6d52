"""`sessionward hook` on a bad command line: exit 1 (fail open) with one line, never the usage
code 2, which Claude Code reads as "block this tool call"."""

import subprocess

import pytest

from helpers import SESSIONWARD, run_cli

KNOWN = "SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, PermissionRequest, Notification, Stop, SessionEnd"
USAGE = "sessionward hook: expected one event name, e.g. 'sessionward hook PreToolUse'\n"


@pytest.mark.parametrize(
    "args, line",
    [
        ((), USAGE),
        (("SessionStart", "extra"), USAGE),
        (("PreToolUse", "--json"), USAGE),
        (("--bogus",), f"sessionward hook --bogus: unknown event '--bogus' (known: {KNOWN})\n"),
        (("Bogus",), f"sessionward hook Bogus: unknown event 'Bogus' (known: {KNOWN})\n"),
        (("pretooluse",), f"sessionward hook pretooluse: unknown event 'pretooluse' (known: {KNOWN})\n"),
        (("",), f"sessionward hook : unknown event '' (known: {KNOWN})\n"),
    ],
)
def test_bad_command_line_fails_open_with_one_line(args, line):
    result = run_cli("hook", *args, input='{"session_id": "x", "cwd": "/", "hook_event_name": "Stop"}')
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line)


def test_bad_command_line_with_stdin_closed():
    for args in ((), ("--bogus",), ("PreToolUse",)):
        result = subprocess.run([SESSIONWARD, "hook", *args], stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 1 and result.stdout == "", result
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result


def test_hook_help_is_not_a_failure():
    result = run_cli("hook", "--help")
    assert result.returncode == 0 and "hook" in result.stdout and result.stderr == ""
