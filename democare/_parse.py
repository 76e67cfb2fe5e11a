"""Reading what a client sent: a JSON object body, its fields, and typed query parameters.

Each helper raises a 400 :class:`ApiError` whose detail names the offending field, so handlers
read as a list of expectations::

    body = await read_json_object(request)
    subject = required_str(body, "subject", max_length=MAX_SUBJECT_LENGTH)
    limit = query_int(request, "limit", default=5, minimum=1, maximum=20)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from democare._http import bad_request, unauthorized

AUTHORIZATION_HEADER: Final = "Authorization"
BEARER_SCHEME: Final = "bearer"
E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
"""A phone number in international format: +, country code and number, 8 to 16 characters."""
MAX_E164_LENGTH: Final = 16


async def read_json_object(request: web.Request) -> dict[str, object]:
    """The request body parsed as a JSON object; 400 if it is not JSON or not an object.

    Bodies over the application's ``client_max_size`` raise aiohttp's 413, which the error
    middleware answers in JSON.
    """
    raw = await request.read()
    try:
        payload: object = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise bad_request("body must be a JSON object")
    return payload


def required_str(body: Mapping[str, object], key: str, *, max_length: int) -> str:
    """The non-blank string field ``key`` of ``body``, at most ``max_length`` characters."""
    if key not in body:
        raise bad_request(f"'{key}' is required")
    value = optional_str(body, key, max_length=max_length)
    if value is None or not value.strip():
        raise bad_request(f"'{key}' must be a non-empty string")
    return value


def required_phone_number(body: Mapping[str, object], key: str) -> str:
    """The field ``key`` of ``body`` as an E.164 phone number such as ``+33612345678``."""
    number = required_str(body, key, max_length=MAX_E164_LENGTH)
    if not E164.fullmatch(number):
        raise bad_request(f"'{key}' must be an E.164 number such as +33612345678")
    return number


def optional_str(body: Mapping[str, object], key: str, *, max_length: int) -> str | None:
    """The string field ``key`` of ``body``, or None when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{key}' must be a string")
    if len(value) > max_length:
        raise bad_request(f"'{key}' must be at most {max_length} characters")
    return value


def query_str(request: web.Request, name: str, *, max_length: int) -> str:
    """The required, non-blank query parameter ``name``."""
    value = request.query.get(name, "").strip()
    if not value:
        raise bad_request(f"query parameter '{name}' is required")
    if len(value) > max_length:
        raise bad_request(f"query parameter '{name}' must be at most {max_length} characters")
    return value


def query_int(request: web.Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """The integer query parameter ``name`` within [minimum, maximum], or ``default``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter '{name}' must be an integer") from None
    if not minimum <= value <= maximum:
        raise bad_request(f"query parameter '{name}' must be between {minimum} and {maximum}")
    return value


def query_float(
    request: web.Request,
    name: str,
    *,
    minimum: float,
    maximum: float,
    default: float | None = None,
) -> float:
    """The finite number query parameter ``name`` within [minimum, maximum].

    Without a ``default`` the parameter is required.
    """
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise bad_request(f"query parameter '{name}' is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"query parameter '{name}' must be a number") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise bad_request(f"query parameter '{name}' must be between {minimum} and {maximum}")
    return value


def bearer_token(request: web.Request) -> str | None:
    """The token of the ``Authorization: Bearer`` header; None without one, 401 if malformed."""
    header = request.headers.get(AUTHORIZATION_HEADER)
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != BEARER_SCHEME or not token.strip():
        raise unauthorized()
    return token.strip()
