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
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Final

from probes.model.config import Journey
from probes.model.hours import is_open
from probes.runs.results import RunResult

DEFAULT_MAX_CONCURRENCY: Final = 256
#: The longest interval a timer can be set for (about 31 years). checks.yaml refuses absurd
#: values before; this keeps a value that slips through from breaking the one timer.
LONGEST_INTERVAL_SECONDS: Final = 1e9
_HASH_SPACE: Final = float(2**64)
#: A loop whose clock is further than this from ``time.monotonic`` counts from another origin.
_SAME_CLOCK_SECONDS: Final = 60.0

log = logging.getLogger(__name__)


def offset(journey_id: str, interval: float) -> float:
    """The journey's stable phase within its interval, in [0, interval)."""
    digest = hashlib.blake2b(journey_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE * interval


def loop_now(loop: asyncio.AbstractEventLoop) -> float:
    """The loop's clock, now.

    uvloop's ``loop.time()`` is the time its current iteration began, in whole milliseconds: a
    callback that runs after a long one (a config of thousands of journeys just parsed, a slice
    of a scrape) reads a time already past. Both loops count from the monotonic clock's origin,
    so the monotonic clock itself is the loop's clock, fresh: ticks are placed where the wall
    clock puts them, and lateness is not under-read.
    """
    cached = loop.time()
    fresh = time.monotonic()
    return fresh if abs(fresh - cached) < _SAME_CLOCK_SECONDS else cached


def first_tick(journey_id: str, interval: float, now: float) -> float:
    """The first wall-clock time strictly after ``now`` at which the journey fires."""
    phase = offset(journey_id, interval)
    tick = phase + (math.floor((now - phase) / interval) + 1) * interval
    # When ``now`` is itself a tick, the division can round just below a whole number.
    return tick if tick > now else tick + interval


def _place(journey: Journey, loop_time: float, wall_now: float) -> float:
    """The loop time of the journey's first tick; ValueError when its interval cannot have one."""
    interval = journey.interval
    if not (0 < interval <= LONGEST_INTERVAL_SECONDS):  # NaN fails too
        raise ValueError(
            f"journey {journey.id}: cannot schedule an interval of {interval!r} s "
            f"(expected more than 0 and at most {LONGEST_INTERVAL_SECONDS:g})"
        )
    return loop_time + first_tick(journey.id, interval, wall_now) - wall_now


class _Entry:
    """A journey's place in the queue: the loop time of its next tick."""

    __slots__ = ("dropped", "journey", "seq", "when")

    def __init__(self, journey: Journey, when: float, seq: int) -> None:
        self.journey = journey
        self.when = when
        self.seq = seq  # ties on ``when`` go in scheduling order
        self.dropped = False

    def __lt__(self, other: _Entry) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class Scheduler:
    """Fires journey runs on schedule in the running event loop.

    The journeys wait in one heap behind one timer, rather than a timer each, and a run's task
    is kept only while it runs. Between runs a journey holds no object the run created: with
    thousands of journeys, what stays alive is what every full garbage collection walks, and
    per-journey timers, contexts and finished tasks made those collections hold the loop for
    50-400 ms at 500 runs/s (B2).
    """

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
        self._queue: list[_Entry] = []  # a heap; dropped entries leave at the top or on schedule()
        self._seq = itertools.count()
        # uvloop's ``call_at`` for a time less than 1 ms away returns a plain ``Handle``, with
        # no ``when()``: the time the timer is set for is kept beside it.
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        self._tasks: dict[str, asyncio.Task[None]] = {}  # runs in progress, by journey id
        self.running = 0
        self._stopped = False

    def schedule(self, journeys: Iterable[Journey]) -> None:
        """Follow a new set of journeys: unchanged ones keep their timing, removed ones stop.

        All or nothing: every new tick is placed before anything changes, so a journey whose
        tick cannot be placed (an interval that is not a finite positive number) raises and
        leaves the journeys scheduled before exactly as they were.
        """
        loop = asyncio.get_running_loop()
        loop_time, wall_now = loop_now(loop), self._wall()  # one instant on both clocks
        wanted = {j.id: j for j in journeys}
        self._stopped = False
        placed: dict[str, float] = {}
        for journey_id, journey in wanted.items():
            entry = self._entries.get(journey_id)
            if entry is None or entry.journey.interval != journey.interval:
                placed[journey_id] = _place(journey, loop_time, wall_now)
        for journey_id in list(self._entries):
            if journey_id not in wanted:
                self._drop(journey_id)
        for journey_id, journey in wanted.items():
            when = placed.get(journey_id)
            if when is None:
                self._entries[journey_id].journey = journey
                continue
            if journey_id in self._entries:
                self._drop(journey_id, cancel_run=False)  # a run in progress finishes
            entry = _Entry(journey, when, next(self._seq))
            heapq.heappush(self._queue, entry)
            self._entries[journey_id] = entry
        # Dropped entries would otherwise wait to reach the top, for up to an interval, holding
        # the journeys of the config just replaced: thousands of them on an hourly interval.
        self._queue = [entry for entry in self._queue if not entry.dropped]
        heapq.heapify(self._queue)
        self._arm(loop)

    @property
    def journeys(self) -> int:
        return len(self._entries)

    @property
    def alive(self) -> bool:
        """Whether every scheduled journey will fire: stopped, or without a timer, it will not."""
        return not self._stopped and (not self._entries or self._timer is not None)

    def stop(self) -> None:
        """Stop firing and cancel the runs in progress."""
        self._stopped = True
        for journey_id in list(self._entries):
            self._drop(journey_id)
        for task in self._tasks.values():
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop(self, journey_id: str, *, cancel_run: bool = True) -> None:
        self._entries.pop(journey_id).dropped = True
        task = self._tasks.get(journey_id)
        if cancel_run and task is not None:
            task.cancel()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the one timer to the earliest tick in the queue."""
        queue = self._queue
        while queue and queue[0].dropped:
            heapq.heappop(queue)
        when = queue[0].when if queue else None
        if self._timer is not None:
            if when is not None and self._timer_when == when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = loop.call_at(when, self._wake)
            self._timer_when = when

    def _wake(self) -> None:
        """Fire every journey whose tick has come, and wait for the next one."""
        self._timer = None
        loop = asyncio.get_running_loop()
        queue = self._queue
        now = loop_now(loop)  # a wake-up a little early (uvloop counts milliseconds) re-arms
        while queue and queue[0].when <= now:
            entry = queue[0]
            if entry.dropped:
                heapq.heappop(queue)
                continue
            scheduled = entry.when
            entry.when += entry.journey.interval
            heapq.heapreplace(queue, entry)
            try:
                self._fire(loop, entry.journey, scheduled)
            except Exception:  # one journey's bug must not stop the timer of all the others
                log.exception("starting a run of %s failed", entry.journey.id)
        self._arm(loop)

    def _fire(self, loop: asyncio.AbstractEventLoop, journey: Journey, scheduled: float) -> None:
        hours = journey.hours
        if hours is not None and not is_open(hours, datetime.fromtimestamp(self._wall(), UTC)):
            return  # a staffed channel outside its opening hours: not run, not downtime
        if journey.id in self._tasks:
            self._on_skip(journey)
            return
        self._tasks[journey.id] = loop.create_task(self._go(journey, scheduled))

    async def _go(self, journey: Journey, scheduled: float) -> None:
        try:
            async with self._slots:
                self._on_lateness(max(0.0, loop_now(asyncio.get_running_loop()) - scheduled))
                self.running += 1
                try:
                    result = await self._run(journey)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the engine reports target failures as results; a bug
                    log.exception("run of %s crashed", journey.id)
                    return
                finally:
                    self.running -= 1
        finally:
            if self._tasks.get(journey.id) is asyncio.current_task():
                del self._tasks[journey.id]
        if self._entries.get(journey.id) is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("publishing the result of %s failed", journey.id)
