"""Inbound webhooks: the events providers post to ``/callbacks/<name>``, handed to the runs
that wait for them.

checks.yaml calls them ``callbacks:`` (its key, the URL path and the metric names are public and
keep that word); in the code they are webhooks, so that they are never confused with the voice
call-back a customer books.

An SMS reply, a push receipt or an inbound email reaches carewatch as a request from the
provider, not as the answer to one of its own requests. The receiver (``probes.service.receiver``)
checks each one and delivers it here as an ``Event``; an ``await`` step waits here for the
event that matches its run, usually on a value the run sent, such as its ``${run_id}``::

    hub = WebhookHub()
    event = await hub.wait("sms-inbound", lambda e: run_id in e.body.decode(), within=30)

A provider can answer before the run starts waiting (a fast SMS gateway replies while the send
step is still reading its response), so an event that no run takes is kept a little while for
runs that start waiting soon after. It counts as ``unmatched`` only when it leaves that buffer.

Pure asyncio, and bounded: the waiters are runs in progress, and the buffer of each webhook
holds at most ``keep`` events, ``keep_bytes`` bytes, for ``keep_for`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from probes.errors import WebhookTimeout

#: How many events nobody waited for are kept per webhook, how long, and how many bytes.
KEEP: Final = 256
KEEP_FOR: Final = 60.0
KEEP_BYTES: Final = 16 * 1024 * 1024

log = logging.getLogger("carewatch")


@dataclass(frozen=True, slots=True)
class Event:
    """One inbound request, as the receiver accepted it."""

    received_at: float  # time.perf_counter() when it arrived
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    document: Any = None  # the body as JSON, or a form body's fields as a dict; else None


class Result(StrEnum):
    """What became of an inbound event: the ``result`` label of its counter."""

    MATCHED = "matched"  # a waiting run took it
    UNMATCHED = "unmatched"  # no run took it while it was kept
    REJECTED = "rejected"  # the receiver refused it: bad signature or token, too large


Predicate = Callable[[Event], bool]


@dataclass(eq=False, slots=True)
class _Waiter:
    predicate: Predicate
    future: asyncio.Future[Event]
    rejected: int = 0  # events offered to it while it waited, that it did not match


@dataclass(slots=True)
class _Kept:
    events: deque[Event] = field(default_factory=deque)
    size: int = 0  # bytes of their bodies


class WebhookHub:
    """Where inbound events meet the runs waiting for them, per webhook name.

    An event is offered to the webhook's waiters in the order they began waiting and goes to
    the first that matches; failing that, it is kept for waiters to come.
    """

    def __init__(
        self, *, keep: int = KEEP, keep_for: float = KEEP_FOR, keep_bytes: int = KEEP_BYTES
    ) -> None:
        self.keep = keep
        self.keep_for = keep_for
        self.keep_bytes = keep_bytes
        self._waiters: dict[str, dict[_Waiter, None]] = {}  # an ordered set per webhook
        self._kept: dict[str, _Kept] = {}
        self._counts: Counter[tuple[str, Result]] = Counter()

    async def wait(self, webhook: str, predicate: Predicate, within: float) -> Event:
        """The first event of ``webhook`` that ``predicate`` accepts, kept or arriving within
        ``within`` seconds; WebhookTimeout if none comes."""
        self.expire()
        kept = self._kept.get(webhook)
        for event in kept.events if kept else ():
            if _accepts(predicate, event):
                self._unkeep(webhook, event)
                self._counts[webhook, Result.MATCHED] += 1
                return event
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        waiters = self._waiters.setdefault(webhook, {})
        waiters[waiter] = None
        taken = False
        try:
            try:
                async with asyncio.timeout(within):
                    event = await waiter.future
            except TimeoutError:
                if not waiter.future.done() or waiter.future.cancelled():
                    raise WebhookTimeout(waiter.rejected) from None
                event = waiter.future.result()  # it came as the time ran out: still in time
            taken = True
            self._counts[webhook, Result.MATCHED] += 1
            return event
        finally:
            del waiters[waiter]
            if not waiters and self._waiters.get(webhook) is waiters:
                del self._waiters[webhook]
            if not taken and waiter.future.done() and not waiter.future.cancelled():
                self._keep(webhook, waiter.future.result())  # cancelled once it had come

    def deliver(self, webhook: str, event: Event) -> bool:
        """Hand ``event`` to the first run waiting on ``webhook`` that matches it: True; or
        keep it for runs about to wait: False."""
        self.expire()
        for waiter in self._waiters.get(webhook, {}):
            if waiter.future.done():
                continue
            if _accepts(waiter.predicate, event):
                waiter.future.set_result(event)
                return True
            waiter.rejected += 1
        self._keep(webhook, event)
        return False

    def reject(self, webhook: str) -> None:
        """Count an event the receiver refused (bad signature or token, too large)."""
        self._counts[webhook, Result.REJECTED] += 1

    def count(self, webhook: str, result: Result) -> int:
        """Events of ``webhook`` that ended with ``result`` so far."""
        return self._counts[webhook, result]

    def expire(self) -> None:
        """Drop, and count as unmatched, kept events older than ``keep_for``."""
        oldest = time.perf_counter() - self.keep_for
        for webhook in list(self._kept):
            kept = self._kept[webhook]
            while kept.events and kept.events[0].received_at < oldest:
                self._drop(webhook, kept)
            if not kept.events:
                del self._kept[webhook]

    def _keep(self, webhook: str, event: Event) -> None:
        kept = self._kept.setdefault(webhook, _Kept())
        kept.events.append(event)
        kept.size += len(event.body)
        while kept.events and (len(kept.events) > self.keep or kept.size > self.keep_bytes):
            self._drop(webhook, kept)
        if not kept.events:
            del self._kept[webhook]

    def _drop(self, webhook: str, kept: _Kept) -> None:
        event = kept.events.popleft()
        kept.size -= len(event.body)
        self._counts[webhook, Result.UNMATCHED] += 1

    def _unkeep(self, webhook: str, event: Event) -> None:
        kept = self._kept[webhook]
        kept.events.remove(event)
        kept.size -= len(event.body)
        if not kept.events:
            del self._kept[webhook]


def _accepts(predicate: Predicate, event: Event) -> bool:
    try:
        return predicate(event)
    except Exception:  # a waiter's bug must not break delivery to the others
        log.exception("a webhook waiter failed to judge an event")
        return False
