"""Run the ``carewatch`` command in a fresh interpreter, as a user would.

``carewatch`` here is ``python -m carewatch`` with this repository first on the path, so the
tests need no reinstall of the console script; tests/carewatch/test_install.py checks the
installed command itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

#: What a short subcommand (check, --help, demo with a port taken) may take on a loaded machine.
COMMAND_SECONDS = 60.0

Carewatch = Callable[..., subprocess.CompletedProcess[str]]


def environment(**extra: str) -> dict[str, str]:
    """The test's environment with this repository first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture
def carewatch(tmp_path: Path) -> Carewatch:
    """``carewatch(*args, cwd=tmp_path, timeout=COMMAND_SECONDS)``: the finished command."""

    def run(
        *args: str, cwd: Path = tmp_path, timeout: float = COMMAND_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carewatch", *args],
            cwd=cwd,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
