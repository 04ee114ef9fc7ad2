"""``python -m asyncroute``: the ``asyncroute`` command (see :mod:`asyncroute.cli`)."""

import sys

from .cli import main

sys.exit(main())
