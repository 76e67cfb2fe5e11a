"""The asyncio engine: runs a journey's steps with aiohttp and times every phase.

>>> engine = Engine(config.variables, location="paris")         # doctest: +SKIP
>>> result = await engine.run(config.find_journey("app/login"))  # doctest: +SKIP
>>> result.ok, result.final.failed_step                          # doctest: +SKIP
(False, StepResult(name='login', reason=<Reason.HTTP_STATUS: 'http_status'>, ...))

Every attempt opens a fresh client (new connections, DNS and cookies), as a customer opening
the app would; the steps of one attempt share it, keep-alive included. No exception escapes
``Engine.run``: whatever a target does, it becomes a failed step with a reason.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import Final

import aiohttp

from probes.durations import format_duration
from probes.errors import MissingVariable
from probes.expect import Response, check, take
from probes.interpret import Scope, new_scope, render_request, require
from probes.model import HttpStep, Journey, Scalar
from probes.results import Attempt, Failure, Outcome, Phase, Reason, RunResult, StepResult

#: A larger body is a failed step (reason protocol): a hostile target cannot exhaust memory.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
MAX_REDIRECTS: Final = 10
_READ_CHUNK: Final = 64 * 1024
_NO_TIMEOUT: Final = aiohttp.ClientTimeout(
    total=None, connect=None, sock_read=None, sock_connect=None
)


_ACTIVITY: Final = {
    Phase.DNS: "resolving the host name",
    Phase.CONNECT: "connecting",
    Phase.WAIT: "waiting for the response",
    Phase.RECEIVE: "reading the response body",
}


class _Timer:
    """Phase timings of one step, fed by aiohttp's tracing signals (perf_counter seconds).

    A state machine: each signal closes the phase in progress and opens the next, so a step cut
    short by a timeout still shows where its time went.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.spent = dict.fromkeys((Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.RECEIVE), 0.0)
        self.current: Phase | None = Phase.WAIT
        self._since = self.start

    def enter(self, phase: Phase | None) -> float:
        now = time.perf_counter()
        if self.current is not None:
            self.spent[self.current] += now - self._since
        self.current, self._since = phase, now
        return now

    @property
    def activity(self) -> str:
        return _ACTIVITY.get(self.current, "sending the request") if self.current else "finishing"

    def phases(self) -> dict[Phase, float]:
        """Every phase's seconds so far, with ``total`` from the start to now or to the end."""
        end = self.enter(None) if self.current is not None else self._since
        return {**self.spent, Phase.TOTAL: end - self.start}


def _signal(phase: Phase) -> Callable[[object, SimpleNamespace, object], Awaitable[None]]:
    async def enter(_: object, ctx: SimpleNamespace, __: object) -> None:
        timer: _Timer = ctx.trace_request_ctx
        timer.enter(phase)

    return enter


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig(trace_config_ctx_factory=SimpleNamespace)
    trace.on_request_start.append(_signal(Phase.WAIT))
    trace.on_connection_create_start.append(_signal(Phase.CONNECT))
    trace.on_dns_resolvehost_start.append(_signal(Phase.DNS))
    trace.on_dns_resolvehost_end.append(_signal(Phase.CONNECT))
    trace.on_connection_create_end.append(_signal(Phase.WAIT))
    trace.on_request_end.append(_signal(Phase.RECEIVE))
    # aiohttp signals request_start once per request, not per redirect hop: the next hop's
    # request goes out at once, often on the same kept-alive connection (no connection signal).
    trace.on_request_redirect.append(_signal(Phase.WAIT))
    trace.freeze()
    return trace


