import sys

from sessionward.cli.main import main

sys.exit(main())
