"""Scheduling under load (B2) and memory (B6): N journeys run by the real service.

    python -m bench.scheduling [--journeys 5000] [--interval 10] [--seconds 60]
                               [--steps 1] [--scrape 15] [--repeat 3]

Every step is one HTTP GET against a loopback target served by a separate process, so the
target's CPU is not charged to the scheduler. ``probes.service.agent.Service`` runs the journeys as
the exporter does (scheduler, engine, exposition, on ``probes.engine.loop``), and its /metrics is
fetched whole every ``--scrape`` seconds by a scraper in its own process, as Prometheus would:
the service's side of a scrape is work its event loop really does, the scraper's is not.
Lateness is every exact value the scheduler reports; missed runs are skipped runs plus ticks
that came due and never started. RSS is read at the end of each run and the highest kept; its
anchor is the same process before the first run loads any journey. Every other figure is the
median over ``--repeat`` runs, except counts, which are totals. B3 (``bench.scrape``) calls
``run`` with two steps and 1 s scrapes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import math
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any, Final

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench._journeys import checks_text
from bench._proc import rss_bytes
from bench._table import Row, print_table
from bench._target import Target
from probes.engine import run_on_uvloop
from probes.model import Journey
from probes.service import Service, loop_now, offset

GOAL_P99_SECONDS: Final = 0.020
GOAL_MISSED: Final = 0
GOAL_RSS_BYTES: Final = 300 * 1024 * 1024
#: Prometheus's default scrape interval.
DEFAULT_SCRAPE_SECONDS: Final = 15.0
DEFAULT_REPEAT: Final = 3
#: Ticks due this close to the end may legitimately still be waiting: not counted as missed.
TAIL_GRACE_SECONDS: Final = 2.0
SCRAPE_TIMEOUT_SECONDS: Final = 10.0
SCRAPER_START_TIMEOUT_SECONDS: Final = 10.0
STOP_TIMEOUT_SECONDS: Final = 5.0
JOURNEY_TIMEOUT_SECONDS: Final = 5.0
#: What Prometheus asks for; carewatch answers the 0.0.4 text format either way.
SCRAPE_ACCEPT: Final = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4"
LOOPBACK: Final = "127.0.0.1"
METRICS_PATH: Final = "/metrics"
_MIB: Final = 1024 * 1024
_MS: Final = 1000.0
#: Figures that are totals over the repetitions; every other figure is their median.
_TOTALS: Final = ("due", "started", "starts", "runs", "failed", "skipped", "missed", "scrapes")


def _config_text(journeys: int, interval: float, url: str, steps: int = 1) -> str:
    timeout = min(interval, JOURNEY_TIMEOUT_SECONDS)
    return checks_text(journeys, interval=interval, url=url, timeout=timeout, steps=steps)


# --- the scraper: its own process, like Prometheus ------------------------------------------


def _scrape_loop(conn: Connection, port: int, every: float, seconds: float) -> None:
    """GET /metrics whole from the loopback ``port`` at every multiple of ``every`` for
    ``seconds``, then send back how long each GET took and how many bytes it read.

    Like Prometheus, a scrape that overruns its slot makes the scraper skip to the next one.
    """
    client = http.client.HTTPConnection(LOOPBACK, port, timeout=SCRAPE_TIMEOUT_SECONDS)
    durations: list[float] = []
    sizes: list[int] = []
    conn.send("ready")
    conn.recv()  # go
    start = time.monotonic()
    slot = 1
    while (due := start + slot * every) < start + seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        began = time.perf_counter()
        client.request("GET", METRICS_PATH, headers={"Accept": SCRAPE_ACCEPT})
        response = client.getresponse()
        body = response.read()
        durations.append(time.perf_counter() - began)
        if response.status != 200:
            raise RuntimeError(f"scrape answered {response.status}")
        sizes.append(len(body))
        slot = max(slot + 1, math.ceil((time.monotonic() - start) / every))
    client.close()
    conn.send((durations, sizes))


class _Scraper:
    """``with _Scraper(port, every, seconds): ...``; then ``durations`` and ``sizes``."""

    def __init__(self, port: int, every: float, seconds: float) -> None:
        self.args = (port, every, seconds)
        self.durations: list[float] = []
        self.sizes: list[int] = []

    def __enter__(self) -> _Scraper:
        if self.args[1] <= 0:
            return self
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_scrape_loop, args=(child, *self.args), daemon=True)
        self._process.start()
        if not self._conn.poll(SCRAPER_START_TIMEOUT_SECONDS):
            self._process.kill()
            raise RuntimeError("the scraper did not start")
        self._conn.recv()
        return self

    def begin(self) -> None:
        """Start scraping: at ``every``, 2 ``every``, ... from now."""
        if self.args[1] > 0:
            self._conn.send("go")

    def collect(self) -> None:
        """Wait for the scraper's last scrape and take its figures."""
        seconds = self.args[2]
        if not self._conn.poll(SCRAPE_TIMEOUT_SECONDS + seconds):
            raise RuntimeError("the scraper did not finish")
        self.durations, self.sizes = self._conn.recv()

    def __exit__(self, *_: object) -> None:
        if self.args[1] <= 0:
            return
        self._process.join(STOP_TIMEOUT_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_TIMEOUT_SECONDS)


