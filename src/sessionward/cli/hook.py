"""hook, status-line: the commands Claude Code runs (settings.json points at them)."""

from sessionward.cli.render import Output


def run_hook(values: dict) -> Output:
    from sessionward.hooks import main

    return Output("hook", {}, exit_code=main([values["event"]]))


def run_status_line(values: dict) -> Output:
    """`status-line --json` and the like (a bare `sessionward status-line` goes straight to
    hooks.status_line.main, from cli.entry)."""
    from sessionward.hooks.status_line import read_input, status_row

    row = status_row(read_input())
    return Output("status-line", {"row": row}, lambda style: [row])
