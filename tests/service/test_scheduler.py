"""The scheduler: stable offsets, no overlapping runs, the global cap, lateness, rescheduling.

Runs are stand-in coroutines that sleep and record what ran when: the scheduler only needs
``run(journey) -> RunResult``. Journeys come from YAML and get short intervals with
``dataclasses.replace`` (the model's 1 s minimum is a config rule, not a scheduler one).
A constant injected ``wall_clock`` puts a journey's first tick a known delay after
``schedule()``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

import pytest

from probes.model.config import Journey
from probes.model.load import parse_config
from probes.runs.results import Attempt, RunResult
from probes.service.scheduler import Scheduler, first_tick, offset
from tests._support.hours import HOURS_CONFIG, PARIS_WEDNESDAY_10H, PARIS_WEDNESDAY_22H
from tests._support.paths import REPO

#: Upper bound on any wait for something the scheduler should do within about a second.
WAIT_LIMIT: Final = 5.0
#: How far in the future (seconds) a constant wall clock puts a journey's first tick.
LEAD: Final = 0.05
POLL: Final = 0.01
#: Tolerance when comparing due times: they come from float arithmetic, not from the clock.
DUE: Final = 1e-3


def journeys(*names: str, interval: float) -> list[Journey]:
    """Journeys ``app/<name>`` (never actually requested), with ``interval`` seconds."""
    text = "channels:\n  - name: app\n    kind: app\n    team: care\n    journeys:\n"
    for name in names:
        text += f"      - {{name: {name}, steps: [{{name: s, url: 'http://127.0.0.1:9/'}}]}}\n"
    return [replace(j, interval=interval) for j in parse_config(text, environ={}).journeys]


def wall_clock_before(journey_id: str, interval: float, lead: float = LEAD) -> Callable[[], float]:
    """A constant wall clock ``lead`` seconds before one of the journey's ticks."""
    now = offset(journey_id, interval) + 1000 * interval - lead
    return lambda: now


