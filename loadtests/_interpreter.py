"""The gevent engine: a journey run on one Locust user's client, step by step, reported to Locust.

It interprets the same model as the asyncio engine (``probes.engine``), with the same pure pieces:
``new_scope`` and ``render_request`` for templating, ``require`` to skip ``finally`` steps whose
inputs were never captured, ``probes.expect.check`` and ``take`` for assertions and captures. So
both engines reach the same verdict, name the same failing step and give the same ``Reason``.

>>> interpreter = Interpreter(user.client, variables=config.variables, location="local")
... # doctest: +SKIP
>>> interpreter.run(config.find_journey("app/login")).ok                  # doctest: +SKIP
True

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
* The body is read whole, then checked against ``MAX_BODY_BYTES``, where aiohttp stops reading.
* Locust's failure table gets at most ``MAX_DISTINCT_MESSAGES`` messages per entry and reason;
  the ``StepResult`` keeps every message as it was.
"""

from __future__ import annotations

import locust  # noqa: F401  # isort: skip  (first: gevent monkey-patches the standard library)

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
from locust.contrib.fasthttp import FastHttpSession, LocustBadStatusCode, ResponseContextManager

from loadtests._ws import WS_REQUEST_TYPE, Conversation
from probes._types import Scalar
from probes.durations import format_duration
from probes.errors import MissingVariable
from probes.expect import Response, judge
from probes.interpret import Scope, new_scope, render_request, render_tls, require
from probes.model import Journey, Location
from probes.results import Attempt, Failure, Outcome, Phase, Reason, RunResult, StepResult
from probes.steps import HttpStep, Step, WebSocketStep

__all__ = ["JOURNEY_REQUEST_TYPE", "MAX_REDIRECTS", "Interpreter", "JourneyFailed", "StepFailed"]

#: The request type of the one entry each journey run adds to Locust's statistics.
JOURNEY_REQUEST_TYPE: Final = "JOURNEY"
#: As the asyncio engine: more redirects than this is a failed step (reason protocol).
MAX_REDIRECTS: Final = 10
#: As the asyncio engine: a larger body is a failed step (reason protocol).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: Distinct failure messages kept per entry and reason. Messages may hold run ids and captured
#: values; Locust keeps one failure row per distinct message, so a long run against a broken
#: journey would otherwise grow its failure table (and what workers send the master) unbounded.
MAX_DISTINCT_MESSAGES: Final = 10
_MS: Final = 1000.0
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


