"""The /_faults endpoints an operator (or a test) uses to set, list and lift faults.

::

    POST   /_faults  {"channel": "app", "mode": "slow", "delay_ms": 2000}
    GET    /_faults
    DELETE /_faults?channel=app

Each answers ``{"faults": [...]}`` with the faults now in force. Every channel takes the modes
``down``, ``slow``, ``error``, ``flaky`` and ``garbage``; the channels whose reply comes later
(chat, sms, push, email) also take ``no_reply`` and ``late_reply`` (``delay_ms``, default
10000). Email faults reach the SMTP conversation through the path ``/email/smtp``::

    POST   /_faults  {"channel": "sms", "mode": "late_reply", "delay_ms": 10000}
    POST   /_faults  {"channel": "email", "mode": "error", "path": "/email/smtp"}

A ``count`` makes a blip: the fault hits that many requests, then lifts itself::

    POST   /_faults  {"channel": "app", "mode": "error", "path": "/app/v1/login", "count": 1}
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare._appkeys import FAULTS
from democare._faults import FaultSpecError, FaultTable, parse_channel, parse_fault
from democare._http import bad_request, json_response
from democare._parse import read_json_object

CHANNEL_PARAMETER: Final = "channel"

routes = web.RouteTableDef()


def _listing(faults: FaultTable) -> web.Response:
    return json_response({"faults": [fault.to_json() for fault in faults.active()]})


@routes.get("/_faults")
async def list_faults(request: web.Request) -> web.Response:
    """The faults in force."""
    return _listing(request.app[FAULTS])


@routes.post("/_faults")
async def set_fault(request: web.Request) -> web.Response:
    """Put a fault in force, replacing the one on the same channel and path."""
    faults = request.app[FAULTS]
    spec = await read_json_object(request)
    try:
        faults.add(parse_fault(spec))
    except FaultSpecError as exc:
        raise bad_request(str(exc)) from None
    return _listing(faults)


@routes.delete("/_faults")
async def clear_faults(request: web.Request) -> web.Response:
    """Lift every fault, or only one channel's with ``?channel=``."""
    faults = request.app[FAULTS]
    unknown = sorted(set(request.query) - {CHANNEL_PARAMETER})
    if unknown:
        raise bad_request(
            f"unknown query parameter(s): {', '.join(unknown)}; allowed: {CHANNEL_PARAMETER}"
        )
    name = request.query.get(CHANNEL_PARAMETER)
    try:
        faults.clear(None if name is None else parse_channel(name))
    except FaultSpecError as exc:
        raise bad_request(str(exc)) from None
    return _listing(faults)
