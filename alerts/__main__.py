"""``python -m alerts``: see ``alerts.command``."""

from __future__ import annotations

import sys

from alerts.command import main

sys.exit(main())
