"""Smoke run of the CPU benchmark (B1) at a tiny size: carewatch, blackbox_exporter and the
bare aiohttp prober each probe the target, and every figure is measured. The goal is judged by
``make bench``, never here."""

from __future__ import annotations

import math
from pathlib import Path

from bench import cpu
from probes.model.load import parse_config


def test_the_benchmark_measures_all_three_probers(tmp_path: Path) -> None:
    figures = cpu.run(rate=20, seconds=1.5, warmup=1, repeat=1, workdir=str(tmp_path))
    for prober in ("carewatch", "blackbox", "bare"):
        assert figures[f"{prober}_probes"] > 0, prober
        assert figures[f"{prober}_failed"] == 0, prober
        assert not math.isnan(figures[prober]), prober
        assert figures[prober] >= 0, prober


def test_the_rate_sets_the_number_of_journeys() -> None:
    text = cpu.config_text(250, interval=cpu.INTERVAL_SECONDS, url="http://127.0.0.1:9/")
    config = parse_config(text, file="<t>", environ={})
    assert len(config.journeys) == 250
    assert {j.interval for j in config.journeys} == {cpu.INTERVAL_SECONDS}
    assert all(j.retries == 0 for j in config.journeys)


def test_runs_are_summed_from_the_exposition() -> None:
    text = (
        "# TYPE carewatch_journey_runs_total counter\n"
        'carewatch_journey_runs_total{channel="a",journey="j",result="success"} 7\n'
        'carewatch_journey_runs_total{channel="a",journey="j",result="failure"} 2\n'
        'carewatch_journey_runs_created{channel="a",journey="j",result="failure"} 9\n'
    )
    assert cpu._runs(text) == (9.0, 2.0)
