import os
import sys

try:
    bytes(16777216)  # room to run, mapped and given back untouched (cli/entry.py: HEADROOM_BYTES)
except MemoryError:
    hook = sys.argv[1:2] == ["hook"]  # cli/entry.py's lines: OUT_OF_MEMORY_HOOK, OUT_OF_MEMORY_CLI
    os.write(2, b"sessionward hook: out of memory (a memory limit such as ulimit -v?); the action goes on unguarded\n"
             if hook else b"sessionward: out of memory (a memory limit such as ulimit -v?); the command stopped "
             b"(state files are replaced whole or not at all)\n")
    sys.exit(1 if hook else 3)
from sessionward.cli.entry import finish, main  # noqa: E402

finish(main())
