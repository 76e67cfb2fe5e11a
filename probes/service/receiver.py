"""The webhook receiver, ``POST /callbacks/<name>``: where providers deliver SMS replies, push
receipts and inbound email to carewatch (checks.yaml's ``callbacks:``).

It faces whoever can reach the agent, so each webhook checks an HMAC signature or a shared
token (compared in constant time) before an event may reach a run, and bodies are capped at
``MAX_WEBHOOK_BYTES``. A signature that signs a time (``scheme: stripe``) is also refused when
that time is more than its ``tolerance`` from now, or when the same signature came before
(a replay). A source address (an IPv6 /64) that sends more than ``REJECTED_BURST`` rejected
requests is answered 429, unread, until its budget refills at ``REJECTED_PER_SECOND``. Every
rejection counts in ``carewatch_callback_events_total{result="rejected"}`` (for a configured
name) and is logged with its cause, never the body, at most once per callback name every
``REJECTION_LOG_SECONDS``. A JSON body is matched as JSON; a form body
(``application/x-www-form-urlencoded``, as SMS gateways post) as an object of its fields.

Answers: 200 ``{"matched": true}`` when a waiting run took the event, 200
``{"matched": false}`` when none waits for it yet (it is kept a little while, see
``probes.engine.webhooks``), 401 for a missing or wrong signature or token, a signed time out
of tolerance or a replay, 404 for a name that checks.yaml does not define, 413 for a body over
``MAX_WEBHOOK_BYTES``, 429 for a source over its budget of rejections.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from probes import metrics as m
from probes.engine.webhooks import Event, Result, WebhookHub
from probes.errors import CarewatchError
from probes.model.config import Signature, Webhook
from probes.service.guards import RecentSignatures, SourceLimiter, ThrottledLog

MAX_WEBHOOK_BYTES: Final = 1024 * 1024
FORM: Final = "application/x-www-form-urlencoded"
_READ_CHUNK: Final = 64 * 1024
#: A source may send this many rejected requests at once, then this many a second.
REJECTED_BURST: Final = 100
REJECTED_PER_SECOND: Final = 10.0
#: Sources whose rejections are counted; past that, the one seen longest ago is forgotten.
MAX_SOURCES: Final = 10_000
#: Signatures remembered against replays (each until its signed time leaves the tolerance).
MAX_RECENT_SIGNATURES: Final = 100_000
#: At most one log line per callback name this often (how many were left out is in the next).
REJECTION_LOG_SECONDS: Final = 10.0
#: Longest part of an unknown callback name that goes into the log.
LOGGED_NAME_CHARS: Final = 64
UNKNOWN: Final = "(unknown)"
WRONG: Final = "signature or token missing or wrong"
log = logging.getLogger("carewatch")


class Rejected(CarewatchError):
    """Why a callback is refused: its HTTP ``status`` and the ``cause`` logged and answered."""

    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause


class WebhookReceiver:
    """Serves ``/callbacks/{name}`` for the webhooks that ``webhooks()`` returns (the running
    config's, so a reload takes effect at once)."""

    def __init__(
        self,
        hub: WebhookHub,
        webhooks: Callable[[], Mapping[str, Webhook]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self._webhooks = webhooks
        self._clock = clock
        self.sources = SourceLimiter(
            interval=1 / REJECTED_PER_SECOND, burst=REJECTED_BURST, sources=MAX_SOURCES
        )
        self.recent = RecentSignatures(size=MAX_RECENT_SIGNATURES, clock=clock)
        self._log = ThrottledLog(log, interval=REJECTION_LOG_SECONDS)

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        name = request.match_info["name"]
        webhook = self._webhooks().get(name)
        try:
            if not self.sources.allows(request.remote):
                raise Rejected(429, "too many rejected requests from this source")
            if webhook is None:
                raise Rejected(404, "no such callback")
            body = await _read(request, MAX_WEBHOOK_BYTES)
            if body is None:
                raise Rejected(413, f"body larger than {MAX_WEBHOOK_BYTES} bytes")
            self._check(name, webhook, request, body)
        except Rejected as rejected:
            return self._reject(request, name, webhook, rejected)
        event = Event(
            received_at=arrived,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            document=document(request.content_type, body),
        )
        return web.json_response({"matched": self.hub.deliver(name, event)})

    def _check(self, name: str, webhook: Webhook, request: web.Request, body: bytes) -> None:
        """Raise ``Rejected`` unless the request is ``webhook``'s, signed now, and new."""
        signature = webhook.signature
        if signature is not None and signature.scheme == "stripe":
            now = self._clock()
            digest, signed_at = stripe_signature(signature, request.headers, body, now=now)
            if self.recent.seen((name, digest), until=signed_at + signature.tolerance):
                raise Rejected(401, "replayed: this signature was already received")
        elif not verified(webhook, request.headers, request.query, body):
            raise Rejected(401, WRONG)

    def _reject(
        self, request: web.Request, name: str, webhook: Webhook | None, rejected: Rejected
    ) -> web.Response:
        if rejected.status != 429:  # the budget spent is rejections the agent did the work of
            self.sources.charge(request.remote)
        if webhook is not None:
            self.hub.reject(name)
            self._log.warning(
                name,
                "callback %s: rejected a request from %s: %s",
                name,
                request.remote,
                rejected.cause,
            )
        else:
            self._log.warning(
                UNKNOWN,
                "callback %r: rejected a request from %s: %s",
                name[:LOGGED_NAME_CHARS],
                request.remote,
                rejected.cause,
            )
        headers = {"Retry-After": "1"} if rejected.status == 429 else None
        return web.json_response({"error": rejected.cause}, status=rejected.status, headers=headers)


def stripe_signature(
    signature: Signature, headers: Mapping[str, str], body: bytes, *, now: float
) -> tuple[bytes, float]:
    """The digest that matched in Stripe's ``t=<time>,v1=<hex>[,v1=...]`` header, and the
    signed time; ``Rejected`` (401) with the cause if none matched or the time is out of
    ``signature.tolerance``."""
    fields = [part.partition("=") for part in headers.get(signature.header, "").split(",")]
    times = [value.strip() for key, _, value in fields if key.strip() == "t"]
    given = [value.strip() for key, _, value in fields if key.strip() == "v1"]
    if len(times) != 1 or not times[0].isdigit() or len(times[0]) > 12 or not given:
        raise Rejected(401, WRONG)
    signed_at = float(times[0])
    mac = hmac.new(signature.secret.encode(), times[0].encode() + b"." + body, signature.algorithm)
    digest = mac.hexdigest().encode()
    if not any(hmac.compare_digest(_bytes(value.lower()), digest) for value in given):
        raise Rejected(401, WRONG)
    off = now - signed_at
    if abs(off) > signature.tolerance:
        when = "ago" if off > 0 else "ahead of this agent's clock"
        raise Rejected(
            401, f"signed {abs(off):.0f}s {when}, over the tolerance of {signature.tolerance:g}s"
        )
    return digest, signed_at


def verified(
    webhook: Webhook, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> bool:
    """Whether the request carries ``webhook``'s signature (of the body alone, ``scheme:
    hmac``) or token. ``headers`` must look names up ignoring case (aiohttp's do)."""
    if webhook.signature is not None:
        signature = webhook.signature
        if signature.scheme != "hmac":
            return False  # a timed scheme is checked with its time: stripe_signature
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
