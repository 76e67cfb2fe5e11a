"""The webhook receiver, ``POST /callbacks/<name>``: where providers deliver SMS replies, push
receipts and inbound email to carewatch (checks.yaml's ``callbacks:``).

It faces whoever can reach the agent, so each webhook checks an HMAC signature or a shared
token (compared in constant time) before an event may reach a run, and bodies are capped at
``MAX_WEBHOOK_BYTES``. A JSON body is matched as JSON; a form body
(``application/x-www-form-urlencoded``, as SMS gateways post) as an object of its fields.

Answers: 200 ``{"matched": true}`` when a waiting run took the event, 200
``{"matched": false}`` when none waits for it yet (it is kept a little while, see
``probes.engine.webhooks``), 401 for a missing or wrong signature or token, 404 for a name that
checks.yaml does not define, 413 for a body over ``MAX_WEBHOOK_BYTES``.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from probes import metrics as m
from probes.engine.webhooks import Event, Result, WebhookHub
from probes.model.config import Webhook

MAX_WEBHOOK_BYTES: Final = 1024 * 1024
FORM: Final = "application/x-www-form-urlencoded"
_READ_CHUNK: Final = 64 * 1024


class WebhookReceiver:
    """Serves ``/callbacks/{name}`` for the webhooks that ``webhooks()`` returns (the running
    config's, so a reload takes effect at once)."""

    def __init__(self, hub: WebhookHub, webhooks: Callable[[], Mapping[str, Webhook]]) -> None:
        self.hub = hub
        self._webhooks = webhooks

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        name = request.match_info["name"]
        webhook = self._webhooks().get(name)
        if webhook is None:
            return web.json_response({"error": "no such callback"}, status=404)
        body = await _read(request, MAX_WEBHOOK_BYTES)
        if body is None:
            self.hub.reject(name)
            return web.json_response(
                {"error": f"body larger than {MAX_WEBHOOK_BYTES} bytes"}, status=413
            )
        if not verified(webhook, request.headers, request.query, body):
            self.hub.reject(name)
            return web.json_response({"error": "signature or token missing or wrong"}, status=401)
        event = Event(
            received_at=arrived,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            document=document(request.content_type, body),
        )
        return web.json_response({"matched": self.hub.deliver(name, event)})


def verified(
    webhook: Webhook, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> bool:
    """Whether the request carries ``webhook``'s signature or token. ``headers`` must look
    names up ignoring case (aiohttp's do)."""
    if webhook.signature is not None:
        signature = webhook.signature
        digest = hmac.new(signature.secret.encode(), body, signature.algorithm).digest()
        if signature.encoding == "hex":
            wanted = signature.prefix + digest.hex()
            given = headers.get(signature.header, "")
            return hmac.compare_digest(_bytes(given.lower()), _bytes(wanted.lower()))
        wanted = signature.prefix + base64.b64encode(digest).decode()
        return hmac.compare_digest(_bytes(headers.get(signature.header, "")), _bytes(wanted))
    if webhook.token is not None:
        token = webhook.token
        sent = headers.get(token.header) if token.header else query.get(token.query or "")
        return sent is not None and hmac.compare_digest(_bytes(sent), _bytes(token.value))
    return webhook.unsigned


def document(content_type: str, body: bytes) -> Any:
    """What an await step's ``match`` reads: a form's fields (the first of a repeated one), or
    the body as JSON, or None."""
    if content_type == FORM:
        fields: dict[str, str] = {}
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            fields.setdefault(key, value)
        return fields
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class WebhookCollector(Collector):
    """``carewatch_callback_events_total`` for the configured webhooks, at 0 from the start.

    Collecting also expires the events kept too long, so ``unmatched`` is current at a scrape.
    """

    def __init__(self, hub: WebhookHub, names: Callable[[], Iterable[str]]) -> None:
        self.hub = hub
        self._names = names

    def collect(self) -> Iterator[Metric]:
        self.hub.expire()
        family = CounterMetricFamily(
            m.CALLBACK_EVENTS.name, m.CALLBACK_EVENTS.help, labels=m.CALLBACK_EVENTS.labels
        )
        for name in self._names():
            for result in Result:
                family.add_metric([name, result.value], self.hub.count(name, result))
        yield family


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _bytes(text: str) -> bytes:
    # Header values can hold anything; what does not encode cannot match a digest or a token.
    return text.encode("utf-8", errors="replace")
