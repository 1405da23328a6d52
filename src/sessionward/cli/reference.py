"""The CLI reference in docs/CLI.md, generated from the command table (one source of truth).

`python -m sessionward.cli.reference --write` rewrites the generated block; a test fails
when the block is stale or a command is missing from it.
"""

import os
import sys

from sessionward.cli.main import COMMANDS, GLOBAL_OPTIONS
from sessionward.errors import EXIT_CODES

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m sessionward.cli.reference --write -->"
END = "<!-- END GENERATED REFERENCE -->"
DOC = os.path.join("docs", "CLI.md")


def render_reference() -> str:
    out = ["## Exit codes", "", "| code | meaning |", "| --- | --- |"]
    out += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    out += ["", "## Global options", "", "| option | meaning |", "| --- | --- |"]
    out += [f"| `{option}` | {meaning.replace('`', '')} |" for option, meaning in GLOBAL_OPTIONS]
    out += ["", "## Commands", ""]
    for command in COMMANDS:
        out += [f"### `sessionward {command.name}`", "", command.summary, "", "```", command.help_text(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def splice(document: str, reference: str) -> str:
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{reference}{END}{tail}"


def main(argv: list[str]) -> int:
    with open(DOC, encoding="utf-8") as f:
        current = f.read()
    wanted = splice(current, render_reference())
    if "--write" in argv:
        with open(DOC, "w", encoding="utf-8") as f:
            f.write(wanted)
        return 0
    if wanted != current:
        print(f"{DOC} is stale: run python -m sessionward.cli.reference --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
