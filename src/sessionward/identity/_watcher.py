"""The watcher's script: `python -I -S _watcher.py FD PID START PATH [STAMP]`, started by
identity.life (the watcher itself, and what the arguments are: identity/_watching.py).

A few lines on purpose: Python compiles the script it runs at every start, but imports a
module from its cached bytecode (written by pip at install), and compiling the watcher took
about 1.5 ms of each pair's start. Never imported by sessionward.
"""

import sys

sys.path.insert(0, __file__.rpartition("/")[0])  # this directory: -I leaves it off the path
from _watching import main  # noqa: E402 - found through the line above

sys.exit(main(sys.argv))
