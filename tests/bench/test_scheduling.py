"""Smoke run of the scheduling and memory benchmark at a tiny size: the real service runs
journeys against the target process and every figure is measured. Lateness and RSS goals are
judged by ``make bench``, never here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import scheduling
from probes.model.load import parse_config


def test_the_benchmark_runs_journeys_and_measures_every_figure(tmp_path: Path) -> None:
    figures = scheduling.run(20, interval=1, seconds=3, scrape_every=1, workdir=str(tmp_path))
    assert figures["journeys"] == 20
    assert figures["runs"] > 0
    assert figures["failed"] == 0
    assert figures["starts"] >= figures["runs"]
    assert figures["due"] > 0
    for name in ("p50", "p99", "max"):
        assert not math.isnan(figures[name])
        assert figures[name] >= 0
    assert figures["p50"] <= figures["p99"] <= figures["max"]
    assert figures["missed"] >= 0
    assert figures["scrapes"] >= 1
    assert figures["rss"] > 0
    assert figures["idle_rss"] > 0


def test_ticks_due_counts_one_tick_per_interval() -> None:
    text = scheduling._config_text(3, 10, "http://127.0.0.1:9/")
    journeys = parse_config(text, file="<t>", environ={}).journeys
    assert len(journeys) == 3
    for journey in journeys:
        assert scheduling._ticks_due(journey, 1000.0, 1100.0) == 10
        assert scheduling._ticks_due(journey, 1000.0, 1010.0) == 1
        assert scheduling._ticks_due(journey, 1000.0, 1000.0) == 0


def test_two_steps_repeated_runs_and_scrape_times(tmp_path: Path) -> None:
    figures = scheduling.run(
        10, interval=1, seconds=2.5, scrape_every=1, workdir=str(tmp_path), steps=2, repeat=2
    )
    assert figures["repeat"] == 2
    assert figures["failed"] == 0
    assert figures["scrapes"] >= 2  # a total over both runs
    assert 0 < figures["scrape_p50"] <= figures["scrape_p99"] <= figures["scrape_max"]
    assert figures["scrape_bytes"] > 0
    assert figures["gc_max"] >= 0


def test_the_config_has_the_steps_asked_for() -> None:
    text = scheduling._config_text(3, 10, "http://127.0.0.1:9/", steps=2)
    journeys = parse_config(text, file="<t>", environ={}).journeys
    assert [len(j.steps) for j in journeys] == [2, 2, 2]


def test_the_command_prints_one_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--journeys", "5", "--interval", "1", "--seconds", "2", "--scrape", "1"]
    assert scheduling.main([*argv, "--steps", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("B2/B6 scheduling and memory: 5 journeys x 2 step(s)")
    assert "lateness p99 (ms)" in out
    assert "scrape p99 (ms)" in out
