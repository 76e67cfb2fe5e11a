"""Scheduling under load (B2) and memory (B6): N single-step journeys run by the real service.

    python -m bench.scheduling [--journeys 5000] [--interval 10] [--seconds 60] [--scrape 15]

Every journey is one HTTP GET against a loopback target served by a separate process, so the
target's CPU is not charged to the scheduler. ``probes.service.Service`` runs the journeys as
the exporter does (scheduler, engine, exposition), and its /metrics is scraped every
``--scrape`` seconds over loopback, since a scrape is work the event loop really does. Lateness
is every exact value the scheduler reports; missed runs are skipped runs plus ticks that came
due and never started. RSS is read at the end; its anchor is the same process before the
service loads any journey.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import statistics
import sys
import tempfile
import time
from typing import Final

import aiohttp
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench._target import Target
from probes.model import Journey
from probes.scheduler import offset
from probes.service import Service

GOAL_P99_SECONDS: Final = 0.020
GOAL_MISSED: Final = 0
GOAL_RSS_BYTES: Final = 300 * 1024 * 1024
#: Ticks due this close to the end may legitimately still be waiting: not counted as missed.
TAIL_GRACE_SECONDS: Final = 2.0
SCRAPE_TIMEOUT_SECONDS: Final = 10.0
JOURNEY_TIMEOUT_SECONDS: Final = 5.0
_PER_CHANNEL: Final = 100
_MIB: Final = 1024 * 1024


def _config_text(journeys: int, interval: float, url: str) -> str:
    channels = [
        {
            "name": f"ch{c}",
            "kind": "app",
            "team": "bench",
            "journeys": [
                {"name": f"j{j}", "steps": [{"name": "get", "url": url}]}
                for j in range(min(_PER_CHANNEL, journeys - c * _PER_CHANNEL))
            ],
        }
        for c in range(-(-journeys // _PER_CHANNEL))
    ]
    defaults = {
        "interval": f"{interval:g}s",
        "timeout": f"{min(interval, JOURNEY_TIMEOUT_SECONDS):g}s",
        "retries": 0,
        "location": "bench",
    }
    return yaml.safe_dump({"defaults": defaults, "channels": channels})


# --- measuring ------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _ticks_due(journey: Journey, start: float, end: float) -> int:
    """How many of the journey's wall-clock ticks fall in (start, end]."""
    phase = offset(journey.id, journey.interval)
    first = math.floor((start - phase) / journey.interval) + 1
    last = math.floor((end - phase) / journey.interval)
    return max(0, last - first + 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _counter_sum(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _scrape(url: str, every: float, until: float, durations: list[float]) -> None:
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while loop.time() + every < until:
            await asyncio.sleep(every)
            started = loop.time()
            async with session.get(url) as response:
                await response.read()
            durations.append(loop.time() - started)


async def _measure(
    path: str, journeys: int, seconds: float, scrape_every: float
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    idle_rss = _rss_bytes()
    service = Service(path)
    # The service feeds lateness straight into its histogram, which keeps only buckets; the
    # exact values come from wrapping the scheduler's hook, the one place they pass.
    observe = service.scheduler._on_lateness
    lateness: list[float] = []
    scheduled: list[float] = []

    def record(seconds_late: float) -> None:
        lateness.append(seconds_late)
        scheduled.append(loop.time() - seconds_late)
        observe(seconds_late)

    service.scheduler._on_lateness = record
    await service.start()
    assert service.config is not None
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    metrics_url = f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"
    loop_start, wall_start = loop.time(), time.time()
    scrapes: list[float] = []
    try:
        if scrape_every > 0:
            await _scrape(metrics_url, scrape_every, loop_start + seconds, scrapes)
        await asyncio.sleep(max(0.0, loop_start + seconds - loop.time()))
    finally:
        loop_end = loop.time()
        await service.stop()
        await runner.cleanup()
    rss = _rss_bytes()
    window_end = loop_end - TAIL_GRACE_SECONDS
    due = sum(
        _ticks_due(j, wall_start, wall_start + window_end - loop_start)
        for j in service.config.journeys
    )
    started = sum(1 for t in scheduled if loop_start < t <= window_end)
    text = service.exposition.render()
    skipped = _counter_sum(text, "carewatch_journey_skipped_runs_total")
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
        "p99": _percentile(lateness, 0.99) if lateness else math.nan,
        "max": max(lateness, default=math.nan),
        "scrapes": len(scrapes),
        "scrape_max": max(scrapes, default=0.0),
        "rss": rss,
        "idle_rss": idle_rss,
    }


def run(
    journeys: int, *, interval: float, seconds: float, scrape_every: float, workdir: str
) -> dict[str, float]:
    """Run the service for ``seconds`` on a fresh event loop and return its figures."""
    with Target() as url:
        path = f"{workdir}/bench-checks.yaml"
        with open(path, "w") as f:
            f.write(_config_text(journeys, interval, url))
        return asyncio.run(_measure(path, journeys, seconds, scrape_every))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__)
    parser.add_argument("--journeys", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scrape", type=float, default=15.0, help="seconds; 0: no scraping")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        r = run(
            args.journeys,
            interval=args.interval,
            seconds=args.seconds,
            scrape_every=args.scrape,
            workdir=workdir,
        )
    rate = r["journeys"] / args.interval
    scraping = f"scraped every {args.scrape:g} s" if args.scrape > 0 else "not scraped"
    print(
        f"B2/B6 scheduling and memory: {r['journeys']:.0f} journeys every {args.interval:g} s "
        f"({rate:.0f} runs/s) for {r['seconds']:.0f} s, {scraping}"
    )
    print(f"{'figure':<34}{'carewatch':>12}{'anchor':>14}{'ratio':>10}  goal")

    def row(figure: str, ours: str, goal: str, anchor: str = "—", ratio: str = "—") -> None:
        print(f"{figure:<34}{ours:>12}{anchor:>14}{ratio:>10}  {goal}")

    row("runs started / ticks due", f"{r['started']:.0f}/{r['due']:.0f}", "—")
    row("runs completed (failed)", f"{r['runs']:.0f} ({r['failed']:.0f})", "—")
    row("lateness p50 (ms)", f"{r['p50'] * 1000:.2f}", "—")
    row("lateness p99 (ms)", f"{r['p99'] * 1000:.2f}", f"<= {GOAL_P99_SECONDS * 1000:g} ms")
    row("lateness max (ms)", f"{r['max'] * 1000:.2f}", "—")
    row("missed runs", f"{r['missed']:.0f}", f"{GOAL_MISSED}")
    if r["scrapes"]:
        row(f"slowest of {r['scrapes']:.0f} scrapes (ms)", f"{r['scrape_max'] * 1000:.1f}", "—")
    row(
        "RSS at the end (MB)",
        f"{r['rss'] / _MIB:.0f}",
        f"<= {GOAL_RSS_BYTES / _MIB:.0f} MB",
        anchor=f"{r['idle_rss'] / _MIB:.0f}",
        ratio=f"{r['rss'] / r['idle_rss']:.1f}x",
    )
    verdicts = {
        "B2 lateness p99": r["p99"] <= GOAL_P99_SECONDS,
        "B2 missed runs": r["missed"] <= GOAL_MISSED,
        "B6 RSS": r["rss"] <= GOAL_RSS_BYTES,
    }
    for name, met in verdicts.items():
        print(f"{name}: {'goal met' if met else 'goal NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
