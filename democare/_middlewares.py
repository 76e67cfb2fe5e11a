"""What every request goes through whatever its channel: body cap, JSON errors, request ids.

These keep the contract uniform: every answer carries an ``X-Request-Id`` and every error is
JSON, even the router's own 404 and 405 and the 413 for an oversized body.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from democare._http import ApiError, error_body, json_response, payload_too_large

REQUEST_ID_HEADER: Final = "X-Request-Id"
ALLOW_HEADER: Final = "Allow"
GENERIC_ERROR: Final = "http_error"

_log = logging.getLogger(__name__)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer ApiError, aiohttp's HTTP errors and crashes with a JSON error body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.to_response()
    except web.HTTPRequestEntityTooLarge:
        return payload_too_large(request.client_max_size).to_response()
    except web.HTTPException as exc:
        if exc.status < HTTPStatus.BAD_REQUEST:
            raise
        response = json_response(error_body(_error_code(exc.status)), status=exc.status)
        if ALLOW_HEADER in exc.headers:
            response.headers[ALLOW_HEADER] = exc.headers[ALLOW_HEADER]
        return response
    except Exception:
        _log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(error_body("internal_error"), status=HTTPStatus.INTERNAL_SERVER_ERROR)


def _error_code(status: int) -> str:
    """``not_found`` for 404, ``method_not_allowed`` for 405, ..."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return GENERIC_ERROR
    return phrase.lower().replace(" ", "_").replace("-", "_")


@web.middleware
async def cap_body_size(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a declared body over ``client_max_size`` before reading any of it.

    Chunked bodies have no declared length; aiohttp stops reading those at the same limit.
    """
    declared = request.content_length
    if declared is not None and declared > request.client_max_size:
        raise payload_too_large(request.client_max_size)
    return await handler(request)


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Give every response, errors included, a fresh ``X-Request-Id`` (uuid4 hex).

    Registered on ``on_response_prepare`` rather than as a middleware so that answers aiohttp
    builds itself get one too.
    """
    response.headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