async def until(condition: Callable[[], bool], *, within: float = WAIT_LIMIT) -> None:
    """Wait for ``condition``; fail the test if it does not hold ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"still not true after {within}s"
        await asyncio.sleep(POLL)


@dataclass
class Runs:
    """A stand-in for ``Engine.run`` that sleeps ``seconds`` and records everything."""

    seconds: float = 0.0
    seconds_for: dict[str, float] = field(default_factory=dict)  # by journey id, over `seconds`
    crash: bool = False
    started: list[tuple[str, float]] = field(default_factory=list)  # (journey id, loop time)
    seen: list[Journey] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    running: Counter[str] = field(default_factory=Counter)
    most_at_once: Counter[str] = field(default_factory=Counter)  # per journey id
    most_in_total: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def __call__(self, journey: Journey) -> RunResult:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.started.append((journey.id, asyncio.get_running_loop().time()))
        self.seen.append(journey)
        self.running[journey.id] += 1
        self.most_at_once[journey.id] = max(self.most_at_once[journey.id], self.running[journey.id])
        self.most_in_total = max(self.most_in_total, self.running.total())
        try:
            await asyncio.sleep(self.seconds_for.get(journey.id, self.seconds))
            if self.crash:
                raise RuntimeError("engine bug")
        except asyncio.CancelledError:
            self.cancelled.append(journey.id)
            raise
        finally:
            self.running[journey.id] -= 1
        attempt = Attempt(number=1, steps=(), duration=self.seconds)
        return RunResult(journey.channel, journey.name, "test", time.time(), (attempt,))

    def starts(self, journey_id: str) -> list[float]:
        return [when for ran, when in self.started if ran == journey_id]

    def ticks(self) -> list[float]:
        """The loop time each run was due, free of start-up jitter: its start less its lateness.

        ``on_lateness`` is called just before each run begins, so the two lists pair up.
        """
        return [when - late for (_, when), late in zip(self.started, self.lateness, strict=True)]

    def scheduler(self, **options: Any) -> Scheduler:
        return Scheduler(
            self,
            on_result=self.results.append,
            on_skip=lambda journey: self.skipped.append(journey.id),
            on_lateness=self.lateness.append,
            **options,
        )


@pytest.fixture
async def harness() -> AsyncIterator[Callable[..., tuple[Runs, Scheduler]]]:
    """``runs, scheduler = harness(seconds=..., **scheduler_options)``; all stopped after."""
    made: list[tuple[Runs, Scheduler]] = []

    def make(
        seconds: float = 0.0,
        *,
        crash: bool = False,
        seconds_for: dict[str, float] | None = None,
        **options: Any,
    ) -> tuple[Runs, Scheduler]:
        runs = Runs(seconds=seconds, crash=crash, seconds_for=seconds_for or {})
        made.append((runs, runs.scheduler(**options)))
        return made[-1]

    yield make
    for runs, scheduler in made:
        scheduler.stop()
        await asyncio.gather(*runs.tasks, return_exceptions=True)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# --- offsets and ticks ----------------------------------------------------------------------------


#: Rounding allowed in tick arithmetic: a few ulps of a Unix time (about 2.4e-7 s each).
TICK_ERROR: Final = 1e-5
IDS: Final = ["app/login", "app/open-ticket", "help/search-article", "chat/handover", "x"]
INTERVALS: Final = [0.2, 1.0, 15.0, 60.0, 3600.0]


@pytest.mark.parametrize("interval", INTERVALS)
def test_offset_is_stable_and_inside_the_interval(interval: float) -> None:
    for journey_id in IDS:
        phase = offset(journey_id, interval)
        assert phase == offset(journey_id, interval)
        assert 0 <= phase < interval
    assert len({offset(journey_id, interval) for journey_id in IDS}) == len(IDS)


def test_offset_is_the_same_in_another_process() -> None:
    """Every agent and every restart puts a journey at the same second (no salted hash())."""
    code = f"from probes.service.scheduler import offset; print([offset(i, 60.0) for i in {IDS!r}])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == str([offset(i, 60.0) for i in IDS])


def test_offsets_spread_a_thousand_journeys_over_the_minute() -> None:
    """Counts per one-second bucket stay within what a uniform hash gives but for 1 in 10^5.

    For a uniform hash, a bucket's count is Binomial(n, 1/60). The union bound over the 60
    buckets gives the largest count (and the smallest) that every bucket respects except with
    probability ``risk``; the hash is deterministic, so this checks its quality, not luck.
    """
    n, interval, buckets, risk = 1000, 60.0, 60, 1e-5
    p = 1 / buckets

    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    most = next(k for k in range(n + 1) if buckets * sum(pmf[k + 1 :]) < risk)
    least = max(k for k in range(n + 1) if buckets * sum(pmf[:k]) < risk)
    counts = Counter(int(offset(f"app/journey-{i}", interval)) for i in range(n))

    assert set(counts) <= set(range(buckets))
    assert most <= 3 * n / buckets  # the bound is a small multiple of the mean (16.7)...
    assert max(counts.values()) <= most  # ...and no second holds more
    assert least >= 1
    assert min(counts[b] for b in range(buckets)) >= least  # no second is left empty


@pytest.mark.parametrize("interval", INTERVALS)
def test_first_tick_is_strictly_after_now_and_aligned(interval: float) -> None:
    for journey_id in IDS:
        phase = offset(journey_id, interval)
        for start in (0.0, 1000.0, time.time()):
            now = start
            for _ in range(200):  # each tick, taken as "now", must give the next one
                tick = first_tick(journey_id, interval, now)
                assert now < tick <= now + interval + TICK_ERROR
                cycles = round((tick - phase) / interval)
                assert tick == pytest.approx(phase + cycles * interval, abs=TICK_ERROR)
                now = tick
            now = start + interval / 3
            assert first_tick(journey_id, interval, now) == first_tick(journey_id, interval, now)


# --- no overlapping runs --------------------------------------------------------------------------


async def test_runs_of_one_journey_never_overlap(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    """A run longer than the interval makes the next tick skip; the one after runs again."""
    (journey,) = journeys("slow", interval=1.0)
    runs, scheduler = harness(seconds=1.5, wall_clock=wall_clock_before(journey.id, 1.0))

    scheduler.schedule([journey])
    await until(lambda: len(runs.started) == 2)

    assert runs.skipped == [journey.id]  # the tick at +1 s came while the first run went on
    assert runs.most_at_once[journey.id] == 1
    first, second = runs.starts(journey.id)
    assert second - first >= 1.5  # the second run began after the first had finished...
    due_first, due_second = runs.ticks()
    assert due_second - due_first == pytest.approx(2.0, abs=DUE)  # ...on the tick after
    assert len(runs.results) == 1


# --- the global cap and lateness ------------------------------------------------------------------


def clustered_names(count: int, interval: float, window: float) -> list[str]:
    """``count`` journey names whose offsets all fall within ``window`` seconds."""
    phases = sorted((offset(f"app/j{i}", interval), f"j{i}") for i in range(1000))
    for i in range(len(phases) - count + 1):
        if phases[i + count - 1][0] - phases[i][0] <= window:
            return [name for _, name in phases[i : i + count]]
    raise AssertionError("no cluster found; widen the window")


async def test_global_cap_holds_and_waiting_runs_report_lateness(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    interval, window, seconds = 1.0, 0.005, 0.3
    fleet = journeys(*clustered_names(6, interval, window), interval=interval)
    earliest = min(fleet, key=lambda j: offset(j.id, interval))
    runs, scheduler = harness(
        seconds=seconds, max_concurrency=2, wall_clock=wall_clock_before(earliest.id, interval)
    )

    scheduler.schedule(fleet)
    await until(lambda: len(runs.results) == 6)

    assert runs.most_in_total == 2
    assert sorted(j for j, _ in runs.started[:6]) == sorted(j.id for j in fleet)
    # Six ticks within `window`, two slots: the 3rd and 4th runs to start waited for one of the
    # first two to finish, the 5th and 6th for one of the 3rd and 4th.
    first_six = sorted(runs.lateness[:6])
    assert all(late >= 0 for late in first_six)
    assert all(late >= seconds - window for late in first_six[2:4]), first_six
    assert all(late >= 2 * seconds - window for late in first_six[4:]), first_six
    assert scheduler.running <= 2


# --- rescheduling ---------------------------------------------------------------------------------


async def test_scheduling_the_same_journeys_again_keeps_their_timers(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    """schedule() every 20 ms: a journey whose timer restarted each time would never fire."""
    interval, lead = 0.4, 0.1
    (journey,) = journeys("steady", interval=interval)
    runs, scheduler = harness(wall_clock=wall_clock_before(journey.id, interval, lead))
    changed = replace(journey, timeout=0.3)  # same id and interval, new content

    scheduler.schedule([journey])
    loop = asyncio.get_running_loop()
    began = loop.time()
    while len(runs.started) < 3:
        assert loop.time() - began < WAIT_LIMIT, runs.started
        scheduler.schedule([changed])
        await asyncio.sleep(0.02)

    assert scheduler.journeys == 1
    assert runs.skipped == []
    assert gaps(runs.ticks()) == pytest.approx([interval] * 2, abs=DUE)  # and no extra runs
    assert runs.seen[-1] is changed  # the new content is what runs


async def test_removing_a_journey_stops_it_and_cancels_its_run(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    gone, kept = journeys("gone", "kept", interval=0.2)
    runs, scheduler = harness(seconds_for={gone.id: 30.0})
    scheduler.schedule([gone])
    await until(lambda: runs.running[gone.id] == 1)

    scheduler.schedule([kept])
    await until(lambda: runs.cancelled == [gone.id])
    await until(lambda: len(runs.starts(kept.id)) >= 3)

    assert len(runs.starts(gone.id)) == 1
    assert runs.running[gone.id] == 0
    assert all(result.journey == "kept" for result in runs.results)
    assert scheduler.journeys == 1


async def test_changing_the_interval_reschedules(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    (fast,) = journeys("tempo", interval=0.15)
    slow = replace(fast, interval=0.6)
    runs, scheduler = harness()

    scheduler.schedule([fast])
    await until(lambda: len(runs.started) >= 3)
    changed_at = asyncio.get_running_loop().time()
    scheduler.schedule([slow])
    await until(lambda: len([due for due in runs.ticks() if due > changed_at]) >= 3)

    earlier = [due for due in runs.ticks() if due <= changed_at]
    later = [due for due in runs.ticks() if due > changed_at]
    assert gaps(earlier) == pytest.approx([0.15] * (len(earlier) - 1), abs=DUE)
    assert gaps(later) == pytest.approx([0.6] * (len(later) - 1), abs=DUE)
    assert runs.seen[-1] is slow


async def test_changing_the_interval_mid_run_does_not_overlap(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    """The run in flight is carried over: the new, shorter interval's ticks skip until it ends."""
    (journey,) = journeys("busy", interval=1.0)
    runs, scheduler = harness(seconds=0.6, wall_clock=wall_clock_before(journey.id, 1.0))

    scheduler.schedule([journey])
    await until(lambda: len(runs.started) == 1)
    scheduler.schedule([replace(journey, interval=0.1)])
    await until(lambda: len(runs.started) == 2)

    assert runs.most_at_once[journey.id] == 1
    assert runs.skipped  # ticks of the new interval came while the first run went on
    assert runs.cancelled == []


