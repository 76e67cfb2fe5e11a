"""The ``sms`` channel: an SMS gateway whose care number answers through a webhook.

::

    POST /sms/v1/messages   {"from": "+33600000001", "to": "+33900000000", "body": "Hello"}
        -> 202 {"id": "SM<32 hex>", "status": "queued"}
    GET  /sms/v1/messages/{id}
        -> {"id", "from", "to", "body", "status": "queued" | "sent" | "replied", "reply_id", ...}

A message to the care number gets a reply POSTed to the ``sms`` webhook about
``Timings.sms_reply_delay_ms`` later, form-encoded as common SMS providers do::

    MessageSid=SM...&From=%2B33900000000&To=%2B33600000001
        &Body=Thanks+for+contacting+care.+We+received%3A+%22Hello%22&InReplyTo=SM...&NumMedia=0
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from democare._appkeys import DELIVERER, FAULTS, SMS_MESSAGES, TIMINGS
from democare._channels import Channel
from democare._http import iso8601, json_response, not_found
from democare._parse import read_json_object, required_phone_number, required_str
from democare._sms_messages import SmsMessage, new_message_id

CARE_NUMBER: Final = "+33900000000"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
MAX_SMS_BODY_LENGTH: Final = 1600
"""Ten concatenated segments, as providers allow."""
REPLY_TEMPLATE: Final = 'Thanks for contacting care. We received: "{body}"'

routes = web.RouteTableDef()


@routes.post("/sms/v1/messages")
async def send_message(request: web.Request) -> web.Response:
    """Accept an SMS; one to the care number gets care's reply on the sms webhook later."""
    body = await read_json_object(request)
    sender = required_phone_number(body, "from")
    recipient = required_phone_number(body, "to")
    text = required_str(body, "body", max_length=MAX_SMS_BODY_LENGTH)
    message = request.app[SMS_MESSAGES].accept(sender=sender, recipient=recipient, body=text)
    if recipient == CARE_NUMBER:
        _schedule_reply(request, message)
    return json_response({"id": message.message_id, "status": "queued"}, status=HTTPStatus.ACCEPTED)


@routes.get("/sms/v1/messages/{message_id}")
async def get_message(request: web.Request) -> web.Response:
    """A message the gateway accepted, with its status now."""
    messages = request.app[SMS_MESSAGES]
    message = messages.get(request.match_info["message_id"])
    if message is None:
        raise not_found()
    return json_response(
        {
            "id": message.message_id,
            "from": message.sender,
            "to": message.recipient,
            "body": message.body,
            "status": messages.status(message).value,
            "reply_id": message.reply_id,
            "created_at": iso8601(message.created_at),
        }
    )


def _schedule_reply(request: web.Request, message: SmsMessage) -> None:
    delay_ms = request.app[FAULTS].reply_delay_ms(
        request.path, normal_ms=request.app[TIMINGS].sms_reply_delay_ms
    )
    if delay_ms is None:
        return
    messages = request.app[SMS_MESSAGES]
    reply_id = new_message_id()
    form = urlencode(
        {
            "MessageSid": reply_id,
            "From": CARE_NUMBER,
            "To": message.sender,
            "Body": REPLY_TEMPLATE.format(body=message.body),
            "InReplyTo": message.message_id,
            "NumMedia": "0",
        }
    ).encode()
    request.app[DELIVERER].submit(
        Channel.SMS,
        lambda: form,
        content_type=FORM_CONTENT_TYPE,
        delay_ms=delay_ms,
        on_delivered=lambda: messages.mark_replied(message.message_id, reply_id=reply_id),
    )
