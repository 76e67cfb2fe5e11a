"""The ``email`` channel's HTTP side: how to reach the SMTP server and which CA to trust.

Mail itself goes over SMTP (see ``democare._smtp``); these endpoints only describe it::

    GET /email/v1/smtp    -> {"host", "port", "starttls": true, "auth_mechanisms": [...],
                              "care_address", "max_message_bytes"}
    GET /email/v1/tls-ca  -> the STARTTLS certificate as PEM (application/x-pem-file)

Both answer 404 when democare runs without SMTP (``--smtp-listen off``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from aiohttp import web

from democare._http import ApiError, json_response
from democare._smtp import (
    AUTH_MECHANISMS,
    CARE_ADDRESS,
    MAX_MESSAGE_BYTES,
    SMTP_SERVER,
    SmtpServer,
)

PEM_CONTENT_TYPE: Final = "application/x-pem-file"

routes = web.RouteTableDef()


@routes.get("/email/v1/smtp")
async def smtp_settings(request: web.Request) -> web.Response:
    """Where the SMTP server listens and what it expects from a client."""
    server = _running_server(request)
    return json_response(
        {
            "host": server.host,
            "port": server.port,
            "starttls": True,
            "auth_mechanisms": list(AUTH_MECHANISMS),
            "care_address": CARE_ADDRESS,
            "max_message_bytes": MAX_MESSAGE_BYTES,
        }
    )


@routes.get("/email/v1/tls-ca")
async def tls_ca(request: web.Request) -> web.Response:
    """The self-signed certificate of STARTTLS, for clients to trust."""
    return web.Response(text=_running_server(request).ca_pem, content_type=PEM_CONTENT_TYPE)


def _running_server(request: web.Request) -> SmtpServer:
    server = request.app.get(SMTP_SERVER)
    if server is None or not server.running:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "democare runs without SMTP")
    return server
