"""Voice call-backs customers booked, each in a quarter-hour slot at least ten minutes ahead.

::

    booked = VoiceCallbacks(limits=DEFAULT_LIMITS, clock=utc_now)
    call = booked.schedule(msisdn="+33612345678", context_id=None, reason="Billing")
    call.slot       # e.g. 09:15:00Z when booked at 09:03
    booked.cancel(call.callback_id).status  # VoiceCallbackStatus.CANCELLED
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from democare._state import DEFAULT_LIMITS, Clock, Limits, trim_oldest, utc_now

MIN_LEAD: Final = timedelta(minutes=10)
"""An agent needs this long to read the context before calling."""
SLOT_MINUTES: Final = 15
_ID_BYTES: Final = 8


def next_slot(now: datetime) -> datetime:
    """The first quarter hour (:00, :15, :30, :45) at least ``MIN_LEAD`` after ``now``."""
    earliest = now + MIN_LEAD
    slot = earliest.replace(
        minute=earliest.minute - earliest.minute % SLOT_MINUTES, second=0, microsecond=0
    )
    return slot if slot == earliest else slot + timedelta(minutes=SLOT_MINUTES)


class VoiceCallbackStatus(StrEnum):
    """Where a voice call-back is in its life."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class VoiceCallback:
    """A call care promised to make to the customer."""

    callback_id: str
    msisdn: str
    context_id: str | None
    reason: str | None
    slot: datetime
    status: VoiceCallbackStatus
    created_at: datetime


class VoiceCallbacks:
    """The newest ``Limits.max_voice_callbacks`` voice call-backs, by id."""

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now) -> None:
        self._max = limits.max_voice_callbacks
        self._clock = clock
        self._booked: OrderedDict[str, VoiceCallback] = OrderedDict()

    def schedule(self, *, msisdn: str, context_id: str | None, reason: str | None) -> VoiceCallback:
        """Book a call-back in the next free slot (every slot is free in the demo)."""
        now = self._clock()
        callback = VoiceCallback(
            callback_id=f"CB-{secrets.token_hex(_ID_BYTES)}",
            msisdn=msisdn,
            context_id=context_id,
            reason=reason,
            slot=next_slot(now),
            status=VoiceCallbackStatus.SCHEDULED,
            created_at=now,
        )
        self._booked[callback.callback_id] = callback
        trim_oldest(self._booked, self._max)
        return callback

    def get(self, callback_id: str) -> VoiceCallback | None:
        """The call-back with this id, if still remembered."""
        return self._booked.get(callback_id)

    def cancel(self, callback_id: str) -> VoiceCallback | None:
        """Cancel the call-back; cancelling it again changes nothing."""
        callback = self._booked.get(callback_id)
        if callback is None:
            return None
        cancelled = replace(callback, status=VoiceCallbackStatus.CANCELLED)
        self._booked[callback_id] = cancelled
        return cancelled
