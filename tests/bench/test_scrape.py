"""Smoke run of the scrape benchmark at a tiny size: it still works and measures the same
samples on both sides. Its speed is judged by ``make bench``, never here."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench import scrape


def test_the_benchmark_runs_and_counts_every_series() -> None:
    figures = scrape.run(journeys=120, repeat=1)
    assert figures["journeys"] == 120
    channels = 2  # the benchmark puts 100 journeys in a channel; each adds carewatch_channel_open
    per_journey = (figures["series"] - channels) / 120
    assert per_journey == int(per_journey)  # every journey has the same series
    assert per_journey > 40
    assert figures["ours"] > 0
    assert figures["anchor"] > 0


def test_the_anchor_renders_the_same_samples() -> None:
    config = scrape.parse_config(scrape._config_text(3), file="<t>", environ={})
    exposition = scrape.Exposition()
    exposition.configure(config, location="bench")
    for n, journey in enumerate(config.journeys):
        exposition.record(scrape._result(journey.channel, journey.name, n))
    ours = exposition.render()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(scrape._Snapshot(ours))  # type: ignore[arg-type]
    theirs = generate_latest(registry).decode()

    def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }

    assert samples(ours) == samples(theirs)


def test_the_command_prints_render_and_live_rows(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--journeys", "20", "--repeat", "1", "--seconds", "2.5", "--runs", "1"]
    assert scrape.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("B3 scrape cost: 20 journeys x 2 steps")
    for figure in ("render /metrics (s)", "live scrape p99 (s)", "lateness p99 (ms)"):
        assert figure in out


def test_without_seconds_only_the_render_is_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert scrape.main(["--journeys", "20", "--repeat", "1", "--seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "render /metrics (s)" in out
    assert "live scrape" not in out
