"""The ``agent`` channel: the console a care agent uses to see a customer's context.

::

    GET /agent/v1/customers/{customer_id}/context   (X-Agent-Key)
        -> {"customer_id", "name", "open_tickets",
            "recent": [{"type": "ticket", ...}, {"type": "chat", "id": "CTX-...", ...}]}
    GET /agent/v1/handovers/{context_id}            (X-Agent-Key)
        -> {"context_id", "conversation_id", "customer_id", "intent", "agent", "created_at",
            "transcript": [{"from": "customer" | "bot", "text", "at"}],
            "callbacks": [...], "video_sessions": [...]}

A ticket opened in the app, or a chat handed over by a logged-in customer, is listed in
``recent`` at once, newest first.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Final

from aiohttp import web

from democare._appkeys import CONVERSATIONS, STATE, VIDEO_SESSIONS, VOICE_CALLBACKS
from democare._channels import Channel
from democare._channels.video import session_json
from democare._channels.voice import voice_callback_json
from democare._conversations import Handover
from democare._http import iso8601, json_response, not_found, unauthorized
from democare._state import Ticket

AGENT_KEY_HEADER: Final = "X-Agent-Key"
DEMO_AGENT_KEY: Final = "demo-agent-key"
RECENT_TICKET_TYPE: Final = "ticket"
RECENT_CHAT_TYPE: Final = "chat"
HANDOVER_STATUS: Final = "waiting_for_agent"

routes = web.RouteTableDef()


@routes.get("/agent/v1/customers/{customer_id}/context")
async def customer_context(request: web.Request) -> web.Response:
    """What the agent sees about a customer: name, open tickets, recent tickets and chats."""
    _check_agent_key(request)
    state = request.app[STATE]
    customer = state.customer(request.match_info["customer_id"])
    if customer is None:
        raise not_found()
    recent: list[tuple[datetime, dict[str, object]]] = [
        (ticket.created_at, _ticket_entry(ticket))
        for ticket in state.recent_tickets(customer.customer_id)
    ]
    recent += [
        (handover.created_at, _chat_entry(handover))
        for handover in request.app[CONVERSATIONS].recent_handovers(customer.customer_id)
    ]
    recent.sort(key=lambda entry: entry[0], reverse=True)
    return json_response(
        {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "open_tickets": state.open_ticket_count(customer.customer_id),
            "recent": [entry for _, entry in recent[: state.limits.max_recent]],
        }
    )


@routes.get("/agent/v1/handovers/{context_id}")
async def handover_context(request: web.Request) -> web.Response:
    """A chat handed over to an agent, with everything booked for it since."""
    _check_agent_key(request)
    handover = request.app[CONVERSATIONS].handover(request.match_info["context_id"])
    if handover is None:
        raise not_found()
    conversation = handover.conversation
    voice_callbacks = request.app[VOICE_CALLBACKS]
    video_sessions = request.app[VIDEO_SESSIONS]
    return json_response(
        {
            "context_id": handover.context_id,
            "conversation_id": conversation.conversation_id,
            "customer_id": conversation.customer_id,
            "intent": conversation.intent,
            "agent": handover.agent,
            "created_at": iso8601(handover.created_at),
            "transcript": [
                {"from": line.speaker.value, "text": line.text, "at": iso8601(line.at)}
                for line in conversation.transcript
            ],
            "callbacks": [
                voice_callback_json(callback)
                for callback_id in handover.voice_callback_ids
                if (callback := voice_callbacks.get(callback_id)) is not None
            ],
            "video_sessions": [
                {**session_json(session), "expires_at": iso8601(session.expires_at)}
                for session_id in handover.video_session_ids
                if (session := video_sessions.get(session_id)) is not None
            ],
        }
    )


def _check_agent_key(request: web.Request) -> None:
    key = request.headers.get(AGENT_KEY_HEADER, "")
    if not hmac.compare_digest(key.encode(), DEMO_AGENT_KEY.encode()):
        raise unauthorized()


def _ticket_entry(ticket: Ticket) -> dict[str, object]:
    return {
        "type": RECENT_TICKET_TYPE,
        "id": ticket.ticket_id,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "channel": ticket.channel.value,
        "at": iso8601(ticket.created_at),
    }


def _chat_entry(handover: Handover) -> dict[str, object]:
    return {
        "type": RECENT_CHAT_TYPE,
        "id": handover.context_id,
        "intent": handover.conversation.intent,
        "status": HANDOVER_STATUS,
        "channel": Channel.CHAT.value,
        "at": iso8601(handover.created_at),
    }
