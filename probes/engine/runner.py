"""The contract between the engine and a step kind's runner.

The engine owns what every kind shares: the time budget and its timeout, skipping cleanup that
lacks its inputs, turning exceptions into reasons, and the StepResult. A runner only talks to
its target: it reads the step and ``StepContext``, calls ``ctx.timer.enter(phase)`` as it goes,
sets ``ctx.status`` (and ``ctx.cert_expiry``) when it learns them, puts captures in
``ctx.scope``, and returns a Failure or None. It may raise what its transport raises: the engine
reads it with that transport's table (``probes.engine.engine.FAILURES``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from probes.engine.webhooks import WebhookHub
from probes.model.config import Journey
from probes.net.client import Client
from probes.net.timing import Timer
from probes.net.tls import TlsContexts
from probes.runs.limits import Limits
from probes.runs.results import Failure
from probes.runs.scope import Scope


@dataclass(slots=True)
class StepContext:
    """What a runner may use while it runs one step."""

    client: Client  # the attempt's HTTP client: connections kept alive, cookies
    scope: Scope  # variables; a runner adds its captures here
    journey: Journey
    timer: Timer
    tls: TlsContexts
    limits: Limits  # what a target may send back
    cleanup: bool
    previous_end: float  # perf_counter() when the previous step ended, or the attempt began
    webhooks: WebhookHub | None = None  # where await steps wait for their inbound event
    status: int | None = None  # protocol status learned (HTTP status, SMTP reply code...)
    cert_expiry: float | None = None  # Unix time the peer's certificate expires
    target: str = ""  # what was contacted, for messages


Runner = Callable[[Any, StepContext], Awaitable[Failure | None]]
