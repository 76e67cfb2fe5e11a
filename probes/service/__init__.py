"""The running agent: the scheduler that starts each journey on time, the exposition of its
results, and the HTTP endpoints (``/metrics``, ``/-/reload``, ``/callbacks/<name>``, ...) that
``carewatch serve`` serves (``serve``), behind the limits of its connections (``LimitedRunner``).
"""

from __future__ import annotations

from probes.service.agent import Service
from probes.service.connections import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    LimitedRunner,
    ServerLimits,
    server_limits,
)
from probes.service.exposition import Exposition
from probes.service.scheduler import DEFAULT_MAX_CONCURRENCY, Scheduler, loop_now, offset
from probes.service.server import serve

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READ_TIMEOUT",
    "Exposition",
    "LimitedRunner",
    "Scheduler",
    "ServerLimits",
    "Service",
    "loop_now",
    "offset",
    "serve",
    "server_limits",
]
