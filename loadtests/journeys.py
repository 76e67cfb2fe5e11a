"""Which journeys a load test runs, how each takes part, and why the others are left out.

A journey takes part when the Locust engine can run every one of its steps and its ``loadtest:``
section does not skip it. The others are excluded before the test starts, each with a reason that
the locustfile prints and the report records:

>>> [(journey_id, reason) for journey_id, reason in excluded(config, location="local")]
... # doctest: +SKIP
[('sms/text-care-number', "await step 'reply': callback round trips (SMS replies, push
receipts, inbound email) are not run by the Locust engine yet"), ...]

This module imports neither locust nor gevent, so anything may import it (the report does).
"""

from __future__ import annotations

from typing import Final

from probes.model import (
    AwaitStep,
    Config,
    DnsStep,
    HttpStep,
    Journey,
    JourneyLoadTest,
    SmtpStep,
    Step,
    TcpStep,
    WebSocketStep,
)

#: What the Locust engine says about each step kind it cannot run yet.
_NOT_RUN: Final[dict[type, str]] = {
    AwaitStep: "callback round trips (SMS replies, push receipts, inbound email) are not run by "
    "the Locust engine yet",
    SmtpStep: "SMTP steps are not run by the Locust engine yet",
    TcpStep: "TCP steps are not run by the Locust engine yet",
    DnsStep: "DNS steps are not run by the Locust engine yet",
}
_KIND: Final[dict[type, str]] = {
    HttpStep: "HTTP step",
    WebSocketStep: "WebSocket step",
    AwaitStep: "await step",
    SmtpStep: "SMTP step",
    TcpStep: "TCP step",
    DnsStep: "DNS step",
}
#: Loaded when a journey has no ``loadtest:`` section of its own.
DEFAULT_SETTINGS: Final = JourneyLoadTest()


def settings(journey: Journey) -> JourneyLoadTest:
    """The journey's ``loadtest:`` section (weight, wait between runs, tags, skip), or the
    defaults when it has none: weight 1, a wait of 1 to 3 s, no tags of its own."""
    return journey.loadtest if journey.loadtest is not None else DEFAULT_SETTINGS


def tags(journey: Journey, kind: str) -> tuple[str, ...]:
    """The Locust tags of a journey's user: its channel, the channel's kind, then its own.

    ``--tags app`` runs the app channel's journeys; ``--tags chat`` every chat journey.
    """
    seen: dict[str, None] = dict.fromkeys((journey.channel, kind, *settings(journey).tags))
    return tuple(seen)


def unsupported(step: Step) -> str | None:
    """Why the Locust engine cannot run ``step``, or None when it can."""
    kind = _KIND.get(type(step), type(step).__name__)
    reason = _NOT_RUN.get(type(step))
    if reason is not None:
        return f"{kind} {step.name!r}: {reason}"
    if isinstance(step, HttpStep | WebSocketStep) and step.tls is not None:
        return f"{kind} {step.name!r}: tls options are not applied by the Locust engine yet"
    return None


def exclusion(journey: Journey, *, location: str) -> str | None:
    """Why ``journey`` is left out of a load test run as ``location``, or None."""
    if settings(journey).skip:
        return "loadtest.skip is true"
    if not journey.runs_at(location):
        where = ", ".join(journey.locations or ())
        return f"runs only at {where}; this load test runs as {location}"
    for step in (*journey.steps, *journey.finally_steps):
        reason = unsupported(step)
        if reason is not None:
            return reason
    return None


def excluded(config: Config, *, location: str) -> list[tuple[str, str]]:
    """Every journey left out of a load test run as ``location``: ``[(journey_id, reason)]``."""
    out: list[tuple[str, str]] = []
    for journey in config.journeys:
        reason = exclusion(journey, location=location)
        if reason is not None:
            out.append((journey.id, reason))
    return out


def included(config: Config, *, location: str) -> list[Journey]:
    """The journeys a load test run as ``location`` runs, in checks.yaml order."""
    return [j for j in config.journeys if exclusion(j, location=location) is None]
