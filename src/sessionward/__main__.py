import os
import sys

try:
    bytes(16777216)  # room to run, mapped and given back untouched (cli/entry.py: HEADROOM_BYTES)
except MemoryError:
    os.write(2, b"sessionward: out of memory (a memory limit such as ulimit -v?)\n")
    sys.exit(1 if sys.argv[1:2] == ["hook"] else 3)
from sessionward.cli.entry import finish, main  # noqa: E402

finish(main())
