"""The real tools the alert tests drive: promtool (Debian's ``prometheus``) and amtool
(``prometheus-alertmanager``), the versions Debian bookworm ships.

A missing tool fails the test, saying how to install it: it is never skipped, since a skipped
check would let broken rules through. ``make test`` installs both (``make system-deps``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

#: Each tool's Debian package.
PACKAGES: Final = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}
#: What one run may take on a loaded 2-core machine (promtool tests the demo's rules in ~5 s).
TOOL_SECONDS: Final = 180.0


def tool(name: str) -> str:
    """The path of ``name``, or the test fails with how to install it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is missing: run `make system-deps` (as root: apt-get install {PACKAGES[name]})"
        )
    return found


def run_tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``name args...`` in ``cwd``, its output captured (both streams in ``stdout``)."""
    return subprocess.run(
        [tool(name), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TOOL_SECONDS,
    )
