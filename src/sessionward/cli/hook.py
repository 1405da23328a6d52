"""status-line --json: the one command Claude Code runs that goes through the parser.

`sessionward hook <Event>` never does: its one way in is sessionward.hooks.main, reached
before any parsing (cli.entry.is_hook_call), so that it exits 0 or 1, never the usage code 2."""

from sessionward.cli.render import Output


def run_status_line(values: dict) -> Output:
    """`status-line --json` and the like (a bare `sessionward status-line` goes straight to
    hooks.status_line.main, from cli.entry)."""
    from sessionward.hooks.status_line import read_input, status_row

    row = status_row(read_input())
    return Output("status-line", {"row": row}, lambda style: [row])
