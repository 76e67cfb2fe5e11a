"""The exit codes of every carewatch command, one ``IntEnum`` for all of them.

``carewatch serve``, ``check``, ``loadtest`` and ``demo`` (and ``python exporter.py``,
``python -m democare``, the load test's locustfile and the benchmarks) end with one of these, so
a script or a CI job reads them the same way whatever it ran; ``carewatch --help`` lists them:

>>> Exit.CONFIG, int(Exit.THRESHOLDS)
(<Exit.CONFIG: 2>, 99)
>>> Exit.FAILED.meaning
'it could not: a port taken, a process died, a tool missing'
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Exit(IntEnum):
    """How a carewatch command ended; ``meaning`` says it in words."""

    OK = 0
    FAILED = 1
    CONFIG = 2
    THRESHOLDS = 99

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: Final = {
    Exit.OK: "the command did what was asked",
    Exit.FAILED: "it could not: a port taken, a process died, a tool missing",
    Exit.CONFIG: "checks.yaml is invalid, or the command line is",
    Exit.THRESHOLDS: "a load test ran and at least one threshold broke (Locust's convention)",
}
