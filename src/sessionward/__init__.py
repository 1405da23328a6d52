"""sessionward: run many Claude Code sessions at once without them destroying each other's work.

The Python API is the product; the `sessionward` command is a thin layer over it.
Import the feature modules directly (`sessionward.registry`); this package imports nothing
on purpose, so that `sessionward hook ...` stays cheap.
"""

__version__ = "0.1.0"
