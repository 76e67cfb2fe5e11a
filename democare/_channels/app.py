"""The ``app`` channel: what the mobile app calls to log in, see the account and raise tickets.

::

    POST /app/v1/login                  {"username", "password"} -> {"token", "customer_id", ...}
    GET  /app/v1/account                (Bearer) -> the customer's account and balance
    POST /app/v1/tickets                (Bearer) {"subject", "body", "category"?} -> 201 ticket
    GET  /app/v1/tickets/{id}           (Bearer) -> the ticket, if it is the customer's
    POST /app/v1/tickets/{id}/close     (Bearer) -> the closed ticket (idempotent)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from aiohttp import web

from democare._accounts import BALANCE_CURRENCY, Customer, authenticate
from democare._appkeys import STATE
from democare._http import ApiError, iso8601, json_response, not_found, unauthorized
from democare._parse import bearer_token, optional_str, read_json_object, required_str
from democare._state import Ticket

MAX_USERNAME_LENGTH: Final = 254
MAX_PASSWORD_LENGTH: Final = 128
MAX_SUBJECT_LENGTH: Final = 200
MAX_TICKET_BODY_LENGTH: Final = 10_000
MAX_CATEGORY_LENGTH: Final = 50

routes = web.RouteTableDef()


@routes.post("/app/v1/login")
async def login(request: web.Request) -> web.Response:
    """Exchange the customer's credentials for a bearer token.

    Missing fields are wrong credentials (401); fields of the wrong type are a bad request (400).
    """
    body = await read_json_object(request)
    username = optional_str(body, "username", max_length=MAX_USERNAME_LENGTH)
    password = optional_str(body, "password", max_length=MAX_PASSWORD_LENGTH)
    customer = None
    if username is not None and password is not None:
        customer = authenticate(username, password)
    if customer is None:
        raise ApiError(HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    state = request.app[STATE]
    session = state.start_session(customer)
    return json_response(
        {
            "token": session.token,
            "customer_id": customer.customer_id,
            "expires_in": int(state.limits.session_ttl.total_seconds()),
        }
    )


@routes.get("/app/v1/account")
async def account(request: web.Request) -> web.Response:
    """The logged-in customer's account: profile, plan, number and balance."""
    customer = _customer(request)
    return json_response(
        {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "plan": customer.plan,
            "msisdn": customer.msisdn,
            "balance": {"amount": customer.balance, "currency": BALANCE_CURRENCY},
        }
    )


@routes.post("/app/v1/tickets")
async def open_ticket(request: web.Request) -> web.Response:
    """Open a support ticket; it shows in the agent console at once."""
    customer = _customer(request)
    body = await read_json_object(request)
    ticket = request.app[STATE].open_ticket(
        customer.customer_id,
        subject=required_str(body, "subject", max_length=MAX_SUBJECT_LENGTH),
        body=required_str(body, "body", max_length=MAX_TICKET_BODY_LENGTH),
        category=optional_str(body, "category", max_length=MAX_CATEGORY_LENGTH),
    )
    return json_response(_ticket_json(ticket, with_update=False), status=HTTPStatus.CREATED)


@routes.get("/app/v1/tickets/{ticket_id}")
async def get_ticket(request: web.Request) -> web.Response:
    """One of the customer's tickets; other customers' tickets are not found."""
    customer = _customer(request)
    ticket = request.app[STATE].ticket(customer.customer_id, request.match_info["ticket_id"])
    if ticket is None:
        raise not_found()
    return json_response(_ticket_json(ticket, with_update=True))


@routes.post("/app/v1/tickets/{ticket_id}/close")
async def close_ticket(request: web.Request) -> web.Response:
    """Close one of the customer's tickets; closing it again answers the same."""
    customer = _customer(request)
    ticket = request.app[STATE].close_ticket(customer.customer_id, request.match_info["ticket_id"])
    if ticket is None:
        raise not_found()
    return json_response(_ticket_json(ticket, with_update=True))


def _customer(request: web.Request) -> Customer:
    """The customer whose bearer token the request carries, or a 401."""
    token = bearer_token(request)
    customer = None if token is None else request.app[STATE].customer_for_token(token)
    if customer is None:
        raise unauthorized()
    return customer


def _ticket_json(ticket: Ticket, *, with_update: bool) -> dict[str, object]:
    described: dict[str, object] = {
        "id": ticket.ticket_id,
        "status": ticket.status.value,
        "subject": ticket.subject,
        "category": ticket.category,
        "created_at": iso8601(ticket.created_at),
    }
    if with_update:
        described["updated_at"] = iso8601(ticket.updated_at)
    return described
