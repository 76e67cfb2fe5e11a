"""HTTP steps on aiohttp: one exchange, timed phase by phase through aiohttp's tracing.

The TLS handshake of an https step is timed apart from TCP by ``probes._connector`` (the
engine's connector), and a TLS failure is named by kind with ``probes._tls``.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Final

import aiohttp

from probes._connector import TlsWatch, watching_tls
from probes._runner import StepContext
from probes._timing import Timer
from probes._tls import (
    TlsSetupError,
    certificate_expiry,
    describe_tls_error,
    presented_certificate,
    ssl_reason,
)
from probes._traffic import add_traffic_signals
from probes.expect import Response, judge
from probes.interpret import render_request
from probes.results import Failure, Phase, Reason
from probes.steps import HttpStep

MAX_REDIRECTS: Final = 10
_READ_CHUNK: Final = 64 * 1024
#: The phases of an https step, in order; ``tls`` is 0 on a kept-alive connection.
HTTPS_PHASES: Final = (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT, Phase.RECEIVE)


def _signal(phase: Phase) -> Callable[[object, SimpleNamespace, object], Awaitable[None]]:
    async def enter(_: object, ctx: SimpleNamespace, __: object) -> None:
        timer: Timer | None = ctx.trace_request_ctx
        if timer is not None:  # ws_connect passes no context: the WebSocket runner times itself
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
    add_traffic_signals(trace)  # for the network-experience estimate
    trace.freeze()
    return trace


async def run_http(step: HttpStep, ctx: StepContext) -> Failure | None:
    """Send ``step``'s request, check the response and take its captures."""
    request = render_request(step, ctx.scope, ctx.journey.device)
    ctx.target = request.url
    if request.url[:6].lower() == "https:":
        ctx.timer.spent = {p: ctx.timer.spent.get(p, 0.0) for p in HTTPS_PHASES} | ctx.timer.spent
    with watching_tls(ctx.timer) as tls:
        try:
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
                ctx.cert_expiry = tls.cert_expiry
                body = await read_capped(resp.content, ctx.max_body_bytes)
                ctx.timer.traffic.bytes_received += len(body)
                total = ctx.timer.phases()[Phase.TOTAL]
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except aiohttp.ClientConnectorCertificateError as exc:
            return await _certificate_rejected(exc, step, ctx)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            refused = _session_refused(exc, step, tls, ctx)
            if refused is None:
                raise
            return refused
        finally:
            if ctx.cert_expiry is None:
                ctx.cert_expiry = tls.cert_expiry
    response = Response(status=resp.status, headers=headers, body=body, duration=total)
    return judge(step.expect, step.capture, response, ctx.scope)


async def _certificate_rejected(
    exc: aiohttp.ClientConnectorCertificateError, step: HttpStep, ctx: StepContext
) -> Failure:
    """Name the kind of rejection, with the dates and names of the certificate if it can be had."""
    ctx.timer.enter(None)  # the step ends here: reading the certificate again is not its time
    name = step.tls.server_name if step.tls is not None and step.tls.server_name else exc.host
    certificate = None
    if exc.port is not None:
        certificate = await presented_certificate(exc.host, exc.port, server_name=name)
    ctx.cert_expiry = certificate_expiry(certificate)
    message = describe_tls_error(exc.certificate_error, host=name, certificate=certificate)
    return Failure(Reason.TLS, message)


def _session_refused(
    exc: Exception, step: HttpStep, tls: TlsWatch, ctx: StepContext
) -> Failure | None:
    """A TLS failure for a connection dropped before any answer, if the server never finished the
    TLS 1.3 handshake; None if the drop was something else."""
    if ctx.status is not None or isinstance(exc, aiohttp.ClientConnectorError):
        return None
    if not tls.unfinished_handshake():
        return None
    what = "rejected" if step.tls is not None and step.tls.cert_file else "required"
    return Failure(
        Reason.TLS,
        f"client certificate {what} by the server (it dropped the connection before "
        "finishing the TLS handshake)",
    )


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
    if isinstance(exc, TlsSetupError):
        return Failure(Reason.TLS, str(exc))
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Failure(Reason.DNS, f"cannot resolve {exc.host}: {_os_message(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Failure(Reason.TLS, describe_tls_error(exc.certificate_error, host=exc.host))
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return Failure(Reason.TLS, describe_tls_error(exc.os_error, host=exc.host))
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return Failure(Reason.TLS, describe_tls_error(exc))
    if isinstance(exc, aiohttp.ClientOSError) and ssl_reason(exc) is not None:
        return Failure(Reason.TLS, describe_tls_error(exc))  # an alert after the handshake
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
