"""``python -m carewatch``: the ``carewatch`` command."""

from __future__ import annotations

import sys

from carewatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
