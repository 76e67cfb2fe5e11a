"""Runs every journey on its interval, spread out, never overlapping, under a global cap.

>>> scheduler = Scheduler(engine.run, on_result=exposition.record)   # doctest: +SKIP
>>> scheduler.schedule(config.journeys)                               # doctest: +SKIP

Each journey fires at ``offset + k * interval`` in wall-clock time, where ``offset`` is a
stable hash of its id: 1,000 journeys on a 60 s interval are spread over the minute, and every
agent and every restart puts a journey at the same second. A journey still running when its
next tick comes skips that tick (``on_skip``). A journey whose channel has opening hours does
not run while the channel is closed (``wall_clock`` decides, so tests can fix the time). At
most ``max_concurrency`` runs go at once; lateness, from the tick to the moment a run really
starts, is reported to ``on_lateness``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from probes.hours import is_open
from probes.model import Journey
from probes.results import RunResult

DEFAULT_MAX_CONCURRENCY: Final = 256
_HASH_SPACE: Final = float(2**64)

log = logging.getLogger(__name__)


def offset(journey_id: str, interval: float) -> float:
    """The journey's stable phase within its interval, in [0, interval)."""
    digest = hashlib.blake2b(journey_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE * interval


def first_tick(journey_id: str, interval: float, now: float) -> float:
    """The first wall-clock time strictly after ``now`` at which the journey fires."""
    phase = offset(journey_id, interval)
    tick = phase + (math.floor((now - phase) / interval) + 1) * interval
    # When ``now`` is itself a tick, the division can round just below a whole number.
    return tick if tick > now else tick + interval


@dataclass(slots=True)
class _Entry:
    journey: Journey
    when: float = 0.0  # loop time of the next tick
    handle: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Scheduler:
    """Fires journey runs on schedule in the running event loop."""

    def __init__(
        self,
        run: Callable[[Journey], Awaitable[RunResult]],
        *,
        on_result: Callable[[RunResult], None],
        on_skip: Callable[[Journey], None] = lambda journey: None,
        on_lateness: Callable[[float], None] = lambda seconds: None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._run = run
        self._on_result = on_result
        self._on_skip = on_skip
        self._on_lateness = on_lateness
        self._slots = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self._wall = wall_clock
        self._entries: dict[str, _Entry] = {}
        self.running = 0

    def schedule(self, journeys: Iterable[Journey]) -> None:
        """Follow a new set of journeys: unchanged ones keep their timing, removed ones stop."""
        loop = asyncio.get_running_loop()
        wanted = {j.id: j for j in journeys}
        for journey_id in list(self._entries):
            if journey_id not in wanted:
                self._drop(journey_id)
        for journey_id, journey in wanted.items():
            entry = self._entries.get(journey_id)
            if entry is not None and entry.journey.interval == journey.interval:
                entry.journey = journey
                continue
            if entry is not None:
                self._drop(journey_id, cancel_run=False)
            entry = _Entry(journey, task=entry.task if entry else None)
            wall_now = self._wall()
            entry.when = loop.time() + first_tick(journey_id, journey.interval, wall_now) - wall_now
            entry.handle = loop.call_at(entry.when, self._fire, entry)
            self._entries[journey_id] = entry

    @property
    def journeys(self) -> int:
        return len(self._entries)

    def stop(self) -> None:
        """Stop firing and cancel the runs in progress."""
        for journey_id in list(self._entries):
            self._drop(journey_id)

    def _drop(self, journey_id: str, *, cancel_run: bool = True) -> None:
        entry = self._entries.pop(journey_id)
        if entry.handle is not None:
            entry.handle.cancel()
        if cancel_run and entry.task is not None:
            entry.task.cancel()

    def _fire(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        scheduled = entry.when
        entry.when += entry.journey.interval
        entry.handle = loop.call_at(entry.when, self._fire, entry)
        hours = entry.journey.hours
        if hours is not None and not is_open(hours, datetime.fromtimestamp(self._wall(), UTC)):
            return  # a staffed channel outside its opening hours: not run, not downtime
        if entry.task is not None and not entry.task.done():
            self._on_skip(entry.journey)
            return
        entry.task = loop.create_task(self._go(entry.journey, scheduled))

    async def _go(self, journey: Journey, scheduled: float) -> None:
        async with self._slots:
            self._on_lateness(max(0.0, asyncio.get_running_loop().time() - scheduled))
            self.running += 1
            try:
                result = await self._run(journey)
            except asyncio.CancelledError:
                raise
            except Exception:  # the engine reports target failures as results; this is a bug
                log.exception("run of %s crashed", journey.id)
                return
            finally:
                self.running -= 1
        if self._entries.get(journey.id) is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("publishing the result of %s failed", journey.id)
