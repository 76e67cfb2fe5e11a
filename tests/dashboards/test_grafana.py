"""The building blocks bring grafanalib's output up to Grafana's current model: current panel
types only, no legacy field anywhere, datasources by uid, units on every number, rates over
``$__rate_interval``, and a layout that fills the grid in reading order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboards import dashboards
from dashboards import grafana as gf
from probes import Config

CURRENT_TYPES = {"row", "timeseries", "stat", "state-timeline", "table", "gauge", "bargauge"}
CURRENT_TYPES |= {"barchart"}
#: Fields of grafanalib's panels and targets that Grafana's current model has dropped.
LEGACY_PANEL = {"span", "height", "minSpan", "error", "editable", "cacheTimeout", "columns"}
LEGACY_PANEL |= {"fontSize", "hideTimeOverride", "fieldOptions"}
LEGACY_TARGET = {"intervalFactor", "step", "target", "query", "metric"}
LEGACY_DASHBOARD = {"rows", "sharedCrosshair", "hideControls", "style", "__inputs", "gnetId"}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def keys(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, f"{path}.{key}"
            yield from keys(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from keys(inner, f"{path}[{i}]")


@pytest.fixture(params=["demo", "two_locations"])
def boards(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    config: Config = request.getfixturevalue(request.param)
    return dashboards(config)


def test_only_current_panel_types(boards: list[dict[str, Any]]) -> None:
    used = {panel["type"] for board in boards for panel in panels(board)}
    assert used <= CURRENT_TYPES
    assert "graph" not in used


def test_no_legacy_field_anywhere(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        assert board["schemaVersion"] == gf.SCHEMA_VERSION
        assert not LEGACY_DASHBOARD & set(board), board["uid"]
        for panel in panels(board):
            found = {key for key, _ in keys({k: v for k, v in panel.items() if k != "panels"})}
            assert not LEGACY_PANEL & found, panel["title"]
            for target in panel.get("targets", []):
                assert not LEGACY_TARGET & set(target), panel["title"]


def test_every_query_reads_the_datasource_variable_by_uid(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for panel in panels(board):
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert ("instant" in target) != ("range" in target), target
            if panel["type"] != "row":
                assert panel["datasource"] == gf.DATASOURCE
                assert panel["targets"], panel["title"]


def test_every_number_has_a_unit_and_thresholds(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for panel in panels(board):
            if panel["type"] != "row":
                defaults = panel["fieldConfig"]["defaults"]
                assert defaults["unit"], panel["title"]
                assert defaults["thresholds"]["steps"][0]["value"] is None, panel["title"]


def test_every_rate_is_over_the_rate_interval_or_the_range(boards: list[dict[str, Any]]) -> None:
    windows = set()
    for board in boards:
        for panel in panels(board):
            for target in panel.get("targets", []):
                windows |= set(re.findall(r"(?:rate|increase)\([^\[]*\[([^\]]+)\]", target["expr"]))
    assert windows == {"$__rate_interval", "$__range"}


def test_layout_places_panels_in_reading_order_and_wraps_at_24_columns() -> None:
    wide = gf.stat("a", [gf.Query("1", instant=True)], unit="none", width=16, height=4)
    narrow = gf.stat("b", [gf.Query("1", instant=True)], unit="none", width=12, height=6)
    placed = gf.layout([wide, narrow, gf.Row("r", [narrow, narrow]), narrow])
    assert [(p["id"], p["type"], p["gridPos"]) for p in placed] == [
        (1, "stat", {"h": 4, "w": 16, "x": 0, "y": 0}),
        (2, "stat", {"h": 6, "w": 12, "x": 0, "y": 4}),
        (3, "row", {"h": 1, "w": 24, "x": 0, "y": 10}),
        (4, "stat", {"h": 6, "w": 12, "x": 0, "y": 11}),
        (5, "stat", {"h": 6, "w": 12, "x": 12, "y": 11}),
        (6, "stat", {"h": 6, "w": 12, "x": 0, "y": 17}),
    ]


def test_a_collapsed_row_keeps_its_panels_inside() -> None:
    narrow = gf.stat("b", [gf.Query("1", instant=True)], unit="none", width=12, height=6)
    placed = gf.layout([gf.Row("r", [narrow], collapsed=True), gf.Row("s", [narrow])])
    assert [p["type"] for p in placed] == ["row", "row", "stat"]
    assert placed[0]["collapsed"] is True
    assert [p["id"] for p in placed[0]["panels"]] == [2]
    assert placed[1]["gridPos"]["y"] == 1  # a collapsed row takes one line
