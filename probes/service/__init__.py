"""The running agent: the scheduler that starts each journey on time, the exposition of its
results, and the HTTP endpoints (``/metrics``, ``/-/reload``, ``/callbacks/<name>``, ...) that
``carewatch serve`` serves (``serve``).
"""

from __future__ import annotations

from probes.service.agent import Service
from probes.service.exposition import Exposition
from probes.service.scheduler import DEFAULT_MAX_CONCURRENCY, Scheduler, loop_now, offset
from probes.service.server import serve

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "Exposition",
    "Scheduler",
    "Service",
    "loop_now",
    "offset",
    "serve",
]
