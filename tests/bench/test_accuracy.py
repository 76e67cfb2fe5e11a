"""Smoke run of the measurement-accuracy benchmark at a tiny size: both carewatch and
blackbox_exporter probe the holding target and every figure is measured. The accuracy goals
are judged by ``make bench``, never here."""

from __future__ import annotations

import math
from pathlib import Path

from bench import accuracy
from bench._table import render_table
from probes.model.load import parse_config
from probes.model.steps import HttpStep

HOLDS_MS = (0.0, 20.0)
PROBES = 3


def test_the_benchmark_measures_both_sides_at_every_hold(tmp_path: Path) -> None:
    results = accuracy.run(PROBES, holds=HOLDS_MS, workdir=str(tmp_path))
    assert [r.hold for r in results] == [h / 1000 for h in HOLDS_MS]
    for r in results:
        for figures in (r.step_total, r.journey, r.target, r.blackbox):
            assert len(figures) == PROBES
            assert all(math.isfinite(f) and f > 0 for f in figures)
        # Both sides waited for the held answer, and the target held it as asked.
        assert min(r.target) >= r.hold
        assert min(r.step_total) >= r.hold
        assert min(r.journey) >= r.hold
        assert min(r.blackbox) >= r.hold
        assert all(t >= own for t, own in zip(r.step_total, r.target, strict=True))
        for figure in (r.overhead, r.blackbox_overhead, r.difference):
            assert math.isfinite(figure)
        assert r.difference >= 0
    table = render_table("B4", accuracy.rows(results))
    assert table.count("d=0") >= 3
    assert table.count("d=20") >= 3


def test_the_journey_captures_server_timing_and_reports_it_after_the_measured_steps() -> None:
    text = accuracy._config_text("http://127.0.0.1:9/", "http://127.0.0.1:9/report")
    journey = parse_config(text, file="<t>", environ={}).journeys[0]
    (step,) = journey.steps
    (report,) = journey.finally_steps
    assert isinstance(step, HttpStep)
    assert isinstance(report, HttpStep)
    assert step.capture[accuracy._CAPTURED].header == "Server-Timing"
    assert report.body == f"${{{accuracy._CAPTURED}}}"
