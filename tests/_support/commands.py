"""Run the ``carewatch`` command in a fresh interpreter, as a user would.

``carewatch`` here is ``python -m carewatch`` with this repository first on the path, so the
tests need no reinstall of the console script; tests/carewatch/test_install.py checks the
installed command itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Final

from tests._support.paths import REPO

#: What a short subcommand (check, --help, demo with a port taken) may take on a loaded machine.
COMMAND_SECONDS: Final = 60.0

Carewatch = Callable[..., subprocess.CompletedProcess[str]]


def environment(**extra: str) -> dict[str, str]:
    """The test's environment with this repository first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
