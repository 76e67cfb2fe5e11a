"""The asyncio engine: runs a journey's steps, each kind with its runner, and times every phase.

>>> engine = Engine(config.variables, location="paris", secrets=config.secrets)  # doctest: +SKIP
>>> result = await engine.run(config.find_journey("app/login"))     # doctest: +SKIP
>>> result.ok, result.final.failed_step.reason                      # doctest: +SKIP
(False, <Reason.HTTP_STATUS: 'http_status'>)

HTTP steps run on carewatch's own client (``probes.net.client``); WebSocket steps on aiohttp,
sharing that client's cookies; TCP, DNS and SMTP steps on their own transports. Every attempt
opens a fresh client (new connections, DNS and cookies), as a customer opening the app would; the
steps of one attempt share it, keep-alive included. No exception escapes ``Engine.run``: whatever
a target does, it becomes a failed step with a reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final

from probes.engine.await_step import run_await
from probes.engine.dns_step import run_dns
from probes.engine.http_step import run_http
from probes.engine.runner import Runner, StepContext
from probes.engine.smtp_step import run_smtp
from probes.engine.tcp_step import run_tcp
from probes.engine.webhooks import WebhookHub
from probes.engine.websocket_step import WEBSOCKET_FAILURES, run_websocket
from probes.errors import MissingVariable
from probes.model.config import Journey, Location
from probes.model.durations import format_duration
from probes.model.secrets import NO_SECRETS, Secrets
from probes.model.steps import AwaitStep, DnsStep, HttpStep, SmtpStep, Step, TcpStep, WebSocketStep
from probes.model.types import Scalar
from probes.net.client import HTTP_FAILURES, Client
from probes.net.sockets import SOCKET_FAILURES
from probes.net.timing import Timer
from probes.net.tls import TlsContexts
from probes.runs.limits import DEFAULT_LIMITS, Limits
from probes.runs.reasons import Caught, classify
from probes.runs.results import Attempt, Failure, Outcome, Reason, RunResult, StepResult
from probes.runs.scope import new_scope, render_tls, require


class Engine:
    """Runs journeys in the calling event loop, one runner per step kind (``RUNNERS``)."""

    def __init__(
        self,
        variables: Mapping[str, Scalar],
        *,
        location: str,
        coordinates: Location | None = None,
        limits: Limits = DEFAULT_LIMITS,
        webhooks: WebhookHub | None = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self.variables = variables
        self.secrets = secrets  # hidden from every message (probes.model.secrets)
        self.location = location
        self.coordinates = coordinates
        self.webhooks = webhooks
        self.limits = limits
        self._tls = TlsContexts()

    async def run(self, journey: Journey) -> RunResult:
        """Run ``journey``, retrying a failed attempt up to ``journey.retries`` times.

        Only a failed main step is retried: when only a ``finally`` step failed, the run fails
        at once, since running the journey again would create more test data to clean up.
        """
        started_at = time.time()
        attempts: list[Attempt] = []
        for number in range(1, journey.retries + 2):
            attempt = await self._attempt(journey, number)
            attempts.append(attempt)
            if not attempt.retryable:
                break
        return RunResult(
            channel=journey.channel,
            journey=journey.name,
            location=self.location,
            started_at=started_at,
            attempts=tuple(attempts),
        )

    async def _attempt(self, journey: Journey, number: int) -> Attempt:
        loop = asyncio.get_running_loop()
        results: list[StepResult] = []
        client = Client(limits=self.limits, user_agent=journey.device is None)
        try:
            started = time.perf_counter()
            base = StepContext(
                client=client,
                scope=new_scope(
                    journey, self.variables, location=self.location, coordinates=self.coordinates
                ),
                journey=journey,
                timer=Timer(),
                tls=self._tls,
                limits=self.limits,
                cleanup=False,
                previous_end=started,
                webhooks=self.webhooks,
            )
            deadline = loop.time() + journey.timeout
            for step in journey.steps:
                result = await self._step(step, base, deadline, cleanup=False)
                base.previous_end = time.perf_counter()
                results.append(result)
                if not result.ok:
                    break
            duration = time.perf_counter() - started
            cleanup_deadline = loop.time() + journey.timeout
            for step in journey.finally_steps:
                results.append(await self._step(step, base, cleanup_deadline, cleanup=True))
                base.previous_end = time.perf_counter()
        finally:
            await client.close()
        return Attempt(number=number, steps=tuple(results), duration=duration)

    async def _step(
        self, step: Step, base: StepContext, deadline: float, *, cleanup: bool
    ) -> StepResult:
        """The step's result, its message redacted: it goes to logs, ``/probe`` and reports."""
        result = await self._run_step(step, base, deadline, cleanup=cleanup)
        if not (result.message and self.secrets):
            return result
        return replace(result, message=self.secrets.redact(result.message))

    async def _run_step(
        self,
        step: Step,
        base: StepContext,
        deadline: float,
        *,
        cleanup: bool,
    ) -> StepResult:
        try:
            if cleanup:
                require(step, base.scope)  # before anything goes out, not when checking answers
        except MissingVariable as exc:
            return StepResult(step.name, Outcome.SKIPPED, message=f"not run: {exc}", cleanup=True)
        budget = deadline - asyncio.get_running_loop().time()
        if step.timeout is not None:
            budget = min(budget, step.timeout)
        ctx = replace(base, timer=Timer(), cleanup=cleanup, status=None, cert_expiry=None)
        if budget <= 0:
            late = Failure(Reason.TIMEOUT, "the journey's timeout passed before this step began")
            return _result(step, ctx, late)
        runner = RUNNERS[type(step)]
        try:
            async with asyncio.timeout(budget):
                failure = await runner(render_tls(step, ctx.scope), ctx)
        except TimeoutError:
            what = ctx.timer.activity
            if step.timeout is not None and step.timeout <= budget:
                limit = f"step timeout {format_duration(step.timeout)}"
            else:
                limit = f"journey timeout {format_duration(ctx.journey.timeout)}"
            failure = Failure(Reason.TIMEOUT, f"{limit} reached while {what}")
        except MissingVariable as exc:  # validation makes this a bug, not a target failure
            failure = Failure(Reason.INTERNAL, str(exc))
        except RecursionError:  # json.loads on a hostile body such as [[[[...]]]]
            failure = Failure(Reason.PROTOCOL, "response JSON nested too deeply to parse")
        except Exception as exc:  # every target misbehaviour must become a failed step
            failure = classify(exc, FAILURES[type(step)], ctx.target) or Failure(
                Reason.INTERNAL, f"{type(exc).__name__}: {exc}"
            )
        return _result(step, ctx, failure)


