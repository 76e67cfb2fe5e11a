"""Where the sms, push and email channels deliver their replies, and how deliveries are signed.

Webhooks may only point at loopback (127.0.0.0/8, ::1, localhost): the demo never posts off the
machine. Every delivery carries an HMAC of its raw body, so the receiver can check it came from
democare::

    webhooks = Webhooks({"sms": "http://127.0.0.1:9000/sms"}, secret="demo-webhook-secret")
    webhooks.url(Channel.SMS)             # "http://127.0.0.1:9000/sms"
    sign(b"Body=hi", "demo-webhook-secret")  # "sha256=..."
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Final

from yarl import URL

from democare._channels import WEBHOOK_CHANNELS, Channel

DEFAULT_WEBHOOK_SECRET: Final = "demo-webhook-secret"
SIGNATURE_HEADER: Final = "X-Democare-Signature"
TIMESTAMP_HEADER: Final = "X-Democare-Timestamp"
SIGNATURE_SCHEME: Final = "sha256"
WEBHOOK_SCHEMES: Final = frozenset({"http", "https"})
LOOPBACK_NAMES: Final = frozenset({"localhost"})
MAX_URL_LENGTH: Final = 2000


class WebhookError(ValueError):
    """A webhook setting that is not allowed; the message says why."""


def sign(body: bytes, secret: str) -> str:
    """The ``X-Democare-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def parse_webhook_url(value: object) -> str:
    """``value`` if it is an http(s) URL to a loopback host, else a WebhookError."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        raise WebhookError(f"a webhook must be a URL string of at most {MAX_URL_LENGTH} characters")
    try:
        url = URL(value)
    except ValueError as exc:
        raise WebhookError(f"webhook {value!r} is not a URL: {exc}") from None
    if url.scheme not in WEBHOOK_SCHEMES or not url.host:
        raise WebhookError(f"webhook {value!r} must be an http:// or https:// URL with a host")
    if not _is_loopback(url.host):
        raise WebhookError(
            f"webhook {value!r} must point at loopback (127.0.0.0/8, ::1 or localhost)"
        )
    return value


def parse_channel_name(name: object) -> Channel:
    """The webhook channel called ``name`` (sms, push or email), else a WebhookError."""
    for channel in WEBHOOK_CHANNELS:
        if name == channel.value:
            return channel
    allowed = ", ".join(channel.value for channel in WEBHOOK_CHANNELS)
    raise WebhookError(f"webhook channel must be one of: {allowed}; got {name!r}")


def parse_webhook_option(value: str) -> tuple[Channel, str]:
    """``CHANNEL=URL`` from the command line, e.g. ``sms=http://127.0.0.1:9000/sms``."""
    name, separator, url = value.partition("=")
    if not separator:
        raise WebhookError(
            f"expected CHANNEL=URL, e.g. sms=http://127.0.0.1:9000/sms; got {value!r}"
        )
    return parse_channel_name(name), parse_webhook_url(url)


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Webhooks:
    """The webhook URL of each delivering channel (or none) and the secret that signs deliveries.

    URLs change at run time through PUT /_webhooks; a delivery reads its URL when it is sent.
    """

    def __init__(self, urls: Mapping[str, str] | None = None, *, secret: str) -> None:
        if not secret:
            raise WebhookError("the webhook secret must not be empty")
        self._secret = secret
        self._urls: dict[Channel, str] = {}
        for name, url in (urls or {}).items():
            self._urls[parse_channel_name(name)] = parse_webhook_url(url)

    @property
    def secret(self) -> str:
        """The HMAC key of the signature header."""
        return self._secret

    def url(self, channel: Channel) -> str | None:
        """Where ``channel`` delivers now, or None when it has no webhook."""
        return self._urls.get(channel)

    def update(self, changes: Mapping[str, object]) -> None:
        """Set the channels named in ``changes`` (None removes one); all or nothing."""
        parsed: dict[Channel, str | None] = {}
        for name, url in changes.items():
            parsed[parse_channel_name(name)] = None if url is None else parse_webhook_url(url)
        for channel, new_url in parsed.items():
            if new_url is None:
                self._urls.pop(channel, None)
            else:
                self._urls[channel] = new_url

    def to_json(self) -> dict[str, str | None]:
        """Every delivering channel and its URL or None, as /_webhooks lists them."""
        return {channel.value: self._urls.get(channel) for channel in WEBHOOK_CHANNELS}
