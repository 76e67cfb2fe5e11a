"""The care channels the demo backend serves, each under its own URL prefix.

A channel is what a customer (or an agent) uses to reach customer care. Faults are injected per
channel, and the monitoring config names the same channels in its journeys and metric labels::

    >>> Channel.SELF_SERVICE.prefix
    '/help/'
    >>> channel_of("/stores/v1/nearby")
    <Channel.LOCATOR: 'locator'>
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Channel(StrEnum):
    """A customer-care channel, named as in checks.yaml and metric labels."""

    APP = "app"
    SELF_SERVICE = "self_service"
    LOCATOR = "locator"
    AGENT = "agent"
    CHAT = "chat"
    SMS = "sms"
    PUSH = "push"
    EMAIL = "email"
    """Mail itself arrives over SMTP; only the admin endpoints live under the prefix."""
    VOICE = "voice"
    VIDEO = "video"

    @property
    def prefix(self) -> str:
        """The URL prefix every endpoint of this channel lives under, with a trailing slash."""
        return CHANNEL_PREFIXES[self]


CHANNEL_PREFIXES: Final[dict[Channel, str]] = {
    Channel.APP: "/app/",
    Channel.SELF_SERVICE: "/help/",
    Channel.LOCATOR: "/stores/",
    Channel.AGENT: "/agent/",
    Channel.CHAT: "/chat/",
    Channel.SMS: "/sms/",
    Channel.PUSH: "/push/",
    Channel.EMAIL: "/email/",
    Channel.VOICE: "/voice/",
    Channel.VIDEO: "/video/",
}

REPLYING_CHANNELS: Final = frozenset({Channel.CHAT, Channel.SMS, Channel.PUSH, Channel.EMAIL})
"""Channels whose answer comes later, on its own (a bot reply, a webhook delivery)."""
WEBHOOK_CHANNELS: Final = (Channel.SMS, Channel.PUSH, Channel.EMAIL)
"""Channels that deliver to a webhook, in the order /_webhooks lists them."""


def channel_of(path: str) -> Channel | None:
    """The channel serving ``path``, or None for paths outside every channel (/healthz, ...)."""
    for channel, prefix in CHANNEL_PREFIXES.items():
        if path.startswith(prefix):
            return channel
    return None
