"""The launcher's entry point. `sessionward hook <Event>` goes straight to the hook runner,
without importing the command table, parser and renderer: Claude Code runs it before and
after every tool call, and those imports would be most of its cost. Everything else goes
to cli.main."""

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["hook"] and "-h" not in argv and "--help" not in argv:
        from sessionward.hooks import main as hook_main

        return hook_main(argv[1:])
    from sessionward.cli.main import main as cli_main

    return cli_main(argv)
