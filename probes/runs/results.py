"""What a journey run produced: plain, frozen data, shared by the engines and the exposition.

A failed step is not an exception: it is a StepResult with a ``reason`` from the closed enum
``Reason`` and a human ``message`` such as ``expected status 200, got 503``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.runs.experience import StepTraffic


class Reason(StrEnum):
    """Why a step failed. A closed set: alerts, dashboards and metric labels rely on it."""

    TIMEOUT = "timeout"  # the step or journey deadline passed
    DNS = "dns"  # the host name did not resolve
    CONNECT = "connect"  # no TCP connection, or it was dropped before a response
    TLS = "tls"  # handshake or certificate failure
    HTTP_STATUS = "http_status"  # the status code was not the expected one
    SLOW = "slow"  # answered correctly, but slower than expect.max_duration
    ASSERTION = "assertion"  # a header, body or JSON-path expectation failed
    CAPTURE = "capture"  # a value to capture for later steps was not in the response
    PROTOCOL = "protocol"  # a malformed or oversized response, a bad URL, too many redirects
    CALLBACK_TIMEOUT = "callback_timeout"  # no matching webhook event came within its time
    INTERNAL = "internal"  # a bug in carewatch itself; the message says what
    #: the agent itself ran out of file descriptors, socket buffers or memory: not the target
    AGENT_RESOURCES = "agent_resources"


class Phase(StrEnum):
    """Where a step's time went. ``total`` is the whole step, from request to last byte."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    WAIT = "wait"  # request sent -> first byte of the response
    RECEIVE = "receive"  # first byte -> last byte
    FIRST_REPLY = "first_reply"  # chat: first message sent -> first matching reply
    DELIVERY = "delivery"  # await: end of the previous step -> the inbound event
    TOTAL = "total"


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a finally step whose inputs were never captured


@dataclass(frozen=True, slots=True)
class Failure:
    """A reason and a message: how a failed check describes itself."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of one attempt."""

    name: str
    outcome: Outcome
    phases: Mapping[Phase, float] = field(default_factory=dict)
    reason: Reason | None = None
    message: str = ""
    status: int | None = None
    cleanup: bool = False  # it was a ``finally`` step
    cert_expiry: float | None = None  # Unix time the peer's TLS certificate expires
    traffic: StepTraffic | None = None  # what the step cost in network terms, if measured

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "outcome": self.outcome.value,
            "cleanup": self.cleanup,
            "status": self.status,
            "reason": self.reason.value if self.reason else None,
            "message": self.message,
            "phases_seconds": {p.value: round(v, 6) for p, v in self.phases.items()},
            "tls_cert_expiry": self.cert_expiry,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a journey; a run retries failed attempts up to the journey's ``retries``."""

    number: int
    steps: tuple[StepResult, ...]
    duration: float  # seconds, from the first main step to the end of the last one

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        """The step to blame: the first failed main step, else the first failed cleanup step."""
        failed = [s for s in self.steps if not s.ok]
        main = [s for s in failed if not s.cleanup]
        return next(iter(main or failed), None)

    @property
    def retryable(self) -> bool:
        """Whether a retry could mend this attempt: only when a main step failed. When only a
        ``finally`` step failed, running the journey again would create more test data."""
        failed = self.failed_step
        return failed is not None and not failed.cleanup

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed_step
        return {
            "attempt": self.number,
            "success": self.ok,
            "duration_seconds": round(self.duration, 6),
            "failed_step": failed.name if failed else None,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """A journey run after retries: what the exporter publishes."""

    channel: str
    journey: str
    location: str
    started_at: float  # Unix time of the first attempt's start
    attempts: tuple[Attempt, ...]

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def ok(self) -> bool:
        return self.final.ok

    @property
    def duration(self) -> float:
        return self.final.duration

    @property
    def retries(self) -> int:
        return len(self.attempts) - 1

    def to_dict(self) -> dict[str, Any]:
        failed = self.final.failed_step
        return {
            "channel": self.channel,
            "journey": self.journey,
            "location": self.location,
            "started_at": self.started_at,
            "success": self.ok,
            "duration_seconds": round(self.duration, 6),
            "failed_step": failed.name if failed else None,
            "reason": failed.reason.value if failed and failed.reason else None,
            "message": failed.message if failed else "",
            "attempts": [a.to_dict() for a in self.attempts],
        }
