"""The optional ``context_id`` by which voice and video requests attach to a chat handover.

::

    context_id = handover_context_id(request, body)  # None, or a known CTX id (else 404)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from aiohttp import web

from democare._appkeys import CONVERSATIONS
from democare._http import ApiError
from democare._parse import optional_str

MAX_CONTEXT_ID_LENGTH: Final = 64


def handover_context_id(request: web.Request, body: dict[str, object]) -> str | None:
    """The body's optional ``context_id``, which must name a remembered handover (else 404)."""
    context_id = optional_str(body, "context_id", max_length=MAX_CONTEXT_ID_LENGTH)
    if context_id is not None and request.app[CONVERSATIONS].handover(context_id) is None:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", f"no handover {context_id!r}")
    return context_id
