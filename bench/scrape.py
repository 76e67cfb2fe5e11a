"""Scrape cost (B3): /metrics for N journeys x 2 steps, against prometheus-client.

    python -m bench.scrape [--journeys 5000] [--repeat 7] [--seconds 60] [--runs 3]

Two parts, one table. Rendering: every journey gets a real RunResult (two passed steps, six
phases each) recorded in an exposition, rendered ``--repeat`` times; the anchor is
prometheus-client's ``generate_latest`` over a registry holding the same samples, timed in the
same run. Live: the service of ``bench.scheduling`` runs the same journeys every 10 s for
``--seconds`` (``--runs`` times) while a scraper in its own process fetches /metrics whole
every second, as Prometheus would; the figures are the scrape time and B2's lateness and
missed runs under those scrapes. ``--seconds 0`` skips the live part.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Final

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families

from bench import scheduling
from bench._table import Row, print_table
from probes.model import parse_config
from probes.runs import Attempt, Outcome, Phase, RunResult, StepResult
from probes.service import Exposition

GOAL_SECONDS: Final = 0.2
GOAL_RATIO: Final = 10.0
STEPS: Final = 2
#: The live part: B2's interval, and Prometheus scraping every second.
LIVE_INTERVAL_SECONDS: Final = 10.0
LIVE_SCRAPE_SECONDS: Final = 1.0


def _config_text(journeys: int) -> str:
    per_channel = 100
    channels = [
        {
            "name": f"ch{c}",
            "kind": "app",
            "team": f"team{c % 7}",
            "journeys": [
                {
                    "name": f"j{j}",
                    "steps": [
                        {"name": "a", "url": "http://127.0.0.1:9/a"},
                        {"name": "b", "url": "http://127.0.0.1:9/b"},
                    ],
                }
                for j in range(min(per_channel, journeys - c * per_channel))
            ],
        }
        for c in range(-(-journeys // per_channel))
    ]
    return yaml.safe_dump({"channels": channels})


def _result(channel: str, journey: str, n: int) -> RunResult:
    phases = {
        Phase.DNS: 0.0,
        Phase.CONNECT: 0.0004,
        Phase.WAIT: 0.002 + n * 1e-7,
        Phase.RECEIVE: 0.0001,
        Phase.TOTAL: 0.0026,
    }
    steps = tuple(StepResult(s, Outcome.PASSED, phases, status=200) for s in ("a", "b"))
    return RunResult(channel, journey, "bench", time.time(), (Attempt(1, steps, 0.0052),))


class _Snapshot:
    """A prometheus-client collector exposing exactly the samples carewatch exposes."""

    def __init__(self, text: str) -> None:
        self.families: list[Metric] = []
        for family in text_string_to_metric_families(text):
            kind = family.type
            cls = {"counter": CounterMetricFamily, "histogram": HistogramMetricFamily}.get(
                kind, GaugeMetricFamily
            )
            metric = cls(family.name, family.documentation)
            metric.samples = list(family.samples)
            self.families.append(metric)

    def collect(self) -> list[Metric]:
        return self.families


def _median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(journeys: int, repeat: int) -> dict[str, float]:
    config = parse_config(_config_text(journeys), file="<bench>", environ={})
    exposition = Exposition()
    exposition.configure(config, location="bench")
    for n, journey in enumerate(config.journeys):
        exposition.record(_result(journey.channel, journey.name, n))
    text = exposition.render()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(text))
    ours = _median_seconds(lambda: exposition.render().encode(), repeat)
    anchor = _median_seconds(lambda: generate_latest(registry), max(3, repeat // 2))
    return {"journeys": journeys, "series": series, "ours": ours, "anchor": anchor}


def run_live(journeys: int, *, seconds: float, runs: int, workdir: str) -> dict[str, float]:
    """B2's service at ``journeys`` x 2 steps, scraped every second: see ``bench.scheduling``."""
    return scheduling.run(
        journeys,
        interval=LIVE_INTERVAL_SECONDS,
        seconds=seconds,
        scrape_every=LIVE_SCRAPE_SECONDS,
        workdir=workdir,
        steps=STEPS,
        repeat=runs,
    )


def rows(render: dict[str, float], live: dict[str, float] | None) -> list[Row]:
    """The B3 table: rendering against generate_latest, then the live service's figures."""
    ratio = render["anchor"] / render["ours"]
    out = [
        Row("series in /metrics", f"{render['series']:.0f}"),
        Row(
            "render /metrics (s)",
            render["ours"],
            anchor=render["anchor"],
            goal=f"<= {GOAL_SECONDS:g} s and <= {1 / GOAL_RATIO:g}x generate_latest",
            met=render["ours"] <= GOAL_SECONDS and ratio >= GOAL_RATIO,
            digits=4,
        ),
    ]
    if live is None:
        return out
    goal = f"<= {GOAL_SECONDS:g} s"
    out += [
        Row(
            f"live scrapes ({live['scrapes']:.0f}), body (MB)",
            live["scrape_bytes"] / 2**20,
            digits=1,
        ),
        Row(
            "live scrape p50 (s)",
            live["scrape_p50"],
            goal=goal,
            met=live["scrape_p50"] <= GOAL_SECONDS,
            digits=3,
        ),
        Row(
            "live scrape p99 (s)",
            live["scrape_p99"],
            goal=goal,
            met=live["scrape_p99"] <= GOAL_SECONDS,
            digits=3,
        ),
        *scheduling.lateness_rows(live),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    parser.add_argument("--journeys", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7, help="renders timed")
    parser.add_argument("--seconds", type=float, default=60.0, help="live part; 0: skip it")
    parser.add_argument("--runs", type=int, default=scheduling.DEFAULT_REPEAT, help="live runs")
    args = parser.parse_args(argv)
    render = run(args.journeys, args.repeat)
    live = None
    if args.seconds > 0:
        with tempfile.TemporaryDirectory() as workdir:
            live = run_live(args.journeys, seconds=args.seconds, runs=args.runs, workdir=workdir)
    title = (
        f"B3 scrape cost: {args.journeys} journeys x {STEPS} steps; render: median of "
        f"{args.repeat}, anchor prometheus-client generate_latest"
    )
    if live is not None:
        title += (
            f"; live: every {LIVE_INTERVAL_SECONDS:g} s for {args.seconds:g} s, scraped every "
            f"{LIVE_SCRAPE_SECONDS:g} s, median of {args.runs}"
        )
    print_table(title, rows(render, live))
    return 0


if __name__ == "__main__":
    sys.exit(main())