#: The runner of each step kind.
RUNNERS: Final[dict[type, Runner]] = {
    HttpStep: run_http,
    WebSocketStep: run_websocket,
    AwaitStep: run_await,
    TcpStep: run_tcp,
    DnsStep: run_dns,
    SmtpStep: run_smtp,
}
#: The table of each step kind's transport, for what its runner raises (``probes.runs.reasons``);
#: what no row matches is a bug in carewatch (reason ``internal``). DNS and await steps turn
#: their transport's failures into results themselves: the message needs the server asked, or
#: the event awaited.
FAILURES: Final[dict[type, Sequence[Caught[str]]]] = {
    HttpStep: HTTP_FAILURES,
    WebSocketStep: WEBSOCKET_FAILURES,
    AwaitStep: (),
    TcpStep: SOCKET_FAILURES,
    DnsStep: (),
    SmtpStep: SOCKET_FAILURES,
}


def _result(step: Step, ctx: StepContext, failure: Failure | None) -> StepResult:
    phases = ctx.timer.phases()
    meter = ctx.timer.traffic
    return StepResult(
        step.name,
        Outcome.PASSED if failure is None else Outcome.FAILED,
        phases,
        reason=failure.reason if failure else None,
        message=failure.message if failure else "",
        status=ctx.status,
        cleanup=ctx.cleanup,
        cert_expiry=ctx.cert_expiry,
        traffic=meter.traffic(phases) if meter.requests else None,  # None: not measured
    )
