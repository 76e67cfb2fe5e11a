"""How long the channels whose answer comes later take to answer, when nothing is faulted.

A ``late_reply`` fault replaces these delays; tests shorten them with ``dataclasses.replace``::

    build_app(timings=replace(DEFAULT_TIMINGS, chat_idle_timeout_s=0.5))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Timings:
    """The normal delays of the replying channels, and the chat's idle timeout."""

    sms_handoff_ms: int = 100
    """How long an accepted SMS stays ``queued`` before it is ``sent``."""
    sms_reply_delay_ms: int = 300
    """From an SMS to the care number to the care reply's webhook delivery."""
    push_receipt_delay_ms: int = 200
    """From a push send to its delivery receipt."""
    email_ack_delay_ms: int = 200
    """From a mail to care to its auto-acknowledgement."""
    chat_reply_delay_ms: int = 250
    """From a chat message to the bot's reply; typing frames come in between."""
    chat_typing_interval_ms: int = 100
    """Between the first and second typing frame."""
    chat_idle_timeout_s: float = 60.0
    """A chat socket with no message from the customer for this long is closed."""


DEFAULT_TIMINGS: Final = Timings()
