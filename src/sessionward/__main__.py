import sys

from sessionward.cli.entry import main

sys.exit(main())
