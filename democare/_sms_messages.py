"""The SMS gateway's memory: messages customers sent, and whether care has replied.

A message is ``queued`` when accepted, ``sent`` once handed on, and ``replied`` when care's
reply reached the sms webhook::

    messages = SmsMessages(limits=DEFAULT_LIMITS, clock=utc_now, handoff=timedelta(0.1))
    message = messages.accept(sender="+33600000001", recipient=CARE_NUMBER, body="Hello")
    messages.mark_replied(message.message_id, reply_id="SM...")
    messages.status(messages.get(message.message_id))  # SmsStatus.REPLIED
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from democare._state import DEFAULT_LIMITS, Clock, Limits, trim_oldest, utc_now

MESSAGE_ID_PREFIX: Final = "SM"
_ID_BYTES: Final = 16


def new_message_id() -> str:
    """A fresh id in the common provider style: ``SM`` and 32 hex digits."""
    return f"{MESSAGE_ID_PREFIX}{secrets.token_hex(_ID_BYTES)}"


class SmsStatus(StrEnum):
    """Where a message is in its life."""

    QUEUED = "queued"
    SENT = "sent"
    REPLIED = "replied"


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A message a customer sent through the gateway."""

    message_id: str
    sender: str
    recipient: str
    body: str
    created_at: datetime
    sent_at: datetime
    reply_id: str | None = None
    replied_at: datetime | None = None


class SmsMessages:
    """The newest ``Limits.max_sms_messages`` messages, by id."""

    def __init__(
        self, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now, handoff: timedelta
    ) -> None:
        self._max = limits.max_sms_messages
        self._clock = clock
        self._handoff = handoff
        self._messages: OrderedDict[str, SmsMessage] = OrderedDict()

    def accept(self, *, sender: str, recipient: str, body: str) -> SmsMessage:
        """Remember a message the gateway just accepted."""
        now = self._clock()
        message = SmsMessage(
            message_id=new_message_id(),
            sender=sender,
            recipient=recipient,
            body=body,
            created_at=now,
            sent_at=now + self._handoff,
        )
        self._messages[message.message_id] = message
        trim_oldest(self._messages, self._max)
        return message

    def get(self, message_id: str) -> SmsMessage | None:
        """The message with this id, if still remembered."""
        return self._messages.get(message_id)

    def mark_replied(self, message_id: str, *, reply_id: str) -> None:
        """Record that care's reply to the message reached the webhook."""
        message = self._messages.get(message_id)
        if message is not None:
            self._messages[message_id] = replace(
                message, reply_id=reply_id, replied_at=self._clock()
            )

    def status(self, message: SmsMessage) -> SmsStatus:
        """The message's status now."""
        if message.replied_at is not None:
            return SmsStatus.REPLIED
        if self._clock() >= message.sent_at:
            return SmsStatus.SENT
        return SmsStatus.QUEUED
