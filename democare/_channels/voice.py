"""The ``voice`` channel: booking a call-back from care, optionally tied to a chat handover.

::

    POST   /voice/v1/callbacks       {"msisdn": "+33612345678", "context_id": "CTX-..."?,
                                      "reason": "..."?}
        -> 201 {"id": "CB-...", "status": "scheduled", "slot": "...T09:15:00.000Z",
                "context_id", "msisdn", "reason"}
    GET    /voice/v1/callbacks/{id}  -> the call-back
    DELETE /voice/v1/callbacks/{id}  -> the call-back, "status": "cancelled" (idempotent)

A call-back with a context id is listed in that handover for the agent; an unknown context id is
404.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from aiohttp import web

from democare._appkeys import CONVERSATIONS, VOICE_CALLBACKS
from democare._channels._handover import handover_context_id
from democare._http import iso8601, json_response, not_found
from democare._parse import optional_str, read_json_object, required_phone_number
from democare._voice_callbacks import VoiceCallback

MAX_REASON_LENGTH: Final = 500

routes = web.RouteTableDef()


@routes.post("/voice/v1/callbacks")
async def schedule_callback(request: web.Request) -> web.Response:
    """Book a call-back in the next quarter-hour slot at least ten minutes away."""
    body = await read_json_object(request)
    msisdn = required_phone_number(body, "msisdn")
    context_id = handover_context_id(request, body)
    callback = request.app[VOICE_CALLBACKS].schedule(
        msisdn=msisdn,
        context_id=context_id,
        reason=optional_str(body, "reason", max_length=MAX_REASON_LENGTH),
    )
    if context_id is not None:
        request.app[CONVERSATIONS].attach_voice_callback(context_id, callback.callback_id)
    return json_response(voice_callback_json(callback), status=HTTPStatus.CREATED)


@routes.get("/voice/v1/callbacks/{callback_id}")
async def get_callback(request: web.Request) -> web.Response:
    """One call-back."""
    callback = request.app[VOICE_CALLBACKS].get(request.match_info["callback_id"])
    if callback is None:
        raise not_found()
    return json_response(voice_callback_json(callback))


@routes.delete("/voice/v1/callbacks/{callback_id}")
async def cancel_callback(request: web.Request) -> web.Response:
    """Cancel a call-back; cancelling it again answers the same."""
    callback = request.app[VOICE_CALLBACKS].cancel(request.match_info["callback_id"])
    if callback is None:
        raise not_found()
    return json_response(voice_callback_json(callback))


def voice_callback_json(callback: VoiceCallback) -> dict[str, object]:
    """A call-back as the voice channel and the agent's handover view show it."""
    return {
        "id": callback.callback_id,
        "status": callback.status.value,
        "slot": iso8601(callback.slot),
        "context_id": callback.context_id,
        "msisdn": callback.msisdn,
        "reason": callback.reason,
    }
