"""``python -m archsearch.cli`` (also under torchrun): the command line without the installed script."""

import sys

from archsearch.cli import main

sys.exit(main())
