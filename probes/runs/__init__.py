"""What both engines share about a run: its results, its variable scope, how an answer is judged,
how a chat conversation goes (``Receiving``: each engine's transport only moves the messages),
the experience estimate, the limits on what a target may send back, and the tables that turn a
transport's exceptions into reasons.

Engine-neutral: nothing here does I/O or imports an event loop, so the asyncio engine
(``probes.engine``) and the Locust engine (``loadtests``) interpret a journey the same way.
"""

from __future__ import annotations

from probes.runs.chat import (
    CLOSE_WAIT,
    SWITCHING_PROTOCOLS,
    Receiving,
    broken,
    closed,
    refused,
    say,
    too_large,
)
from probes.runs.expect import Response, describe, json_problem, judge, take
from probes.runs.experience import StepTraffic, estimate, round_trips
from probes.runs.limits import DEFAULT_LIMITS, Limits
from probes.runs.reasons import Caught, classify
from probes.runs.results import (
    Attempt,
    Failure,
    Outcome,
    Phase,
    Reason,
    RunResult,
    StepResult,
)
from probes.runs.scope import (
    Request,
    Scope,
    Scopes,
    constant_request,
    new_scope,
    referenced,
    render_headers,
    render_request,
    render_tls,
    require,
)

__all__ = [
    "CLOSE_WAIT",
    "DEFAULT_LIMITS",
    "SWITCHING_PROTOCOLS",
    "Attempt",
    "Caught",
    "Failure",
    "Limits",
    "Outcome",
    "Phase",
    "Reason",
    "Receiving",
    "Request",
    "Response",
    "RunResult",
    "Scope",
    "Scopes",
    "StepResult",
    "StepTraffic",
    "broken",
    "classify",
    "closed",
    "constant_request",
    "describe",
    "estimate",
    "json_problem",
    "judge",
    "new_scope",
    "referenced",
    "refused",
    "render_headers",
    "render_request",
    "render_tls",
    "require",
    "round_trips",
    "say",
    "take",
    "too_large",
]
