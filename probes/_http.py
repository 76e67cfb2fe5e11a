"""HTTP steps on aiohttp: one exchange, timed phase by phase through aiohttp's tracing."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Final

import aiohttp

from probes._runner import StepContext
from probes._timing import Timer
from probes.expect import Response, check, take
from probes.interpret import render_request
from probes.results import Failure, Phase, Reason
from probes.steps import HttpStep

MAX_REDIRECTS: Final = 10
_READ_CHUNK: Final = 64 * 1024


def _signal(phase: Phase) -> Callable[[object, SimpleNamespace, object], Awaitable[None]]:
    async def enter(_: object, ctx: SimpleNamespace, __: object) -> None:
        timer: Timer = ctx.trace_request_ctx
        timer.enter(phase)

    return enter


def trace_config() -> aiohttp.TraceConfig:
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


async def run_http(step: HttpStep, ctx: StepContext) -> Failure | None:
    """Send ``step``'s request, check the response and take its captures."""
    request = render_request(step, ctx.scope, ctx.journey.device)
    ctx.target = request.url
    async with ctx.session.request(
        request.method,
        request.url,
        params=request.params or None,
        headers=request.headers,
        json=request.json if request.has_json else None,
        data=request.data,
        allow_redirects=step.follow_redirects,
        max_redirects=MAX_REDIRECTS,
        ssl=ctx.tls.context(step.tls) if step.tls is not None else True,
        server_hostname=step.tls.server_name if step.tls is not None else None,
        trace_request_ctx=ctx.timer,
    ) as resp:
        ctx.status = resp.status
        body = await read_capped(resp.content, ctx.max_body_bytes)
        total = ctx.timer.phases()[Phase.TOTAL]
        headers = {k.lower(): v for k, v in resp.headers.items()}
    response = Response(status=resp.status, headers=headers, body=body, duration=total)
    failure = check(step.expect, response, ctx.scope)
    if failure is None:
        values, failure = take(step.capture, response)
        ctx.scope.update(values)
    return failure


async def read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or BodyTooLarge past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")


def classify(exc: BaseException, url: str) -> Failure:
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
    if isinstance(exc, BodyTooLarge | aiohttp.ClientError):
        return Failure(Reason.PROTOCOL, str(exc) or type(exc).__name__)
    return Failure(Reason.INTERNAL, f"{type(exc).__name__}: {exc}")


def _os_message(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None) or exc
    return getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__
