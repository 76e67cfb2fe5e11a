"""The drill-down: one row repeated per journey, filtered by channel, journey and location, with
each journey's thresholds read from the definition series, and the uid the alerts link to."""

from __future__ import annotations

from alerts import names
from dashboards import journey
from probes import metrics


def test_its_address_is_the_one_the_alerts_link_to() -> None:
    board = journey()
    assert f"/d/{board['uid']}/{board['uid']}" == names.JOURNEY_DASHBOARD


def test_one_row_repeated_for_every_journey_chosen() -> None:
    board = journey()
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [(r["repeat"], r["title"]) for r in rows] == [("journey", "$channel / $journey")]
    variables = [v["name"] for v in board["templating"]["list"]]
    assert variables == ["datasource", "channel", "journey", "location"]


def test_every_query_of_the_row_is_scoped_to_its_journey() -> None:
    for panel in journey()["panels"]:
        for target in panel.get("targets", []):
            assert 'journey=~"$journey"' in target["expr"], panel["title"]
            assert 'channel=~"$channel"' in target["expr"], panel["title"]


def test_thresholds_are_the_journey_s_own_from_the_definition_series() -> None:
    [durations] = [p for p in journey()["panels"] if p["title"] == "Journey duration"]
    exprs = [t["expr"] for t in durations["targets"]]
    assert any(metrics.JOURNEY_SLO_LATENCY_THRESHOLD.name in e for e in exprs)
    assert any(metrics.JOURNEY_APDEX_THRESHOLD.name in e for e in exprs)


def test_panels_for_one_kind_of_step_say_when_a_journey_has_none() -> None:
    panels = [p for p in journey()["panels"] if p["type"] != "row"]
    said = {p["title"]: p["fieldConfig"]["defaults"].get("noValue") for p in panels}
    assert said["TLS certificates: time left"] == "No TLS step"
    assert said["Chat bot: first reply"] == "No chat in this journey"
    assert said["Journey duration"] is None
