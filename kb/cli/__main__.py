"""``python -m kb.cli``: the same as the ``kb`` console script."""

import sys

from kb.cli.main import main

sys.exit(main())
