"""The pre-rendered exposition: parsed back by prometheus-client, with a fixed clock."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes import metrics as m
from probes.metrics import message_label
from probes.model.config import Config
from probes.model.load import parse_config
from probes.runs.reasons import Reason
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


# --- consecutive failures and the failure message --------------------------------------------

TWO_JOURNEYS = """
channels:
  - name: app
    kind: app
    team: care
    journeys:
      - {name: login, steps: [{name: s, url: "http://127.0.0.1:9/"}]}
      - {name: home, steps: [{name: s, url: "http://127.0.0.1:9/"}]}
"""


def run(journey: str, message: str | None, *, location: str = "paris") -> RunResult:
    """A run of ``journey`` whose step ``s`` passed (``message`` None) or failed with it."""
    if message is None:
        step = StepResult("s", Outcome.PASSED, {Phase.TOTAL: 0.01}, status=200)
    else:
        step = StepResult("s", Outcome.FAILED, reason=Reason.ASSERTION, message=message)
    return RunResult("app", journey, location, 1.7e9, (Attempt(1, (step,), 0.01),))


def consecutive(exposition: Exposition) -> dict[str, float]:
    return {
        s.labels["journey"]: s.value
        for family in text_string_to_metric_families(exposition.render())
        for s in family.samples
        if s.name == m.JOURNEY_CONSECUTIVE_FAILURES.name
    }


def test_consecutive_failures_start_at_0_count_failed_runs_and_reset_on_success() -> None:
    exposition = Exposition()
    exposition.configure(parse_config(TWO_JOURNEYS, environ={}), location="paris")
    assert consecutive(exposition) == {"login": 0, "home": 0}
    seen = []
    for message in ("no", "no", None, "no"):
        exposition.record(run("login", message))
        seen.append(consecutive(exposition)["login"])
    assert seen == [1, 2, 0, 1]
    assert consecutive(exposition)["home"] == 0


def test_a_retry_that_passes_is_a_success() -> None:
    exposition = Exposition()
    exposition.configure(parse_config(TWO_JOURNEYS, environ={}), location="paris")
    exposition.record(run("login", "no"))
    failed, passed = run("login", "no").attempts[0], run("login", None).attempts[0]
    exposition.record(RunResult("app", "login", "paris", 1.7e9, (failed, passed)))
    assert consecutive(exposition)["login"] == 0


def test_a_reload_keeps_the_count_of_a_kept_journey_and_a_new_location_starts_at_0() -> None:
    exposition = Exposition()
    both = parse_config(TWO_JOURNEYS, environ={})
    exposition.configure(both, location="paris")
    for _ in range(3):
        exposition.record(run("login", "no"))
        exposition.record(run("home", "no"))
    only_login = parse_config(TWO_JOURNEYS.replace("      - {name: home", "#"), environ={})
    exposition.configure(only_login, location="paris")
    assert consecutive(exposition) == {"login": 3}
    exposition.configure(both, location="paris")
    assert consecutive(exposition) == {"login": 3, "home": 0}
    exposition.configure(both, location="lyon")
    assert consecutive(exposition) == {"login": 0, "home": 0}


def failure_messages(exposition: Exposition) -> list[str]:
    return [
        s.labels["message"]
        for family in text_string_to_metric_families(exposition.render())
        for s in family.samples
        if s.name == m.STEP_FAILURE_INFO.name
    ]


def test_the_failure_message_is_normalised_and_escaped_in_one_series() -> None:
    exposition = Exposition()
    exposition.configure(parse_config(TWO_JOURNEYS, environ={}), location="paris")
    messages = [
        f'$.note: expected "open", got "C:\\dir\\x" at 2024-05-0{n}T10:2{n}:00Z\n'
        f"(request {n}f0c3a2e-9b1d-4c7e-8a6f-0e2d4b6c8a1f)"
        for n in (1, 2)
    ]
    for message in messages:
        exposition.record(run("login", message))
        assert failure_messages(exposition) == [message_label(message)]
    assert message_label(messages[0]) == message_label(messages[1])
    assert failure_messages(exposition) == [
        '$.note: expected "open", got "C:\\dir\\x" at <time> (request <uuid>)'
    ]
    exposition.record(run("login", None))
    assert failure_messages(exposition) == []
