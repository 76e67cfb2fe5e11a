"""The gevent engine: a journey run on one Locust user's client, step by step, reported to Locust.

It interprets the same model as the asyncio engine (``probes.engine``), with the same pure
pieces:
``Scopes`` (``new_scope``, made once per journey) and ``render_request`` for templating,
``require`` to skip ``finally`` steps whose inputs were never captured, ``probes.runs.expect.judge``
for assertions and captures. So both engines reach the same verdict, name the same failing step
and give the same ``Reason``.

>>> interpreter = Interpreter(user.client, variables=config.variables, location="local")
... # doctest: +SKIP
>>> interpreter.run(config.find_journey("app/login")).ok                  # doctest: +SKIP
True

A simulated customer calls ``simulate`` instead: the same run and the same entries, without
building a ``RunResult`` nobody reads.

Every step is one Locust request entry named ``channel/journey/step`` (its request type is the
HTTP method, or ``WS`` for a chat conversation), so templated URLs are grouped. Every run adds a
``JOURNEY`` entry named ``channel/journey`` with the duration of its main steps; a failed run's
message names the step, the reason and what went wrong.

Where it differs from the asyncio engine, on purpose:

* A simulated customer keeps its connections from one run to the next (Locust's client pools
  them); cookies are cleared before every attempt, as the asyncio engine starts a fresh session.
* A step's only phase is ``total``: geventhttpclient does not say where the time went.
* A step that never started (the journey's time ran out first) has no request entry: nothing was
  sent. The ``JOURNEY`` entry names it.
* The body is read whole, then checked against ``Limits.body_bytes``, where the asyncio engine's
  client stops reading. The header limit is geventhttpclient's own.
* Locust's failure table gets at most ``MAX_DISTINCT_MESSAGES`` messages per entry and reason;
  the ``StepResult`` keeps every message as it was.
* ``run_id`` is only drawn for a journey whose templates name it: a load test runs thousands
  of attempts a second, and these steps read the scope only through templates.

What is the same in every run of a journey (entry names, timeout messages, a request whose
templates name no variable, the client's options, the statuses that pass a step that checks
nothing else) is worked out once per simulated customer, on its first run: the per-request work
is what B5 (``bench.locust_overhead``) measures against a hand-written FastHttpUser.
"""

from __future__ import annotations

from locust.contrib.fasthttp import FastHttpSession, LocustBadStatusCode, ResponseContextManager

import errno
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import gevent  # type: ignore[import-untyped]
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from geventhttpclient.useragent import ConnectionError as ClientError
from geventhttpclient.useragent import RetriesExceeded

from loadtests._ws import WS_REQUEST_TYPE, Conversation
from probes import MissingVariable
from probes.model import (
    NO_SECRETS,
    Expect,
    HttpStep,
    Journey,
    Location,
    Scalar,
    Secrets,
    Step,
    WebSocketStep,
    format_duration,
    status_matches,
)
from probes.runs import (
    DEFAULT_LIMITS,
    Attempt,
    Failure,
    Limits,
    Outcome,
    Phase,
    Reason,
    Request,
    Response,
    RunResult,
    Scope,
    Scopes,
    StepResult,
    constant_request,
    judge,
    referenced,
    render_request,
    render_tls,
    require,
)

__all__ = ["JOURNEY_REQUEST_TYPE", "Interpreter", "JourneyFailed", "StepFailed"]

#: The request type of the one entry each journey run adds to Locust's statistics.
JOURNEY_REQUEST_TYPE: Final = "JOURNEY"
#: Distinct failure messages kept per entry and reason. Messages may hold run ids and captured
#: values; Locust keeps one failure row per distinct message, so a long run against a broken
#: journey would otherwise grow its failure table (and what workers send the master) unbounded.
MAX_DISTINCT_MESSAGES: Final = 10
_MS: Final = 1000.0
#: Every status code an HTTP response can have.
_STATUS_CODES: Final = range(100, 1000)
#: Connect errors: the request never reached the server (aiohttp's ClientConnectorError).
_CONNECT_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}
)
_GREENLET_EXIT: Final[type[BaseException]] = gevent.GreenletExit


