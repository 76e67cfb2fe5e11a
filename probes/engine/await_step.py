"""Await steps: wait for the inbound webhook event that answers what an earlier step sent.

The step matches the events of its webhook (``await: {callback: NAME}``) with JSON-path
assertions, evaluated as an HTTP step's ``expect.json`` is, on the event's JSON body or its form
fields: ``{path: $.Body, contains: "${run_id}"}`` correlates an SMS reply with the run that sent
the SMS. Its ``delivery`` phase is the time from the end of the previous step (the send) to the
event's arrival.
"""

from __future__ import annotations

import time
from typing import Final

from probes.engine.runner import StepContext
from probes.engine.webhooks import Event
from probes.errors import WebhookTimeout
from probes.model.durations import format_duration
from probes.model.steps import AwaitStep
from probes.runs.expect import Response, describe, json_problem, take
from probes.runs.results import Failure, Phase, Reason

#: The runner stops waiting this long before the step's limit (its ``within``), so that it, not
#: the engine's timeout, reports the miss: the event loop may wake up late and fire both timers
#: in one go, and then the engine's would win and call it a plain ``timeout``.
AHEAD: Final = 0.05
#: The status of the receiver's answer to the event, for captures and messages.
ACCEPTED: Final = 200


async def run_await(step: AwaitStep, ctx: StepContext) -> Failure | None:
    """Wait for the first event of the step's webhook that matches, and take its captures."""
    spec = step.await_
    hub = ctx.webhooks
    if hub is None:
        return Failure(Reason.INTERNAL, "no callback receiver in this engine")
    ctx.timer.spent = {Phase.WAIT: 0.0}
    ctx.target = f"callback {spec.callback}"
    scope = ctx.scope
    # Rendered now, so a value missing from the run fails the step here rather than in the hub.
    wanted = " and ".join(describe(assertion, scope) for assertion in spec.match)

    def matches(event: Event) -> bool:
        if not spec.match:
            return True
        return event.document is not None and all(
            json_problem(assertion, event.document, scope) is None for assertion in spec.match
        )

    left = spec.within - (time.perf_counter() - ctx.timer.start) - AHEAD
    try:
        event = await hub.wait(spec.callback, matches, max(left, 0.0))
    except WebhookTimeout as exc:
        matching = f"matching {wanted} " if wanted else ""
        return Failure(
            Reason.CALLBACK_TIMEOUT,
            f"no {spec.callback} callback {matching}within {format_duration(spec.within)} "
            f"({_unmatched(exc.unmatched)})",
        )
    ctx.timer.enter(None)
    # An event can come before the send step has finished reading its own answer.
    ctx.timer.spent[Phase.DELIVERY] = max(0.0, event.received_at - ctx.previous_end)
    values, failure = take(step.capture, _response(event, time.perf_counter() - ctx.timer.start))
    scope.update(values)
    return failure


def _response(event: Event, duration: float) -> Response:
    response = Response(status=ACCEPTED, headers=event.headers, body=event.body, duration=duration)
    if event.document is not None:
        response._json = event.document  # a form's fields are what ``{json: $.Body}`` reads
    return response


def _unmatched(count: int) -> str:
    if count == 0:
        return "no unmatched event arrived"
    return f"{count} unmatched event{'' if count == 1 else 's'} arrived"