# --- measuring ------------------------------------------------------------------------------


class _GcPauses:
    """The garbage collector's pauses while counting, per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._began = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)


def _ticks_due(journey: Journey, start: float, end: float) -> int:
    """How many of the journey's wall-clock ticks fall in (start, end]."""
    phase = offset(journey.id, journey.interval)
    first = math.floor((start - phase) / journey.interval) + 1
    last = math.floor((end - phase) / journey.interval)
    return max(0, last - first + 1)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _counter_sum(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _measure(
    path: str, journeys: int, seconds: float, scrape_every: float
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    idle_rss = rss_bytes()
    service = Service(path)
    # The service feeds lateness straight into its histogram, which keeps only buckets; the
    # exact values come from wrapping the scheduler's hook, the one place they pass.
    observe = service.scheduler._on_lateness
    lateness: list[float] = []
    scheduled: list[float] = []

    def record(seconds_late: float) -> None:
        lateness.append(seconds_late)
        scheduled.append(loop_now(loop) - seconds_late)  # the scheduler's own clock
        observe(seconds_late)

    service.scheduler._on_lateness = record
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    await web.SockSite(runner, sock).start()
    # Started before the journeys are: spawning it blocks this loop for a while.
    with _Scraper(sock.getsockname()[1], scrape_every, seconds) as scraper:
        await service.start()
        assert service.config is not None
        loop_start, wall_start = loop_now(loop), time.time()
        scraper.begin()
        try:
            with _GcPauses() as gc_pauses:
                await asyncio.sleep(seconds)
                if scrape_every > 0:
                    await loop.run_in_executor(None, scraper.collect)
        finally:
            loop_end = loop_now(loop)
            await service.stop()
            await runner.cleanup()
    rss = rss_bytes()
    window_end = min(loop_end, loop_start + seconds) - TAIL_GRACE_SECONDS
    due = sum(
        _ticks_due(j, wall_start, wall_start + window_end - loop_start)
        for j in service.config.journeys
    )
    started = sum(1 for t in scheduled if loop_start < t <= window_end)
    text = service.exposition.render()
    skipped = _counter_sum(text, "carewatch_journey_skipped_runs_total")
    full = gc_pauses.pauses[2]
    return {
        "journeys": journeys,
        "seconds": loop_end - loop_start,
        "due": due,
        "started": started,
        "starts": len(lateness),
        "runs": _counter_sum(text, "carewatch_journey_runs_total"),
        "failed": _counter_sum(text, "carewatch_journey_runs_total", result="failure"),
        "skipped": skipped,
        "missed": skipped + max(0, due - started - skipped),
        "p50": statistics.median(lateness) if lateness else math.nan,
        "p99": _percentile(lateness, 0.99),
        "max": max(lateness, default=math.nan),
        "scrapes": len(scraper.durations),
        "scrape_p50": statistics.median(scraper.durations) if scraper.durations else math.nan,
        "scrape_p99": _percentile(scraper.durations, 0.99),
        "scrape_max": max(scraper.durations, default=math.nan),
        "scrape_bytes": statistics.median(scraper.sizes) if scraper.sizes else math.nan,
        "gc_max": max((p for ps in gc_pauses.pauses.values() for p in ps), default=0.0),
        "gc_full": len(full),
        "gc_full_max": max(full, default=0.0),
        "rss": rss,
        "idle_rss": idle_rss,
    }


def _combine(turns: list[dict[str, float]]) -> dict[str, float]:
    """Totals of the counts and medians of every other figure, over the repetitions."""
    out = {"repeat": float(len(turns))}
    for key in turns[0]:
        values = [t[key] for t in turns]
        out[key] = sum(values) if key in _TOTALS else statistics.median(values)
    # Later turns start from the memory earlier ones left: the idle anchor is the first turn's.
    out["idle_rss"] = turns[0]["idle_rss"]
    out["rss"] = max(t["rss"] for t in turns)
    return out


def run(
    journeys: int,
    *,
    interval: float,
    seconds: float,
    scrape_every: float,
    workdir: str,
    steps: int = 1,
    repeat: int = 1,
) -> dict[str, float]:
    """Run the service for ``seconds``, ``repeat`` times, each on a fresh event loop."""
    with Target() as url:
        path = f"{workdir}/bench-checks.yaml"
        with open(path, "w") as f:
            f.write(_config_text(journeys, interval, url, steps))
        return _combine(
            [run_on_uvloop(_measure(path, journeys, seconds, scrape_every)) for _ in range(repeat)]
        )


def lateness_rows(r: dict[str, float]) -> list[Row]:
    """Lateness and missed runs, with the B2 goals; B3 shows the same rows under its scrapes."""
    return [
        Row("runs started / ticks due", f"{r['started']:.0f}/{r['due']:.0f}"),
        Row("runs completed (failed)", f"{r['runs']:.0f} ({r['failed']:.0f})"),
        Row("lateness p50 (ms)", r["p50"] * _MS),
        Row(
            "lateness p99 (ms)",
            r["p99"] * _MS,
            goal=f"<= {GOAL_P99_SECONDS * _MS:g} ms",
            met=r["p99"] <= GOAL_P99_SECONDS,
        ),
        Row("lateness max (ms)", r["max"] * _MS),
        Row(
            "missed runs",
            f"{r['missed']:.0f}",
            goal=f"{GOAL_MISSED}",
            met=r["missed"] <= GOAL_MISSED,
        ),
        Row("longest GC pause (ms)", r["gc_max"] * _MS),
        Row(f"full GC collections ({r['gc_full']:.0f}), longest (ms)", r["gc_full_max"] * _MS),
    ]


def scrape_rows(r: dict[str, float]) -> list[Row]:
    """What the scraper saw; no goal here (B3 judges them at its own size)."""
    if not r["scrapes"]:
        return []
    return [
        Row(f"scrapes ({r['scrapes']:.0f}), body (MB)", r["scrape_bytes"] / _MIB, digits=1),
        Row("scrape p50 (ms)", r["scrape_p50"] * _MS, digits=1),
        Row("scrape p99 (ms)", r["scrape_p99"] * _MS, digits=1),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__)
    parser.add_argument("--journeys", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=1, help="HTTP steps per journey")
    parser.add_argument(
        "--scrape", type=float, default=DEFAULT_SCRAPE_SECONDS, help="seconds; 0: no scraping"
    )
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        r = run(
            args.journeys,
            interval=args.interval,
            seconds=args.seconds,
            scrape_every=args.scrape,
            workdir=workdir,
            steps=args.steps,
            repeat=args.repeat,
        )
    rows = [
        *lateness_rows(r),
        *scrape_rows(r),
        Row(
            "RSS at the end (MB)",
            r["rss"] / _MIB,
            anchor=r["idle_rss"] / _MIB,
            goal=f"<= {GOAL_RSS_BYTES / _MIB:.0f} MB (B6)",
            met=r["rss"] <= GOAL_RSS_BYTES,
            digits=0,
        ),
    ]
    scraping = f"scraped every {args.scrape:g} s" if args.scrape > 0 else "not scraped"
    print_table(
        f"B2/B6 scheduling and memory: {args.journeys} journeys x {args.steps} step(s) every "
        f"{args.interval:g} s ({args.journeys / args.interval:.0f} runs/s) for {args.seconds:g} s, "
        f"{scraping}, median of {args.repeat}; anchor: the process before loading journeys",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