class StepFailed(Exception):
    """A failed step as Locust's statistics show it: ``http_status: expected status 200, got
    503``. Reported as data, never raised. Locust groups failures by the ``repr`` of the
    exception, so ``repr`` is the readable line.
    """

    def __init__(self, failure: Failure) -> None:
        self.reason = failure.reason
        self.message = failure.message
        super().__init__(f"{failure.reason.value}: {failure.message}")

    def __repr__(self) -> str:
        return str(self)


class JourneyFailed(Exception):
    """A failed journey run: ``account: http_status: expected status 200, got 503``. Reported as
    data, never raised."""

    def __init__(self, step: str, failure: Failure) -> None:
        self.step = step
        self.reason = failure.reason
        self.message = failure.message
        super().__init__(f"{step}: {failure.reason.value}: {failure.message}")

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A step as this engine runs it, with what is the same in every run worked out once."""

    step: Step
    run: Callable[[Any, _Call], Failure | None]  # the runner of its kind
    name: str  # channel/journey/step: the Locust entry
    request_type: str
    limit: str | None  # its own timeout, for messages ("step timeout 2s"); None: it has none
    tls: bool  # it has ``tls`` options, which may hold templates
    request: Request | None = None  # HTTP: the request, when no template in it names a variable
    options: Mapping[str, Any] | None = None  # HTTP: that request's client options
    reads_headers: bool = False  # HTTP: an expectation or a capture reads response headers
    #: HTTP: the status codes that pass it, when its status is all it checks and it captures
    #: nothing; other codes go through ``judge``, which words the failure.
    passing: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class _JourneyPlan:
    """A journey as this engine runs it: its steps' plans and what makes its scopes (None:
    nothing in it names a variable or captures one, so every attempt shares ``_NO_VARIABLES``)."""

    journey: Journey
    id: str  # channel/journey: the JOURNEY entry
    steps: tuple[_Plan, ...]
    finally_steps: tuple[_Plan, ...]
    limit: str  # the journey's timeout, for messages ("journey timeout 10s")
    scopes: Scopes | None


@dataclass(frozen=True, slots=True)
class _Blame:
    """The step a failed attempt is blamed on, and how it failed."""

    step: str
    failure: Failure
    cleanup: bool  # a ``finally`` step: retrying would not mend the attempt


@dataclass(slots=True)
class _Call:
    """One step about to run: where it is, what it may use, and how long it has."""

    plan: _Plan
    journey: Journey
    scope: Scope
    budget: float  # seconds
    limit: str  # the timeout that sets the budget, for messages
    status: int | None = None
    target: str = ""  # what was contacted, for messages
    reported: bool = False  # the client has added this step's entry to Locust's statistics

    def timed_out(self, activity: str = "waiting for the response") -> Failure:
        return Failure(Reason.TIMEOUT, f"{self.limit} reached while {activity}")


class Interpreter:
    """Runs journeys on one Locust ``FastHttpSession`` (a user's ``self.client``).

    The session's request event receives every step's entry and every run's ``JOURNEY`` entry.
    One interpreter serves one simulated customer: Locust runs each user in its own greenlet.
    """

    def __init__(
        self,
        session: FastHttpSession,
        *,
        variables: Mapping[str, Scalar],
        location: str,
        coordinates: Location | None = None,
        limits: Limits = DEFAULT_LIMITS,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self.session = session
        self.variables = variables
        self.secrets = secrets  # hidden from every message Locust reports
        self.location = location
        self.coordinates = coordinates
        self.limits = limits
        self._runners: dict[type, Callable[[Any, _Call], Failure | None]] = {
            HttpStep: self._http,
            WebSocketStep: self._websocket,
        }
        self._plans: dict[int, _JourneyPlan] = {}  # by id(): a plan keeps its journey alive
        # What a step's timer throws when its time is up: a gevent.Timeout, so the client
        # handles it as its own timeout (locust's FAILURE_EXCEPTIONS), never armed itself.
        # One for this simulated customer: its steps run one at a time (it keeps the last
        # timeout's traceback until the next one).
        self._time_up = gevent.Timeout()

    def run(self, journey: Journey) -> RunResult:
        """Run ``journey``, retrying a failed attempt up to ``journey.retries`` times, as the
        asyncio engine does (a failed ``finally`` step is not retried), report it, and return
        what happened."""
        result = self._run(journey, keep=True)
        assert result is not None
        return result

    def simulate(self, journey: Journey) -> None:
        """What a simulated customer does: run and report ``journey`` as ``run`` does, without
        building a ``RunResult``. In a load test Locust's entries are the outcome; nothing
        reads the result, and building it is a fair part of the per-request work."""
        self._run(journey, keep=False)

    def _run(self, journey: Journey, *, keep: bool) -> RunResult | None:
        plan = self._plans.get(id(journey)) or self._plan(journey)
        started_at = time.time()
        attempts: list[Attempt] = []
        for number in range(1, journey.retries + 2):
            attempt, duration, blame = self._attempt(plan, number, keep=keep)
            if attempt is not None:
                attempts.append(attempt)
            if blame is None or blame.cleanup:  # as Attempt.retryable
                break
        self._report_run(plan, started_at, duration, blame)
        if not keep:
            return None
        return RunResult(
            channel=journey.channel,
            journey=journey.name,
            location=self.location,
            started_at=started_at,
            attempts=tuple(attempts),
        )

    def _plan(self, journey: Journey) -> _JourneyPlan:
        """The plan of ``journey``, made on its first run by this simulated customer."""
        plan = self._plans[id(journey)] = self._make_plan(journey)
        return plan

    def _make_plan(self, journey: Journey) -> _JourneyPlan:
        names = referenced(journey, self.variables)
        steps = journey.steps + journey.finally_steps
        captures = any(not isinstance(s, HttpStep) or s.capture for s in steps)
        scopes = None
        if names or captures:
            scopes = Scopes(
                journey,
                self.variables,
                location=self.location,
                coordinates=self.coordinates,
                run_id="run_id" in names,
            )
        return _JourneyPlan(
            journey,
            journey.id,
            steps=tuple(self._plan_step(journey, s) for s in journey.steps),
            finally_steps=tuple(self._plan_step(journey, s) for s in journey.finally_steps),
            limit=f"journey timeout {format_duration(journey.timeout)}",
            scopes=scopes,
        )

    def _plan_step(self, journey: Journey, step: Step) -> _Plan:
        limit = None if step.timeout is None else f"step timeout {format_duration(step.timeout)}"
        name = f"{journey.id}/{step.name}"
        run = self._runners.get(type(step), _unsupported)
        if not isinstance(step, HttpStep):
            tls = isinstance(step, WebSocketStep) and step.tls is not None
            return _Plan(step, run, name, WS_REQUEST_TYPE, limit, tls)
        request = constant_request(step, journey.device)
        reads_headers = bool(step.expect.headers) or any(
            c.header is not None for c in step.capture.values()
        )
        passing = None
        if step.expect == Expect(status=step.expect.status) and not step.capture:
            passing = frozenset(c for c in _STATUS_CODES if status_matches(step.expect.status, c))
        return _Plan(
            step,
            run,
            name,
            step.method,
            limit,
            tls=step.tls is not None,
            request=request,
            options=None if request is None else _options(step, request),
            reads_headers=reads_headers,
            passing=passing,
        )

    def _attempt(
        self, plan: _JourneyPlan, number: int, *, keep: bool
    ) -> tuple[Attempt | None, float, _Blame | None]:
        """One attempt (when ``keep``), its duration, and the step to blame, as
        ``Attempt.failed_step``: the first failed main step, else the first failed cleanup."""
        self.session.cookiejar.clear()
        scope = _NO_VARIABLES if plan.scopes is None else plan.scopes.new()
        results: list[StepResult] = []
        blame: _Blame | None = None
        started = time.perf_counter()
        deadline = started + plan.journey.timeout
        for step in plan.steps:
            failure, seconds, status = self._step(plan, step, scope, deadline)
            if keep:
                results.append(_result(step.step, failure, seconds, status, cleanup=False))
            if failure is not None:
                blame = _Blame(step.step.name, failure, cleanup=False)
                break
        duration = time.perf_counter() - started
        if plan.finally_steps:
            cleanup_deadline = time.perf_counter() + plan.journey.timeout
            for step in plan.finally_steps:
                try:
                    require(step.step, scope)  # before anything goes out, not on the answers
                except MissingVariable as exc:
                    if keep:
                        results.append(
                            StepResult(
                                step.step.name,
                                Outcome.SKIPPED,
                                message=f"not run: {exc}",
                                cleanup=True,
                            )
                        )
                    continue
                failure, seconds, status = self._step(plan, step, scope, cleanup_deadline)
                if keep:
                    results.append(_result(step.step, failure, seconds, status, cleanup=True))
                if failure is not None and blame is None:
                    blame = _Blame(step.step.name, failure, cleanup=True)
        if not keep:
            return None, duration, blame
        return Attempt(number=number, steps=tuple(results), duration=duration), duration, blame

    def _step(
        self, plan: _JourneyPlan, step: _Plan, scope: Scope, deadline: float
    ) -> tuple[Failure | None, float, int | None]:
        """Run one step: how it failed (None: it passed), its seconds and its HTTP status."""
        budget = deadline - time.perf_counter()
        timeout = step.step.timeout
        limit = plan.limit
        if timeout is not None and timeout <= budget:
            budget, limit = timeout, step.limit or limit
        if budget <= 0:
            return _LATE, 0.0, None
        call = _Call(step, plan.journey, scope, budget, limit)
        started = time.perf_counter()
        try:
            failure = step.run(render_tls(step.step, scope) if step.tls else step.step, call)
        except _GREENLET_EXIT:
            raise  # Locust is stopping this user: the run did not complete
        except MissingVariable as exc:  # validation makes this a bug, not a target failure
            failure = Failure(Reason.INTERNAL, str(exc))
        except RecursionError:  # json.loads on a hostile body such as [[[[...]]]]
            failure = Failure(Reason.PROTOCOL, "response JSON nested too deeply to parse")
        except Exception as exc:  # every target misbehaviour must become a failed step
            failure = _classify(exc, call.target, self.limits)
        seconds = time.perf_counter() - started
        failure = None if failure is None else self._redact(failure)
        if not call.reported:
            self._fire(step.request_type, step.name, seconds, failure)
        return failure, seconds, call.status

    def _redact(self, failure: Failure) -> Failure:
        """``failure`` with no secret in its message (``probes.model.secrets``)."""
        if not self.secrets:
            return failure
        return Failure(failure.reason, self.secrets.redact(failure.message))

    def _arm(self, seconds: float) -> Any:
        """A started libev timer that throws ``self._time_up`` into this greenlet after
        ``seconds``; close it when the step ends. What ``gevent.Timeout(seconds).start()``
        does, without a new exception object around the timer for every step: this is on the
        path of every request."""
        timer = gevent.get_hub().loop.timer(seconds)
        timer.start(gevent.getcurrent().throw, self._time_up, update=True)
        return timer

    # --- HTTP -------------------------------------------------------------------------------

    def _http(self, step: HttpStep, call: _Call) -> Failure | None:
        request, options = call.plan.request, call.plan.options
        if request is None or options is None:
            request = render_request(step, call.scope, call.journey.device)
            options = _options(step, request)
        call.target = request.url
        name = call.plan.name
        timer = self._arm(call.budget)
        try:
            if options:
                response: ResponseContextManager = self.session.request(
                    request.method, request.url, name=name, catch_response=True, **options
                )
            else:  # a plain call binds its arguments faster than one that unpacks a dict
                response = self.session.request(
                    request.method, request.url, name=name, catch_response=True
                )
        except gevent.Timeout as exc:
            if exc is not self._time_up:
                raise
            return call.timed_out()
        finally:
            timer.close()
        with response:  # leaving it adds the step's entry, as judged here (if nothing raised)
            failure = self._judge(step, call, response, request.url)
            if failure is None:
                response.success()  # type: ignore[no-untyped-call]  # locust: untyped
            else:
                failed = StepFailed(_MESSAGES.bounded(name, self._redact(failure)))
                response.failure(failed)  # type: ignore[no-untyped-call]  # locust: untyped
        call.reported = True
        return failure

    def _judge(
        self,
        step: HttpStep,
        call: _Call,
        response: ResponseContextManager,
        url: str,
    ) -> Failure | None:
        meta = response.request_meta
        error = meta.get("exception") or getattr(response, "error", None)
        if error is not None and not isinstance(error, LocustBadStatusCode):
            if error is self._time_up or getattr(error, "original", None) is self._time_up:
                return call.timed_out()
            return _classify(error, url, self.limits)
        status = call.status = response.status_code
        body = response.content or b""
        limit = self.limits.body_bytes
        if len(body) > limit:
            return Failure(Reason.PROTOCOL, f"response body larger than {limit} bytes")
        if call.plan.passing is not None and status in call.plan.passing:
            return None  # as judge would say, without building its Response
        headers: Mapping[str, str] = _NO_HEADERS
        if call.plan.reads_headers and response.headers is not None:
            headers = {k.lower(): v for k, v in response.headers.items()}
        seconds = meta["response_time"] / _MS
        answer = Response(status=status, headers=headers, body=body, duration=seconds)
        return judge(step.expect, step.capture, answer, call.scope)

    # --- WebSocket ----------------------------------------------------------------------------

    def _websocket(self, step: WebSocketStep, call: _Call) -> Failure | None:
        conversation = Conversation(
            step, call.scope, call.journey.device, max_message_bytes=self.limits.body_bytes
        )
        passed = False
        timer = self._arm(call.budget)
        try:
            failure = conversation.hold()
            passed = failure is None
        except gevent.Timeout as exc:
            if exc is not self._time_up:
                raise
            failure = call.timed_out(conversation.activity)
        finally:
            timer.close()
            call.status, call.target = conversation.status, conversation.url
            conversation.close(polite=passed)  # outside the step's time, bounded
        return failure

    # --- reporting ----------------------------------------------------------------------------

    def _report_run(
        self, plan: _JourneyPlan, started_at: float, duration: float, blame: _Blame | None
    ) -> None:
        """Add the run's ``JOURNEY`` entry: its final attempt's duration, and its step to
        blame."""
        exception: JourneyFailed | None = None
        if blame is not None:
            failure = _MESSAGES.bounded(plan.id, blame.failure)
            exception = JourneyFailed(blame.step, failure)
        self.session.request_event.fire(
            request_type=JOURNEY_REQUEST_TYPE,
            name=plan.id,
            response_time=duration * _MS,
            response_length=0,
            exception=exception,
            context={},
            start_time=started_at,
            url=None,
            response=None,
        )

    def _fire(self, request_type: str, name: str, seconds: float, failure: Failure | None) -> None:
        """Add a step's entry that the client did not add itself (a WebSocket conversation, a
        request cut short by the step's time budget)."""
        self.session.request_event.fire(
            request_type=request_type,
            name=name,
            response_time=seconds * _MS,
            response_length=0,
            exception=None if failure is None else StepFailed(_MESSAGES.bounded(name, failure)),
            context={},
            start_time=time.time() - seconds,
            url=None,
            response=None,
        )


class _Messages:
    """The distinct failure messages this process reported, per entry and reason."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, Reason], set[str]] = {}

    def bounded(self, name: str, failure: Failure) -> Failure:
        """``failure``, or once ``MAX_DISTINCT_MESSAGES`` messages were reported for this entry
        and reason, the same failure with a fixed message (see ``MAX_DISTINCT_MESSAGES``)."""
        seen = self._seen.setdefault((name, failure.reason), set())
        if failure.message in seen:
            return failure
        if len(seen) < MAX_DISTINCT_MESSAGES:
            seen.add(failure.message)
            return failure
        return Failure(
            failure.reason, f"(more than {MAX_DISTINCT_MESSAGES} distinct messages; see above)"
        )


#: Shared by every user of the process: they run as greenlets, one at a time.
_MESSAGES: Final = _Messages()


def _unsupported(step: Step, _: _Call) -> Failure:
    """The runner of a kind this engine cannot run (``loadtests.journeys`` leaves such journeys
    out of a load test)."""
    return Failure(Reason.INTERNAL, f"the Locust engine cannot run the step {step.name!r}")


#: What a step that reads no response header is given: nobody reads it, so nobody changes it.
_NO_HEADERS: Final[Mapping[str, str]] = {}


def _options(step: HttpStep, request: Request) -> dict[str, Any]:
    """The client's keyword arguments for ``request``, defaults left out (each costs a little on
    every request)."""
    options: dict[str, Any] = {}
    if request.headers:
        options["headers"] = request.headers
    if request.params:
        options["params"] = request.params
    if request.has_json:
        options["json"] = request.json
    if request.data is not None:
        options["data"] = request.data
    if not step.follow_redirects:
        options["allow_redirects"] = False
    return options


#: The scope of a journey that names no variable and captures none: nothing reads or writes it.
_NO_VARIABLES: Final = Scope()

#: A step the journey's time ran out before.
_LATE: Final = Failure(Reason.TIMEOUT, "the journey's timeout passed before this step began")


def _result(
    step: Step, failure: Failure | None, seconds: float, status: int | None, *, cleanup: bool
) -> StepResult:
    return StepResult(
        step.name,
        Outcome.PASSED if failure is None else Outcome.FAILED,
        {Phase.TOTAL: seconds},
        reason=failure.reason if failure else None,
        message=failure.message if failure else "",
        status=status,
        cleanup=cleanup,
    )


def _classify(error: BaseException, url: str, limits: Limits) -> Failure:
    """The reason and message for what geventhttpclient (or the socket under it) raised."""
    cause = getattr(error, "original", None)
    if isinstance(error, RetriesExceeded) and isinstance(cause, BaseException):
        error = cause  # the client's retry loop wraps the last error, even with 0 retries
    where = urlsplit(url) if url else None
    host = where.hostname if where else "the server"
    if isinstance(error, socket.gaierror):
        return Failure(Reason.DNS, f"cannot resolve {host}: {_os_message(error)}")
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return Failure(Reason.TLS, f"TLS failure with {host}: {_ssl_message(error)}")
    if isinstance(error, HTTPConnectionClosed):
        return Failure(Reason.CONNECT, "the server closed the connection without answering")
    if isinstance(error, socket.timeout | TimeoutError | gevent.Timeout):
        return Failure(Reason.TIMEOUT, "the client's network timeout passed")
    if isinstance(error, OSError) and error.errno in _CONNECT_ERRNOS:
        port = where.port if where and where.port else _default_port(where)
        return Failure(Reason.CONNECT, f"cannot connect to {host}:{port}: {_os_message(error)}")
    if isinstance(error, OSError):
        return Failure(Reason.CONNECT, f"connection lost: {_os_message(error)}")
    if isinstance(error, HTTPParseError):
        return Failure(Reason.PROTOCOL, f"malformed response: {error}")
    if isinstance(error, zlib.error):
        return Failure(Reason.PROTOCOL, f"broken response body: {error}")
    if isinstance(error, RetriesExceeded) and "Redirection limit" in str(error):
        return Failure(Reason.PROTOCOL, f"more than {limits.redirects} redirects")
    if isinstance(error, ClientError):
        return Failure(Reason.PROTOCOL, str(error))
    if isinstance(error, ValueError):  # a URL it cannot send, an encoding it cannot read
        return Failure(Reason.PROTOCOL, f"{error} ({url})" if url else str(error))
    return Failure(Reason.INTERNAL, f"{type(error).__name__}: {error}")


def _default_port(where: Any) -> int:
    return 443 if where is not None and where.scheme == "https" else 80


def _os_message(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _ssl_message(error: ssl.SSLError | ssl.CertificateError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate rejected ({error.verify_message})"
    reason = getattr(error, "reason", None)
    return str(reason or error)
