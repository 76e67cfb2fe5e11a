"""The real tools the tests drive (Debian bookworm's Prometheus 2.42 and Alertmanager 0.25),
found through ``democare.stack``'s ``Tool``s, or the test failed with how to install them.

A missing tool fails the test: it is never skipped, since a skipped check would let broken
rules through. ``make test`` installs them (``make system-deps``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

import pytest

from democare.stack import ALERTMANAGER, AMTOOL, PROMETHEUS, PROMTOOL, Tool, ToolMissing

#: The checkers by command name, for ``run_tool``.
CHECKERS: Final = {tool.title: tool for tool in (PROMTOOL, AMTOOL)}
#: What one run may take on a loaded 2-core machine (promtool tests the demo's rules in ~5 s).
TOOL_SECONDS: Final = 180.0


def tool(wanted: Tool) -> str:
    """The path of ``wanted``, or the test fails with how to install it."""
    try:
        return wanted.path()
    except ToolMissing as exc:
        pytest.fail(str(exc))


def require_tools() -> None:
    """Fail (never skip) when Prometheus or Alertmanager is missing."""
    for wanted in (PROMETHEUS, ALERTMANAGER):
        tool(wanted)


def run_tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``name args...`` (``promtool`` or ``amtool``) in ``cwd``, its output captured (both
    streams in ``stdout``)."""
    return subprocess.run(
        [tool(CHECKERS[name]), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TOOL_SECONDS,
    )
