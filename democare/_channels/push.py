"""The ``push`` channel: a push notification service with delivery receipts on a webhook.

::

    POST /push/v1/send  {"device_token": "...", "title": "...", "body": "...", "data": {...}?}
        -> 202 {"id": "PN<32 hex>", "status": "accepted"}

About ``Timings.push_receipt_delay_ms`` later a receipt is POSTed to the ``push`` webhook::

    {"id": "PN...", "status": "delivered", "device_token": "...", "data": {...} | null,
     "delivered_at": "2025-06-01T08:30:00.200Z"}
"""

from __future__ import annotations

import json
import secrets
from http import HTTPStatus
from typing import Final

from aiohttp import web

from democare._appkeys import DELIVERER, FAULTS, STATE, TIMINGS
from democare._channels import Channel
from democare._http import JSON_CONTENT_TYPE, bad_request, iso8601, json_response
from democare._parse import read_json_object, required_str

NOTIFICATION_ID_PREFIX: Final = "PN"
MAX_DEVICE_TOKEN_LENGTH: Final = 4096
MAX_TITLE_LENGTH: Final = 200
MAX_PUSH_BODY_LENGTH: Final = 4000
_ID_BYTES: Final = 16

routes = web.RouteTableDef()


@routes.post("/push/v1/send")
async def send_notification(request: web.Request) -> web.Response:
    """Accept a notification; its delivery receipt goes to the push webhook later."""
    body = await read_json_object(request)
    device_token = required_str(body, "device_token", max_length=MAX_DEVICE_TOKEN_LENGTH)
    required_str(body, "title", max_length=MAX_TITLE_LENGTH)
    required_str(body, "body", max_length=MAX_PUSH_BODY_LENGTH)
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request("'data' must be a JSON object")
    notification_id = f"{NOTIFICATION_ID_PREFIX}{secrets.token_hex(_ID_BYTES)}"
    delay_ms = request.app[FAULTS].reply_delay_ms(
        request.path, normal_ms=request.app[TIMINGS].push_receipt_delay_ms
    )
    if delay_ms is not None:
        state = request.app[STATE]

        def receipt() -> bytes:
            return json.dumps(
                {
                    "id": notification_id,
                    "status": "delivered",
                    "device_token": device_token,
                    "data": data,
                    "delivered_at": iso8601(state.now()),
                }
            ).encode()

        request.app[DELIVERER].submit(
            Channel.PUSH, receipt, content_type=JSON_CONTENT_TYPE, delay_ms=delay_ms
        )
    return json_response({"id": notification_id, "status": "accepted"}, status=HTTPStatus.ACCEPTED)