class Engine:
    """Runs journeys over HTTP with aiohttp, in the calling event loop."""

    def __init__(
        self,
        variables: Mapping[str, Scalar],
        *,
        location: str,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.variables = variables
        self.location = location
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_body = max_body_bytes
        self._trace = _trace_config()

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
            failed = attempt.failed_step
            if failed is None or failed.cleanup:
                break  # a retry would not mend cleanup, and would make more test data
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
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0, enable_cleanup_closed=False)
        async with aiohttp.ClientSession(
            connector=connector,
            trace_configs=[self._trace],
            timeout=_NO_TIMEOUT,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            skip_auto_headers=("User-Agent",) if journey.device else (),
        ) as session:
            scope = new_scope(journey, self.variables, location=self.location)
            started = time.perf_counter()
            deadline = loop.time() + journey.timeout
            for step in journey.steps:
                result = await self._step(session, step, scope, journey, deadline, cleanup=False)
                results.append(result)
                if not result.ok:
                    break
            duration = time.perf_counter() - started
            cleanup_deadline = loop.time() + journey.timeout
            for step in journey.finally_steps:
                results.append(
                    await self._step(session, step, scope, journey, cleanup_deadline, cleanup=True)
                )
        return Attempt(number=number, steps=tuple(results), duration=duration)

    async def _step(
        self,
        session: aiohttp.ClientSession,
        step: HttpStep,
        scope: Scope,
        journey: Journey,
        deadline: float,
        *,
        cleanup: bool,
    ) -> StepResult:
        try:
            if cleanup:
                require(step, scope)  # before the request goes out, not when checking its answer
            request = render_request(step, scope, journey.device)
        except MissingVariable as exc:
            if cleanup:
                return StepResult(
                    step.name, Outcome.SKIPPED, message=f"not run: {exc}", cleanup=True
                )
            return _failed(step, Failure(Reason.INTERNAL, str(exc)), {}, None, cleanup)
        loop = asyncio.get_running_loop()
        budget = deadline - loop.time()
        if step.timeout is not None:
            budget = min(budget, step.timeout)
        timer = _Timer()
        if budget <= 0:
            late = Failure(Reason.TIMEOUT, "the journey's timeout passed before this step began")
            return _failed(step, late, timer.phases(), None, cleanup)
        status: int | None = None
        try:
            async with asyncio.timeout(budget):
                async with session.request(
                    request.method,
                    request.url,
                    params=request.params or None,
                    headers=request.headers,
                    json=request.json if request.has_json else None,
                    data=request.data,
                    allow_redirects=step.follow_redirects,
                    max_redirects=MAX_REDIRECTS,
                    trace_request_ctx=timer,
                ) as resp:
                    status = resp.status
                    body = await self._read(resp)
                    phases = timer.phases()
                    headers = {k.lower(): v for k, v in resp.headers.items()}
        except TimeoutError:
            what = timer.activity
            phases = timer.phases()
            if step.timeout is not None and step.timeout <= budget:
                limit = f"step timeout {format_duration(step.timeout)}"
            else:
                limit = f"journey timeout {format_duration(journey.timeout)}"
            timed_out = Failure(Reason.TIMEOUT, f"{limit} reached while {what}")
            return _failed(step, timed_out, phases, status, cleanup)
        except Exception as exc:  # every target misbehaviour must become a failed step
            return _failed(step, _classify(exc, request.url), timer.phases(), status, cleanup)
        response = Response(status=status, headers=headers, body=body, duration=phases[Phase.TOTAL])
        failure: Failure | None
        try:
            failure = check(step.expect, response, scope)
            if failure is None:
                values, failure = take(step.capture, response)
                scope.update(values)
        except RecursionError:  # json.loads on a hostile body such as [[[[...]]]]
            failure = Failure(Reason.PROTOCOL, "response JSON nested too deeply to parse")
        except Exception as exc:  # e.g. jsonpath-ng sorting mixed types: a failed step, not a crash
            failure = Failure(Reason.INTERNAL, f"cannot check the response: {exc!r}")
        if failure is not None:
            return _failed(step, failure, phases, status, cleanup)
        return StepResult(step.name, Outcome.PASSED, phases, status=status, cleanup=cleanup)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                raise _BodyTooLarge(self._max_body)
            chunks.append(chunk)
        return b"".join(chunks)


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")


def _failed(
    step: HttpStep,
    failure: Failure,
    phases: Mapping[Phase, float],
    status: int | None,
    cleanup: bool,
) -> StepResult:
    return StepResult(
        step.name,
        Outcome.FAILED,
        phases,
        reason=failure.reason,
        message=failure.message,
        status=status,
        cleanup=cleanup,
    )


def _classify(exc: BaseException, url: str) -> Failure:
    """The reason and message for an exception raised while talking to a target."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Failure(Reason.DNS, f"cannot resolve {exc.host}: {_os_message(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Failure(Reason.TLS, f"certificate of {exc.host} rejected: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return Failure(Reason.TLS, f"TLS handshake failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure(
            Reason.CONNECT, f"cannot connect to {exc.host}:{exc.port}: {_os_message(exc)}"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure(Reason.CONNECT, "the server closed the connection without answering")
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return Failure(Reason.CONNECT, f"connection lost: {_os_message(exc)}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Failure(Reason.PROTOCOL, f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, aiohttp.InvalidURL):
        return Failure(Reason.PROTOCOL, f"invalid URL {url!r}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure(Reason.PROTOCOL, f"broken response body: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure(Reason.PROTOCOL, f"malformed response: {exc.message}")
    if isinstance(exc, _BodyTooLarge | aiohttp.ClientError):
        return Failure(Reason.PROTOCOL, str(exc) or type(exc).__name__)
    return Failure(Reason.INTERNAL, f"{type(exc).__name__}: {exc}")


def _os_message(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None) or exc
    return getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__
