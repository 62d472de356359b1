"""``python -m archsearch``: the command line without the installed script."""

import sys

from archsearch.cli import main

sys.exit(main())