@dataclass(slots=True)
class _Call:
    """One step about to run: where it is, what it may use, and how long it has."""

    journey: Journey
    scope: Scope
    name: str  # channel/journey/step: the Locust entry
    request_type: str
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
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.session = session
        self.variables = variables
        self.location = location
        self.coordinates = coordinates
        self._max_body = max_body_bytes
        self._runners: dict[type, Callable[[Any, _Call], Failure | None]] = {
            HttpStep: self._http,
            WebSocketStep: self._websocket,
        }

    def run(self, journey: Journey) -> RunResult:
        """Run ``journey``, retrying a failed attempt up to ``journey.retries`` times, as the
        asyncio engine does (a failed ``finally`` step is not retried), and report it."""
        started_at = time.time()
        attempts: list[Attempt] = []
        for number in range(1, journey.retries + 2):
            attempt = self._attempt(journey, number)
            attempts.append(attempt)
            if not attempt.retryable:
                break
        result = RunResult(
            channel=journey.channel,
            journey=journey.name,
            location=self.location,
            started_at=started_at,
            attempts=tuple(attempts),
        )
        self._report_run(journey, result)
        return result

    def _attempt(self, journey: Journey, number: int) -> Attempt:
        self.session.cookiejar.clear()
        scope = new_scope(
            journey, self.variables, location=self.location, coordinates=self.coordinates
        )
        results: list[StepResult] = []
        started = time.perf_counter()
        deadline = started + journey.timeout
        for step in journey.steps:
            result = self._step(journey, step, scope, deadline, cleanup=False)
            results.append(result)
            if not result.ok:
                break
        duration = time.perf_counter() - started
        cleanup_deadline = time.perf_counter() + journey.timeout
        for step in journey.finally_steps:
            results.append(self._step(journey, step, scope, cleanup_deadline, cleanup=True))
        return Attempt(number=number, steps=tuple(results), duration=duration)

    def _step(
        self, journey: Journey, step: Step, scope: Scope, deadline: float, *, cleanup: bool
    ) -> StepResult:
        if cleanup:
            try:
                require(step, scope)  # before anything goes out, not when checking answers
            except MissingVariable as exc:
                return StepResult(
                    step.name, Outcome.SKIPPED, message=f"not run: {exc}", cleanup=True
                )
        budget = deadline - time.perf_counter()
        if step.timeout is not None and step.timeout <= budget:
            budget, limit = step.timeout, f"step timeout {format_duration(step.timeout)}"
        else:
            limit = f"journey timeout {format_duration(journey.timeout)}"
        if budget <= 0:
            late = Failure(Reason.TIMEOUT, "the journey's timeout passed before this step began")
            return _result(step, late, 0.0, None, cleanup)
        call = _Call(
            journey,
            scope,
            name=f"{journey.id}/{step.name}",
            request_type=step.method if isinstance(step, HttpStep) else WS_REQUEST_TYPE,
            budget=budget,
            limit=limit,
        )
        started = time.perf_counter()
        try:
            failure = self._runners[type(step)](render_tls(step, scope), call)
        except _GREENLET_EXIT:
            raise  # Locust is stopping this user: the run did not complete
        except MissingVariable as exc:  # validation makes this a bug, not a target failure
            failure = Failure(Reason.INTERNAL, str(exc))
        except RecursionError:  # json.loads on a hostile body such as [[[[...]]]]
            failure = Failure(Reason.PROTOCOL, "response JSON nested too deeply to parse")
        except Exception as exc:  # every target misbehaviour must become a failed step
            failure = _classify(exc, call.target)
        seconds = time.perf_counter() - started
        if not call.reported:
            self._fire(call.request_type, call.name, seconds, failure)
        return _result(step, failure, seconds, call.status, cleanup)

    # --- HTTP -------------------------------------------------------------------------------

    def _http(self, step: HttpStep, call: _Call) -> Failure | None:
        request = render_request(step, call.scope, call.journey.device)
        call.target = request.url
        timer = gevent.Timeout(call.budget)
        timer.start()
        try:
            response: ResponseContextManager = self.session.request(
                request.method,
                request.url,
                name=call.name,
                catch_response=True,
                headers=request.headers,
                params=request.params or None,
                json=request.json if request.has_json else None,
                data=request.data,
                allow_redirects=step.follow_redirects,
            )
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            return call.timed_out()
        finally:
            timer.close()
        with response:  # leaving it adds the step's entry, as judged here (if nothing raised)
            failure = self._judge(step, call, response, timer, request.url)
            if failure is None:
                response.success()  # type: ignore[no-untyped-call]  # locust: untyped
            else:
                failed = StepFailed(_MESSAGES.bounded(call.name, failure))
                response.failure(failed)  # type: ignore[no-untyped-call]  # locust: untyped
        call.reported = True
        return failure

    def _judge(
        self,
        step: HttpStep,
        call: _Call,
        response: ResponseContextManager,
        timer: object,
        url: str,
    ) -> Failure | None:
        error = response.request_meta.get("exception") or getattr(response, "error", None)
        if error is not None and not isinstance(error, LocustBadStatusCode):
            if error is timer or getattr(error, "original", None) is timer:
                return call.timed_out()
            return _classify(error, url)
        call.status = response.status_code
        body = response.content or b""
        if len(body) > self._max_body:
            return Failure(Reason.PROTOCOL, f"response body larger than {self._max_body} bytes")
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        seconds = float(response.request_meta["response_time"]) / _MS
        answer = Response(status=call.status, headers=headers, body=body, duration=seconds)
        return judge(step.expect, step.capture, answer, call.scope)

    # --- WebSocket ----------------------------------------------------------------------------

    def _websocket(self, step: WebSocketStep, call: _Call) -> Failure | None:
        conversation = Conversation(
            step, call.scope, call.journey.device, max_message_bytes=self._max_body
        )
        passed = False
        timer = gevent.Timeout(call.budget)
        timer.start()
        try:
            failure = conversation.hold()
            passed = failure is None
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            failure = call.timed_out(conversation.activity)
        finally:
            timer.close()
            call.status, call.target = conversation.status, conversation.url
            conversation.close(polite=passed)  # outside the step's time, bounded
        return failure

    # --- reporting ----------------------------------------------------------------------------

    def _report_run(self, journey: Journey, result: RunResult) -> None:
        failed = result.final.failed_step
        exception: JourneyFailed | None = None
        if failed is not None:
            failure = Failure(failed.reason or Reason.INTERNAL, failed.message)
            exception = JourneyFailed(failed.name, _MESSAGES.bounded(journey.id, failure))
        self.session.request_event.fire(
            request_type=JOURNEY_REQUEST_TYPE,
            name=journey.id,
            response_time=result.duration * _MS,
            response_length=0,
            exception=exception,
            context={},
            start_time=result.started_at,
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


def _result(
    step: Step, failure: Failure | None, seconds: float, status: int | None, cleanup: bool
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


def _classify(error: BaseException, url: str) -> Failure:
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
        return Failure(Reason.PROTOCOL, f"more than {MAX_REDIRECTS} redirects")
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
