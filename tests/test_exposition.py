"""The pre-rendered exposition: parsed back by prometheus-client, with a fixed clock."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from probes.config import parse_config
from probes.exposition import Exposition
from tests.test_scheduler import HOURS_CONFIG, PARIS_WEDNESDAY_10H, PARIS_WEDNESDAY_22H

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
