"""The running agent: the scheduler that starts each journey on time, the exposition of its
results, and the HTTP endpoints (``/metrics``, ``/-/reload``, ``/callbacks/<name>``, ...) that
``carewatch serve`` serves (``serve``), behind the limits of its connections
(``LimitedRunner``) and secured by a web config (``load_web_config``, ``secure``).
"""

from __future__ import annotations

from probes.service.agent import DEFAULT_MAX_PROBES, Service, changing_step
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
from probes.service.webconfig import (
    DISABLEABLE,
    Endpoint,
    WebConfig,
    load_web_config,
    parse_endpoints,
    secure,
)

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PROBES",
    "DEFAULT_READ_TIMEOUT",
    "DISABLEABLE",
    "Endpoint",
    "Exposition",
    "LimitedRunner",
    "Scheduler",
    "ServerLimits",
    "Service",
    "WebConfig",
    "changing_step",
    "load_web_config",
    "loop_now",
    "offset",
    "parse_endpoints",
    "secure",
    "serve",
    "server_limits",
]
