"""The ``agent`` channel: the console a care agent uses to see a customer's context.

::

    GET /agent/v1/customers/{customer_id}/context   (X-Agent-Key)
        -> {"customer_id", "name", "open_tickets", "recent": [{"type": "ticket", ...}]}

A ticket opened in the app is listed here at once, newest first.
"""

from __future__ import annotations

import hmac
from typing import Final

from aiohttp import web

from democare._appkeys import STATE
from democare._http import iso8601, json_response, not_found, unauthorized

AGENT_KEY_HEADER: Final = "X-Agent-Key"
DEMO_AGENT_KEY: Final = "demo-agent-key"
RECENT_TICKET_TYPE: Final = "ticket"

routes = web.RouteTableDef()


@routes.get("/agent/v1/customers/{customer_id}/context")
async def customer_context(request: web.Request) -> web.Response:
    """What the agent sees about a customer: name, open ticket count and recent tickets."""
    key = request.headers.get(AGENT_KEY_HEADER, "")
    if not hmac.compare_digest(key.encode(), DEMO_AGENT_KEY.encode()):
        raise unauthorized()
    state = request.app[STATE]
    customer = state.customer(request.match_info["customer_id"])
    if customer is None:
        raise not_found()
    return json_response(
        {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "open_tickets": state.open_ticket_count(customer.customer_id),
            "recent": [
                {
                    "type": RECENT_TICKET_TYPE,
                    "id": ticket.ticket_id,
                    "subject": ticket.subject,
                    "status": ticket.status.value,
                    "channel": ticket.channel.value,
                    "at": iso8601(ticket.created_at),
                }
                for ticket in state.recent_tickets(customer.customer_id)
            ],
        }
    )
