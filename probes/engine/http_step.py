"""HTTP steps: one exchange on the attempt's client (``probes.net.client``), timed phase by phase.

A TLS failure is named by kind with ``probes.net.tls``; every other failure of the exchange is a
``probes.net.wire.WireError`` carrying its reason and message.
"""

from __future__ import annotations

import ssl
from typing import Final

import aiohttp

from probes.engine.runner import StepContext
from probes.model.steps import HttpStep
from probes.net.client import TlsFailed, TlsOptions
from probes.net.tls import TlsSetupError, describe_tls_error, ssl_reason
from probes.net.wire import WireError
from probes.runs.expect import Response, judge
from probes.runs.results import Failure, Phase, Reason
from probes.runs.scope import render_request

#: The phases of an https step, in order; ``tls`` is 0 on a kept-alive connection.
HTTPS_PHASES: Final = (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT, Phase.RECEIVE)


async def run_http(step: HttpStep, ctx: StepContext) -> Failure | None:
    """Send ``step``'s request, check the response and take its captures."""
    request = render_request(step, ctx.scope, ctx.journey.device)
    ctx.target = request.url
    if request.url[:6].lower() == "https:":
        ctx.timer.spent = {p: ctx.timer.spent.get(p, 0.0) for p in HTTPS_PHASES} | ctx.timer.spent
    tls = step.tls
    options = (
        TlsOptions()
        if tls is None
        else TlsOptions(
            ctx.tls.context(tls),
            server_name=tls.server_name,
            client_certificate=bool(tls.cert_file),
        )
    )

    def status_known(status: int) -> None:
        ctx.status = status

    try:
        answer = await ctx.client.request(
            request,
            timer=ctx.timer,
            tls=options,
            follow_redirects=step.follow_redirects,
            on_status=status_known,
        )
    except TlsFailed as exc:
        ctx.cert_expiry = exc.cert_expiry
        raise
    ctx.status = answer.status
    ctx.cert_expiry = answer.cert_expiry
    total = ctx.timer.phases()[Phase.TOTAL]
    response = Response(
        status=answer.status, headers=answer.headers, body=answer.body, duration=total
    )
    return judge(step.expect, step.capture, response, ctx.scope)


def classify(exc: BaseException, url: str) -> Failure:
    """The reason and message for an exception raised while talking to a target: carewatch's
    own HTTP client says both; the rest come from aiohttp (WebSocket steps) or the system."""
    if isinstance(exc, WireError):
        return Failure(exc.reason, str(exc))
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
    if isinstance(exc, aiohttp.InvalidURL):
        return Failure(Reason.PROTOCOL, f"invalid URL {url!r}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure(Reason.PROTOCOL, f"broken response body: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure(Reason.PROTOCOL, f"malformed response: {exc.message}")
    if isinstance(exc, aiohttp.ClientError):
        return Failure(Reason.PROTOCOL, str(exc) or type(exc).__name__)
    return Failure(Reason.INTERNAL, f"{type(exc).__name__}: {exc}")


def _os_message(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None) or exc
    return getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__