async def test_stop_cancels_everything(harness: Callable[..., tuple[Runs, Scheduler]]) -> None:
    fleet = journeys("a", "b", "c", interval=0.2)
    runs, scheduler = harness(seconds=30.0)
    scheduler.schedule(fleet)
    await until(lambda: runs.running.total() == 3)

    scheduler.stop()
    await until(lambda: len(runs.cancelled) == 3)
    started = len(runs.started)
    await asyncio.sleep(0.5)  # more than two intervals: nothing fires any more

    assert sorted(runs.cancelled) == sorted(j.id for j in fleet)
    assert len(runs.started) == started
    assert runs.results == []
    assert scheduler.journeys == 0
    assert scheduler.running == 0


async def test_a_crashing_run_is_logged_and_the_schedule_goes_on(
    harness: Callable[..., tuple[Runs, Scheduler]], caplog: pytest.LogCaptureFixture
) -> None:
    (journey,) = journeys("buggy", interval=0.15)
    runs, scheduler = harness(crash=True)

    def crashes() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "probes.service.scheduler"]

    with caplog.at_level(logging.ERROR, logger="probes.service.scheduler"):
        scheduler.schedule([journey])
        await until(lambda: len(crashes()) >= 2)  # the run after a crash still happens

    assert crashes()[0].getMessage() == "run of app/buggy crashed"
    assert crashes()[0].exc_info is not None  # with the traceback
    assert runs.results == []
    assert scheduler.running == runs.running.total()  # a crash does not leak a slot count


