"""The /_webhooks and /_deliveries endpoints: where deliveries go, and how they went.

::

    GET /_webhooks  -> {"sms": url | null, "push": url | null, "email": url | null}
    PUT /_webhooks  {"sms": "http://127.0.0.1:9000/sms", "push": null}
        -> the same listing; channels left out keep their webhook, null removes one
    GET /_deliveries -> {"pending", "dropped", "attempts": [{"delivery_id", "channel",
                         "target", "attempt", "status", "error", "at"}, ...]}  (newest first)

Like /_faults they live outside every channel prefix, so no fault ever hides them.
"""

from __future__ import annotations

from aiohttp import web

from democare._appkeys import DELIVERER, WEBHOOKS
from democare._http import bad_request, json_response
from democare._parse import read_json_object
from democare._webhooks import WebhookError

routes = web.RouteTableDef()


@routes.get("/_webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    """Each delivering channel's webhook URL, or null."""
    return json_response(request.app[WEBHOOKS].to_json())


@routes.put("/_webhooks")
async def set_webhooks(request: web.Request) -> web.Response:
    """Set or remove the webhooks of the channels named in the body; all or nothing."""
    webhooks = request.app[WEBHOOKS]
    changes = await read_json_object(request)
    try:
        webhooks.update(changes)
    except WebhookError as exc:
        raise bad_request(str(exc)) from None
    return json_response(webhooks.to_json())


@routes.get("/_deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    """Pending and dropped counts, and the most recent delivery attempts."""
    return json_response(request.app[DELIVERER].to_json())
