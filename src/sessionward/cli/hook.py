"""hook, status-line: the commands Claude Code runs (settings.json points at them)."""

import sys

from sessionward.cli.render import Output

MAX_STATUS_INPUT_BYTES = 1 << 20  # Claude Code's statusLine JSON is a few hundred bytes


def run_hook(values: dict) -> Output:
    from sessionward.hooks import main

    return Output("hook", {}, exit_code=main([values["event"]]))


def run_status_line(values: dict) -> Output:
    from sessionward.hooks.status_line import status_row

    from sessionward._atomic import read_capped

    try:
        raw = read_capped(sys.stdin.fileno(), MAX_STATUS_INPUT_BYTES) if not sys.stdin.isatty() else b""
    except (OSError, ValueError, AttributeError):
        raw = b""
    row = status_row(raw)
    return Output("status-line", {"row": row}, lambda style: [row])