async def test_a_failing_publisher_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (journey,) = journeys("published", interval=0.15)
    runs = Runs()

    def publish(result: RunResult) -> None:
        raise ValueError("exposition bug")

    scheduler = Scheduler(runs, on_result=publish)

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "probes.service.scheduler"]

    try:
        with caplog.at_level(logging.ERROR, logger="probes.service.scheduler"):
            scheduler.schedule([journey])
            await until(lambda: len(failures()) >= 2)  # the next run still happens
    finally:
        scheduler.stop()
        await asyncio.gather(*runs.tasks, return_exceptions=True)

    assert failures()[0].getMessage() == "publishing the result of app/published failed"
    assert failures()[0].exc_info is not None


# --- opening hours ----------------------------------------------------------------------------


def test_the_fixed_times_are_what_they_say() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    at_10 = datetime.fromtimestamp(PARIS_WEDNESDAY_10H, UTC).astimezone(paris)
    assert (at_10.strftime("%a %H:%M"), at_10.date().isoformat()) == ("Wed 10:00", "2026-11-25")


@pytest.mark.parametrize(
    ("now", "runs"), [(PARIS_WEDNESDAY_10H, True), (PARIS_WEDNESDAY_22H, False)]
)
async def test_a_closed_channel_does_not_run(
    harness: Callable[..., tuple[Runs, Scheduler]], now: float, runs: bool
) -> None:
    (journey,) = [replace(j, interval=0.1) for j in parse_config(HOURS_CONFIG, environ={}).journeys]
    assert journey.hours is not None
    recorder, scheduler = harness(wall_clock=lambda: now)
    scheduler.schedule([journey])
    await asyncio.sleep(0.5)  # about five ticks
    assert bool(recorder.started) is runs
    assert recorder.skipped == []  # closed is not "skipped": nothing was late or overlapping


