"""The exit codes of every carewatch command, one ``IntEnum`` for all of them.

``carewatch serve``, ``check``, ``loadtest`` and ``demo`` (and ``python exporter.py``,
``python -m democare``, the load test's locustfile and the benchmarks) end with one of these, so
a script or a CI job reads them the same way whatever it ran:

>>> Exit.CONFIG, int(Exit.THRESHOLDS)
(<Exit.CONFIG: 2>, 99)
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """How a carewatch command ended."""

    OK = 0
    """The command did what was asked."""
    FAILED = 1
    """It could not: a port taken, a process died, a tool missing."""
    CONFIG = 2
    """checks.yaml is invalid, or the command line is (argparse's own code for bad usage)."""
    THRESHOLDS = 99
    """A load test ran and at least one threshold broke (Locust's convention, as k6's)."""
