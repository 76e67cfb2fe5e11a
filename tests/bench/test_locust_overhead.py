"""Smoke run of the Locust overhead benchmark at a tiny size: both Locust processes make the
same passing request and every figure is measured. The ratio's goal is judged by ``make bench``,
never here. The pytest process never imports locust (gevent would patch it)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml

from bench import locust_overhead
from probes.model.load import parse_config


def test_the_benchmark_runs_both_sides_and_measures_every_figure(tmp_path: Path) -> None:
    figures = locust_overhead.run(users=2, seconds=2, repeat=1, workdir=str(tmp_path))
    assert figures["ours_requests"] > 0
    assert figures["anchor_requests"] > 0
    assert figures["ours_failures"] == 0
    assert figures["anchor_failures"] == 0
    for name in ("ours", "anchor", "ratio", "ours_cpu_us", "anchor_cpu_us"):
        assert not math.isnan(figures[name]), name
        assert figures[name] > 0, name
    assert figures["ratio"] == pytest.approx(figures["ours"] / figures["anchor"])  # one pair


def test_both_sides_name_the_step_alike() -> None:
    url = "http://127.0.0.1:9/"
    config = parse_config(locust_overhead._checks_text(url), file="<t>", environ={})
    (journey,) = config.journeys
    (step,) = journey.steps
    assert f"{journey.id}/{step.name}" == locust_overhead.ENTRY
    assert journey.loadtest is not None
    assert (journey.loadtest.wait.min, journey.loadtest.wait.max) == (0, 0)
    assert journey.loadtest.thresholds == ()
    anchor = locust_overhead._anchor_text(url)
    ast.parse(anchor)
    assert repr(locust_overhead.ENTRY) in anchor
    assert repr(url) in anchor
    assert yaml.safe_load(locust_overhead._checks_text(url))["defaults"]["retries"] == 0
