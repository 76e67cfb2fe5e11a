"""The pre-rendered exposition: parsed back by prometheus-client, with a fixed clock."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes.model.config import Config
from probes.model.load import parse_config
from probes.runs.results import Attempt, Outcome, Phase, RunResult, StepResult
from probes.service import exposition as exposition_module
from probes.service.exposition import Exposition
from tests._support.hours import HOURS_CONFIG, PARIS_WEDNESDAY_10H, PARIS_WEDNESDAY_22H

ALWAYS_OPEN = """
  - name: app
    kind: app
    team: care
    journeys:
      - {name: login, steps: [{name: s, url: "http://127.0.0.1:9/"}]}
"""


def channel_open(now: float) -> dict[str, float]:
    config = parse_config(HOURS_CONFIG + ALWAYS_OPEN, environ={})
    exposition = Exposition(clock=lambda: now)
    exposition.configure(config, location="paris")
    return {
        s.labels["channel"]: s.value
        for family in text_string_to_metric_families(exposition.render())
        for s in family.samples
        if s.name == "carewatch_channel_open"
    }


def test_a_channel_is_open_within_its_hours() -> None:
    assert channel_open(PARIS_WEDNESDAY_10H) == {"voice": 1.0, "app": 1.0}


def test_a_channel_is_closed_outside_its_hours_and_one_without_hours_never_is() -> None:
    assert channel_open(PARIS_WEDNESDAY_22H) == {"voice": 0.0, "app": 1.0}


FIVE_MORE = "".join(
    f"""
  - name: web{n}
    kind: web
    team: care
    journeys:
      - {{name: home, steps: [{{name: s, url: "http://127.0.0.1:9/"}}]}}
"""
    for n in range(5)
)


def recorded(config: Config) -> Exposition:
    """An exposition of ``config`` at 10:00 in Paris, where every journey has passed once."""
    exposition = Exposition(clock=lambda: PARIS_WEDNESDAY_10H)
    exposition.configure(config, location="paris")
    for journey in config.journeys:
        step = StepResult("s", Outcome.PASSED, {Phase.TOTAL: 0.01}, status=200)
        attempt = Attempt(1, (step,), 0.01)
        exposition.record(RunResult(journey.channel, journey.name, "paris", 1.7e9, (attempt,)))
    return exposition


def test_the_pieces_join_into_the_render_and_each_holds_few_journeys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition_module, "PIECE_JOURNEYS", 2)
    config = parse_config(HOURS_CONFIG + ALWAYS_OPEN + FIVE_MORE, environ={})
    exposition = recorded(config)
    pieces = list(exposition.pieces())
    assert "".join(pieces) == exposition.render()
    assert len(config.journeys) == 7
    ups = [
        sum(line.startswith("carewatch_journey_up{") for line in piece.splitlines())
        for piece in pieces
    ]
    assert ups.count(2) == 3
    assert ups.count(1) == 1
    assert set(ups) == {0, 1, 2}


def test_a_reload_during_a_scrape_shows_in_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposition_module, "PIECE_JOURNEYS", 2)
    config = parse_config(HOURS_CONFIG + ALWAYS_OPEN + FIVE_MORE, environ={})
    exposition = recorded(config)
    before = exposition.render()
    pieces = exposition.pieces()
    first = next(pieces)
    exposition.configure(parse_config(HOURS_CONFIG, environ={}), location="paris")
    assert first + "".join(pieces) == before
    assert "web0" not in exposition.render()
