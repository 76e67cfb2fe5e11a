"""The middleware that makes faulted channels misbehave.

It runs before the channel's handler and looks up the fault covering the request path, if any.
Paths outside every channel (/healthz, /_faults, /_webhooks, /_deliveries) are never covered, so
the operator can always see and lift faults. ``no_reply`` and ``late_reply`` faults let the
request through: the channel itself holds back the reply that would follow.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from democare._appkeys import FAULTS
from democare._faults import REPLY_MODES, Fault, FaultMode
from democare._http import JSON_CONTENT_TYPE, json_response

GARBAGE_BODY: Final = b"<html><body><h1>502 Bad Gateway</h1>upstream error</body></html>"
"""What a misconfigured proxy sends in place of the JSON the client asked for."""
MS_PER_SECOND: Final = 1000

_log = logging.getLogger(__name__)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the fault covering this request, or pass it on untouched."""
    fault = request.app[FAULTS].triggered(request.path)
    if fault is None or fault.mode in REPLY_MODES:
        return await handler(request)
    _log.debug("injecting %s fault into %s %s", fault.mode, request.method, request.path)
    match fault.mode:
        case FaultMode.DOWN:
            return _drop_connection(request)
        case FaultMode.SLOW:
            await asyncio.sleep(fault.delay_ms / MS_PER_SECOND)
            return await handler(request)
        case FaultMode.ERROR | FaultMode.FLAKY:
            return _injected_error(fault)
        case FaultMode.GARBAGE:
            return web.Response(body=GARBAGE_BODY, content_type=JSON_CONTENT_TYPE)
        case FaultMode.NO_REPLY | FaultMode.LATE_REPLY:
            raise AssertionError(f"unreachable: {fault.mode} faults pass through")


def _injected_error(fault: Fault) -> web.Response:
    return json_response(
        {"error": "injected_fault", "channel": fault.channel.value}, status=fault.status
    )


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer, as a crashed backend would.

    Aborting the transport makes aiohttp treat the response returned here as undeliverable: it
    sees a closing transport, counts a client disconnect and writes nothing.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