# --- all or nothing -------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [math.nan, math.inf, 0.0, -1.0, 1e12])
async def test_a_journey_that_cannot_be_placed_changes_nothing(
    harness: Callable[..., tuple[Runs, Scheduler]], interval: float
) -> None:
    kept, edited, added = journeys("kept", "edited", "added", interval=0.1)
    runs, scheduler = harness()
    scheduler.schedule([kept, edited])
    await until(lambda: len(runs.starts(edited.id)) >= 1)

    with pytest.raises(ValueError, match="journey app/edited: cannot schedule an interval of"):
        scheduler.schedule([kept, replace(edited, interval=interval), added])

    assert scheduler.journeys == 2
    assert scheduler.alive
    before = len(runs.starts(edited.id))
    await until(lambda: len(runs.starts(edited.id)) >= before + 2)
    assert runs.starts(added.id) == []
    assert {j.interval for j in runs.seen} == {0.1}


async def test_a_run_that_cannot_start_is_logged_and_the_others_go_on(
    harness: Callable[..., tuple[Runs, Scheduler]], caplog: pytest.LogCaptureFixture
) -> None:
    """A bug when a run starts (here the wall clock, read for opening hours) hits one journey."""
    (hours,) = [replace(j, interval=0.1) for j in parse_config(HOURS_CONFIG, environ={}).journeys]
    (always,) = journeys("always", interval=0.1)
    readings = itertools.count()

    def clock() -> float:
        if next(readings) > 0:  # the first reading places the ticks
            raise OSError("clock bug")
        return PARIS_WEDNESDAY_10H

    runs, scheduler = harness(wall_clock=clock)
    with caplog.at_level(logging.ERROR, logger="probes.service.scheduler"):
        scheduler.schedule([hours, always])
        await until(lambda: len(runs.starts(always.id)) >= 4)
    assert runs.starts(hours.id) == []
    assert f"starting a run of {hours.id} failed" in caplog.text
    assert scheduler.alive


async def test_alive_until_stopped(harness: Callable[..., tuple[Runs, Scheduler]]) -> None:
    _, scheduler = harness()
    assert scheduler.alive  # nothing to fire is not a dead scheduler
    scheduler.schedule(journeys("one", interval=0.1))
    assert scheduler.alive
    scheduler.stop()
    assert not scheduler.alive


async def test_a_tick_due_within_a_millisecond_can_be_rescheduled(
    harness: Callable[..., tuple[Runs, Scheduler]],
) -> None:
    """uvloop sets a timer less than 1 ms away as a plain callback, which has no ``when()``."""
    first, second = journeys("first", "second", interval=0.5)
    runs, scheduler = harness(wall_clock=wall_clock_before(first.id, 0.5, lead=1e-6))
    for _ in range(10):  # the loop's cached time must be fresh: most tries, not every one
        await asyncio.sleep(0)  # a fresh loop iteration
        scheduler.schedule([])
        scheduler.schedule([first])
        scheduler.schedule([first, second])  # compares the timer's time with the earliest tick
        assert scheduler.journeys == 2
    await until(lambda: len(runs.starts(second.id)) >= 1)
