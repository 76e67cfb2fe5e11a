"""``python -m dashboards``: see ``dashboards.command``."""

from __future__ import annotations

import sys

from dashboards.command import main

sys.exit(main())
