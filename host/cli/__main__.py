"""``python -m host.cli``: the same as the ``onemap`` command."""

import sys

from host.cli import main

sys.exit(main())
