"""JSON responses and the one error type handlers raise to answer with a JSON error.

Every democare answer is JSON, errors included, so a probe can always parse what it gets back
(except when a ``garbage`` fault is injected on purpose)::

    raise ApiError(HTTPStatus.NOT_FOUND, "not_found")
    # -> 404 {"error": "not_found"}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus

from aiohttp import web

JSON_CONTENT_TYPE = "application/json"


def json_response(payload: Mapping[str, object], *, status: int = HTTPStatus.OK) -> web.Response:
    """A response with ``payload`` as its JSON body and ``Content-Type: application/json``."""
    return web.json_response(dict(payload), status=status, content_type=JSON_CONTENT_TYPE)


def iso8601(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with milliseconds, e.g. ``2025-06-01T08:30:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(error: str, detail: str | None = None) -> dict[str, object]:
    """The body of an error answer: a stable machine-readable code and, maybe, a human detail."""
    body: dict[str, object] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return body


class ApiError(Exception):
    """Raised by a handler to answer ``status`` with ``{"error": error, "detail": detail}``.

    The error middleware turns it into the JSON response, so handlers stay straight-line code.
    """

    def __init__(self, status: HTTPStatus, error: str, detail: str | None = None) -> None:
        message = f"{status.value} {error}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.status = status
        self.error = error
        self.detail = detail

    def to_response(self) -> web.Response:
        """The JSON response this error stands for."""
        return json_response(error_body(self.error, self.detail), status=self.status)


def bad_request(detail: str) -> ApiError:
    """A 400 ``bad_request`` error explaining what was wrong with the request."""
    return ApiError(HTTPStatus.BAD_REQUEST, "bad_request", detail)


def not_found() -> ApiError:
    """A 404 ``not_found`` error, for unknown ids and for other customers' tickets alike."""
    return ApiError(HTTPStatus.NOT_FOUND, "not_found")


def unauthorized() -> ApiError:
    """A 401 ``unauthorized`` error for a missing, unknown or expired credential."""
    return ApiError(HTTPStatus.UNAUTHORIZED, "unauthorized")


def payload_too_large(max_bytes: int) -> ApiError:
    """A 413 ``payload_too_large`` error naming the limit."""
    return ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
        f"request body must be at most {max_bytes} bytes",
    )
