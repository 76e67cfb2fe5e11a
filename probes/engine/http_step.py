"""HTTP steps: one exchange on the attempt's client (``probes.net.client``), timed phase by phase.

A TLS failure is named by kind with ``probes.net.tls``. What the client raises, the engine reads
with the client's table, ``probes.net.client.HTTP_FAILURES``: the reason by class, the message
the exception's text.
"""

from __future__ import annotations

from typing import Final

from probes.engine.runner import StepContext
from probes.errors import TlsFailed
from probes.model.steps import HttpStep
from probes.net.client import TlsOptions
from probes.runs.expect import Response, judge
from probes.runs.results import Failure, Phase
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
