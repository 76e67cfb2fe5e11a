"""Scrape cost: rendering /metrics for N journeys x 2 steps, against prometheus-client.

    python -m bench.scrape [--journeys 5000] [--repeat 7]

Every journey gets a real RunResult (two passed steps, six phases each) recorded in the
exposition. The anchor is prometheus-client's ``generate_latest`` over a registry holding the
same samples, timed in the same run. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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

from probes.config import parse_config
from probes.exposition import Exposition
from probes.results import Attempt, Outcome, Phase, RunResult, StepResult

GOAL_SECONDS: Final = 0.2
GOAL_RATIO: Final = 10.0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    parser.add_argument("--journeys", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    r = run(args.journeys, args.repeat)
    ratio = r["anchor"] / r["ours"]
    print(
        f"B3 scrape cost: {r['journeys']:.0f} journeys x 2 steps, {r['series']:.0f} series, "
        f"median of {args.repeat}"
    )
    print(f"{'figure':<34}{'carewatch':>12}{'anchor':>14}{'ratio':>10}  goal")
    print(
        f"{'render /metrics (s)':<34}{r['ours']:>12.4f}{r['anchor']:>14.4f}{ratio:>9.1f}x"
        f"  <= {GOAL_SECONDS} s and >= {GOAL_RATIO:g}x faster than generate_latest"
    )
    met = r["ours"] <= GOAL_SECONDS and ratio >= GOAL_RATIO
    print("goal met" if met else "goal NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
