"""The demo backend's in-memory state: sessions, customers seen and tickets, all bounded.

A long-running demo is hit by probes every few seconds, forever, so every collection here has a
fixed maximum and forgets its oldest entries first::

    state = CareState(limits=DEFAULT_LIMITS, clock=utc_now)
    session = state.start_session(customer)
    ticket = state.open_ticket(customer.customer_id, subject="No data", body="...", category=None)
    state.close_ticket(customer.customer_id, ticket.ticket_id)
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, TypeVar

from democare._accounts import DEMO_CUSTOMER, Customer
from democare._channels import Channel

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware in UTC. Tests pass a fake one."""

DEFAULT_CATEGORY: Final = "general"
_TOKEN_BYTES: Final = 32
_Entry = TypeVar("_Entry")


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the state may hold, and for how long a session stays valid."""

    max_tickets: int = 10_000
    max_sessions: int = 10_000
    max_customers: int = 10_000
    max_recent: int = 20
    session_ttl: timedelta = timedelta(seconds=3600)
    max_sms_messages: int = 10_000
    max_conversations: int = 1_000
    """Chat conversations remembered, open or not."""
    max_open_chats: int = 200
    """Chat sockets open at once; more are refused with 503."""
    max_transcript: int = 200
    """Lines kept per chat transcript, the oldest forgotten first."""
    max_handovers: int = 1_000
    max_attached: int = 20
    """Voice call-backs and video sessions listed per handover."""
    max_voice_callbacks: int = 10_000
    max_video_sessions: int = 10_000
    max_pending_deliveries: int = 1_000
    """Webhook deliveries waiting or in flight; more are dropped and counted."""
    max_delivery_log: int = 200
    """Delivery attempts /_deliveries remembers."""


DEFAULT_LIMITS: Final = Limits()


class TicketStatus(StrEnum):
    """Where a ticket is in its life."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in app session: the bearer token and whose it is."""

    token: str
    customer_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Ticket:
    """A support ticket a customer opened in a channel."""

    ticket_id: str
    customer_id: str
    subject: str
    body: str
    category: str
    status: TicketStatus
    channel: Channel
    created_at: datetime
    updated_at: datetime


class CareState:
    """Sessions, known customers and tickets, shared by the app and agent channels.

    Opening a ticket in the app makes it visible to the agent console at once: both read the
    same per-customer index.
    """

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now) -> None:
        self._limits = limits
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._customers: OrderedDict[str, Customer] = OrderedDict()
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._tickets_by_customer: dict[str, OrderedDict[str, None]] = {}
        self._open_counts: dict[str, int] = {}
        self._ticket_numbers = itertools.count(1)

    @property
    def limits(self) -> Limits:
        """The bounds this state keeps to."""
        return self._limits

    def now(self) -> datetime:
        """The current time on the state's clock."""
        return self._clock()

    def start_session(self, customer: Customer) -> Session:
        """Remember ``customer`` and issue a fresh token for them."""
        self._remember(customer)
        now = self._clock()
        self._drop_expired_sessions(now)
        session = Session(
            token=secrets.token_urlsafe(_TOKEN_BYTES),
            customer_id=customer.customer_id,
            expires_at=now + self._limits.session_ttl,
        )
        self._sessions[session.token] = session
        trim_oldest(self._sessions, self._limits.max_sessions)
        return session

    def customer_for_token(self, token: str) -> Customer | None:
        """The customer a valid, unexpired token belongs to, or None."""
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[token]
            return None
        return self.customer(session.customer_id)

    def customer(self, customer_id: str) -> Customer | None:
        """A customer who logged in recently enough to be remembered (the demo one always)."""
        if customer_id == DEMO_CUSTOMER.customer_id:
            return DEMO_CUSTOMER
        return self._customers.get(customer_id)

    def open_ticket(
        self, customer_id: str, *, subject: str, body: str, category: str | None
    ) -> Ticket:
        """Open a new ticket for ``customer_id`` in the app channel."""
        now = self._clock()
        ticket = Ticket(
            ticket_id=f"T-{next(self._ticket_numbers):06d}",
            customer_id=customer_id,
            subject=subject,
            body=body,
            category=category or DEFAULT_CATEGORY,
            status=TicketStatus.OPEN,
            channel=Channel.APP,
            created_at=now,
            updated_at=now,
        )
        self._tickets[ticket.ticket_id] = ticket
        self._tickets_by_customer.setdefault(customer_id, OrderedDict())[ticket.ticket_id] = None
        self._open_counts[customer_id] = self._open_counts.get(customer_id, 0) + 1
        while len(self._tickets) > self._limits.max_tickets:
            _, evicted = self._tickets.popitem(last=False)
            self._forget_ticket(evicted)
        return ticket

    def ticket(self, customer_id: str, ticket_id: str) -> Ticket | None:
        """The ticket ``ticket_id`` if it exists and belongs to ``customer_id``."""
        ticket = self._tickets.get(ticket_id)
        if ticket is None or ticket.customer_id != customer_id:
            return None
        return ticket

    def close_ticket(self, customer_id: str, ticket_id: str) -> Ticket | None:
        """Close the customer's ticket; closing a closed ticket changes nothing."""
        ticket = self.ticket(customer_id, ticket_id)
        if ticket is None or ticket.status is TicketStatus.CLOSED:
            return ticket
        closed = replace(ticket, status=TicketStatus.CLOSED, updated_at=self._clock())
        self._tickets[ticket_id] = closed
        self._open_counts[customer_id] -= 1
        return closed

    def open_ticket_count(self, customer_id: str) -> int:
        """How many of the customer's remembered tickets are still open."""
        return self._open_counts.get(customer_id, 0)

    def recent_tickets(self, customer_id: str) -> list[Ticket]:
        """The customer's newest tickets, newest first, at most ``Limits.max_recent``."""
        ticket_ids = self._tickets_by_customer.get(customer_id, OrderedDict())
        newest_first: Iterator[str] = reversed(ticket_ids)
        return [
            self._tickets[ticket_id]
            for ticket_id in itertools.islice(newest_first, self._limits.max_recent)
        ]

    def _remember(self, customer: Customer) -> None:
        self._customers[customer.customer_id] = customer
        self._customers.move_to_end(customer.customer_id)
        trim_oldest(self._customers, self._limits.max_customers)

    def _drop_expired_sessions(self, now: datetime) -> None:
        # Sessions are kept in issue order with one TTL, so the expired ones are all at the front.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.expires_at > now:
                return
            del self._sessions[oldest.token]

    def _forget_ticket(self, ticket: Ticket) -> None:
        ticket_ids = self._tickets_by_customer[ticket.customer_id]
        del ticket_ids[ticket.ticket_id]
        if not ticket_ids:
            del self._tickets_by_customer[ticket.customer_id]
        if ticket.status is TicketStatus.OPEN:
            self._open_counts[ticket.customer_id] -= 1
        if not self._open_counts.get(ticket.customer_id):
            self._open_counts.pop(ticket.customer_id, None)


def trim_oldest(entries: OrderedDict[str, _Entry], max_entries: int) -> None:
    """Forget the oldest entries until at most ``max_entries`` remain."""
    while len(entries) > max_entries:
        entries.popitem(last=False)
