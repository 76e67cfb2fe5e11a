"""The ``carewatch`` fixture: the command run in a fresh interpreter (tests/_support/commands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._support.commands import COMMAND_SECONDS, Carewatch, environment


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
