"""Webhook deliveries made in the background: scheduled, bounded, signed, retried, never fatal.

A channel hands over a delivery and a delay; when the delay is up, a worker POSTs it to the
channel's webhook, retrying a few times. A webhook that is down or slow never reaches back into
the server: failures are only recorded, and /_deliveries lists them::

    deliverer = Deliverer(webhooks, limits=DEFAULT_LIMITS, clock=utc_now)
    await deliverer.start()
    deliverer.submit(Channel.SMS, render, content_type=FORM_CONTENT_TYPE, delay_ms=300)
    ...
    await deliverer.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Final

import aiohttp

from democare._channels import Channel
from democare._http import iso8601
from democare._state import DEFAULT_LIMITS, Clock, Limits, utc_now
from democare._webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhooks, sign

MAX_ATTEMPTS: Final = 3
RETRY_BACKOFF_S: Final = (0.2, 0.5)
"""Pause before the second and the third attempt."""
POST_TIMEOUT_S: Final = 5.0
WORKERS: Final = 4
"""Deliveries posted at once: one hanging webhook does not hold up the others."""
MS_PER_SECOND: Final = 1000
_ID_BYTES: Final = 8
_RETRYABLE_CLIENT_ERRORS: Final = frozenset(
    {HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS}
)

Render = Callable[[], bytes]
"""Builds the body when the delivery is due, so times in it are the delivery's own."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST to make: what, for which channel, and what to do once it got through."""

    delivery_id: str
    channel: Channel
    render: Render
    content_type: str
    on_delivered: Callable[[], None] | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a delivery, as /_deliveries lists it."""

    delivery_id: str
    channel: Channel
    target: str | None
    attempt: int
    status: int | None
    error: str | None
    at: datetime

    def to_json(self) -> dict[str, object]:
        """The attempt as JSON; ``status`` is None when no answer came (see ``error``)."""
        return {
            "delivery_id": self.delivery_id,
            "channel": self.channel.value,
            "target": self.target,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "at": iso8601(self.at),
        }


class Deliverer:
    """Schedules and posts webhook deliveries, at most ``Limits.max_pending_deliveries`` at once.

    A delivery is pending from :meth:`submit` until its last attempt. Past the limit, new ones
    are dropped and counted. :meth:`close` cancels whatever is still pending.
    """

    def __init__(
        self, webhooks: Webhooks, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now
    ) -> None:
        self._webhooks = webhooks
        self._max_pending = limits.max_pending_deliveries
        self._clock = clock
        self._attempts: deque[Attempt] = deque(maxlen=limits.max_delivery_log)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._due: asyncio.Queue[Delivery] = asyncio.Queue()
        self._pending = 0
        self._dropped = 0
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP client and start the workers."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S), trust_env=False
        )
        self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def close(self) -> None:
        """Cancel the pending deliveries and the workers, then close the HTTP client."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def submit(
        self,
        channel: Channel,
        render: Render,
        *,
        content_type: str,
        delay_ms: int,
        on_delivered: Callable[[], None] | None = None,
    ) -> str | None:
        """Deliver ``render()`` to ``channel``'s webhook in ``delay_ms``; the delivery id.

        None when too many deliveries are pending: this one is dropped and counted.
        """
        if self._pending >= self._max_pending:
            self._dropped += 1
            _log.warning("dropping a %s delivery: %d already pending", channel, self._pending)
            return None
        delivery = Delivery(
            delivery_id=f"DL-{secrets.token_hex(_ID_BYTES)}",
            channel=channel,
            render=render,
            content_type=content_type,
            on_delivered=on_delivered,
        )
        self._pending += 1
        loop = asyncio.get_running_loop()
        self._timers[delivery.delivery_id] = loop.call_later(
            delay_ms / MS_PER_SECOND, self._make_due, delivery
        )
        return delivery.delivery_id

    def to_json(self) -> dict[str, object]:
        """What /_deliveries shows: pending and dropped counts, recent attempts newest first."""
        return {
            "pending": self._pending,
            "dropped": self._dropped,
            "attempts": [attempt.to_json() for attempt in reversed(self._attempts)],
        }

    def _make_due(self, delivery: Delivery) -> None:
        del self._timers[delivery.delivery_id]
        self._due.put_nowait(delivery)

    async def _work(self) -> None:
        while True:
            delivery = await self._due.get()
            try:
                await self._deliver(delivery)
            except Exception:
                _log.exception("delivery %s failed unexpectedly", delivery.delivery_id)
            finally:
                self._pending -= 1

    async def _deliver(self, delivery: Delivery) -> None:
        target = self._webhooks.url(delivery.channel)
        if target is None:
            self._record(delivery, None, 1, None, f"no {delivery.channel} webhook configured")
            return
        body = delivery.render()
        headers = {
            "Content-Type": delivery.content_type,
            SIGNATURE_HEADER: sign(body, self._webhooks.secret),
        }
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(RETRY_BACKOFF_S[attempt - 2])
            headers[TIMESTAMP_HEADER] = str(int(self._clock().timestamp()))
            status, error = await self._post(target, body, headers)
            self._record(delivery, target, attempt, status, error)
            if status is not None and HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
                if delivery.on_delivered is not None:
                    delivery.on_delivered()
                return
            if status is not None and not _retryable(status):
                return

    async def _post(
        self, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        assert self._session is not None, "start() the deliverer first"
        try:
            # No redirects: a redirect could lead off loopback.
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return response.status, None
        except TimeoutError:
            return None, f"timed out after {POST_TIMEOUT_S:g}s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(
        self,
        delivery: Delivery,
        target: str | None,
        attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        if error is not None or status is None or status >= HTTPStatus.MULTIPLE_CHOICES:
            _log.info(
                "%s delivery %s attempt %d to %s failed: %s",
                delivery.channel,
                delivery.delivery_id,
                attempt,
                target,
                error or status,
            )
        self._attempts.append(
            Attempt(
                delivery_id=delivery.delivery_id,
                channel=delivery.channel,
                target=target,
                attempt=attempt,
                status=status,
                error=error,
                at=self._clock(),
            )
        )


def _retryable(status: int) -> bool:
    return status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in _RETRYABLE_CLIENT_ERRORS
