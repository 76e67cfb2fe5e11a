"""Grafana's own types accept every generated dashboard: ``grafana-foundation-sdk``, Grafana's
dashboard schema as generated Python models, pinned to a Grafana 11.6 build (pyproject.toml).

The SDK's ``from_json`` drops what it does not know without a word, so the check is made strict
(``tests._support.grafana_sdk.rejections``): a round trip through the SDK must keep every key
path with its value, every decoded value must have its annotated type (enums, integers,
literals), and every panel and query type must be one the SDK knows. The last tests show a made
up field, a legacy Angular ``graph`` panel, a legacy target field and a wrong enum value failing.

Which Grafana loads which ``schemaVersion`` without migrating it. Grafana migrates, on load,
a dashboard whose ``schemaVersion`` is below its own latest (one step per version); a higher
one than its own is not meant for it.

=============  ==============  ====================================================
Grafana        schemaVersion   the step that reached it
=============  ==============  ====================================================
11.0 .. 11.2   39              timeSeriesTable transformation options (V39)
11.3 .. 11.5   40              ``refresh`` normalised to a string (V40)
11.6           41              ``timepicker.time_options`` removed (V41)
12.0, 12.1     41              (none)
12.2 .. 12.x   42              ``hideFrom.viz`` also hides tooltips (V42)
=============  ==============  ====================================================

What is sure, and where from: 39 is ``DASHBOARD_SCHEMA_VERSION`` in the 10.4/11.0 line of
``public/app/features/dashboard/state/DashboardMigrator.ts`` (grafana/grafana; grafonnet issue
196 saw 10.4-era Grafana export 39); a Grafana 11.5.1 exports 40 and an 11.6.0 exports 41
(miyurud/jasminegraph pull request 286); V41 came with grafana/grafana pull request 100135
(merged 2025-02, after 11.5 and before 11.6) and its backend twin 100554; V42 is pull request
110517 (merged 2025-09-03, after 12.1); the installed SDK, built from Grafana 11.6, defaults
``Dashboard.schema_version`` to 41; and grafana/grafana
``apps/dashboard/pkg/migration/schemaversion/`` (one ``vNN.go`` a step, V39 to V43) says in its
README "Latest Version: 42" and that 42 "is the final version for the v1 dashboard API" (V43,
``formatTime`` to ``convertFieldType``, came later still). What is inferred: the exact release
that first carried 40 (somewhere in 11.1 .. 11.5; 11.3 above is not confirmed) and 42 (12.2, by
the merge date). So the pinned 41 is loaded as it is by Grafana 11.6, 12.0 and 12.1; Grafana
12.2 and later migrate it to 42 on load, which touches only series hidden by overrides (the
dashboards hide none); Grafana 11.5 and older are handed a schema newer than theirs.
"""

from __future__ import annotations

import copy
import doctest
from collections.abc import Callable
from typing import Any, Final

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

from probes import Config, load_config
from tests._support import grafana, grafana_sdk
from tests._support.grafana_sdk import rejections
from tests._support.paths import FIXTURES, REPO

CONFIGS: Final = {
    "demo": REPO / "checks.yaml",
    "more-journeys": FIXTURES / "dashboards" / "more-journeys.yaml",
    "two-locations": FIXTURES / "alerts" / "two-locations.yaml",
}
#: The schemaVersion of the SDK's Grafana build (its Dashboard's default).
SDK_SCHEMA_VERSION: Final = 41
Board = dict[str, Any]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> Config:
    return load_config(str(CONFIGS[request.param]))


@pytest.fixture(scope="module")
def boards(config: Config) -> list[Board]:
    import dashboards  # here, so that the checks' own tests run without the generator

    return dashboards.dashboards(config)


def test_grafanas_types_accept_every_dashboard(boards: list[Board]) -> None:
    assert [p for board in boards for p in rejections(board)] == []


def test_the_schema_version_is_the_sdks(boards: list[Board]) -> None:
    assert Dashboard().schema_version == SDK_SCHEMA_VERSION
    assert {board["uid"]: board.get("schemaVersion") for board in boards} == {
        board["uid"]: SDK_SCHEMA_VERSION for board in boards
    }


#: Angular panels, which Grafana 11 disables (and 12 removes): the core ones and the
#: best-known plugins, which grafanalib still writes.
ANGULAR: Final = frozenset(
    {"graph", "singlestat", "table-old", "grafana-piechart-panel", "grafana-worldmap-panel"}
)


def test_only_current_panel_types(boards: list[Board]) -> None:
    kinds = {panel.get("type") for board in boards for panel in grafana.panels(board)}
    assert not kinds & ANGULAR
    assert kinds <= grafana_sdk.panel_types() | {"row"}
    assert not ANGULAR & grafana_sdk.panel_types()  # the SDK's list holds no Angular panel


# --- the check bites ---------------------------------------------------------------------

DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
GOOD: Final[Board] = {
    "uid": "good",
    "title": "Good",
    "schemaVersion": SDK_SCHEMA_VERSION,
    "editable": False,
    "graphTooltip": 1,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "1m",
    "tags": ["carewatch"],
    "templating": {
        "list": [
            {"type": "datasource", "name": "datasource", "query": "prometheus"},
            {
                "type": "query",
                "name": "channel",
                "datasource": DATASOURCE,
                "query": {"query": "label_values(carewatch_journey_up, channel)", "refId": "A"},
                "multi": True,
                "includeAll": True,
                "refresh": 2,
                "sort": 1,
            },
        ]
    },
    "annotations": {"list": []},
    "links": [{"type": "dashboards", "title": "carewatch", "tags": ["carewatch"]}],
    "panels": [
        {
            "type": "row",
            "id": 1,
            "title": "Journey $channel",
            "collapsed": True,
            "repeat": "channel",
            "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
            "panels": [
                {
                    "type": "timeseries",
                    "id": 2,
                    "title": "p95",
                    "datasource": DATASOURCE,
                    "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
                    "targets": [
                        {
                            "refId": "A",
                            "expr": "up",
                            "datasource": DATASOURCE,
                            "legendFormat": "{{location}}",
                            "range": True,
                            "instant": False,
                        }
                    ],
                    "fieldConfig": {
                        "defaults": {
                            "unit": "s",
                            "custom": {"drawStyle": "line", "stacking": {"mode": "normal"}},
                            "thresholds": {
                                "mode": "absolute",
                                "steps": [
                                    {"color": "green", "value": None},
                                    {"color": "red", "value": 2},
                                ],
                            },
                        },
                        "overrides": [],
                    },
                    "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
                    "links": [{"title": "journey", "url": "/d/good/good?var-channel=app"}],
                }
            ],
        },
        {
            "type": "stat",
            "id": 3,
            "title": "Status",
            "datasource": DATASOURCE,
            "gridPos": {"x": 0, "y": 1, "w": 6, "h": 4},
            "targets": [{"refId": "A", "expr": "up", "instant": True, "range": False}],
            "options": {
                "colorMode": "background",
                "textMode": "value",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
            "fieldConfig": {
                "defaults": {
                    "mappings": [
                        {"type": "value", "options": {"1": {"text": "up", "color": "green"}}}
                    ]
                },
                "overrides": [],
            },
        },
    ],
}


def test_grafanas_types_accept_a_good_dashboard() -> None:
    assert rejections(GOOD) == []


def change(path: str, value: Any) -> Callable[[Board], None]:
    """Set the value at a dotted ``path`` (``panels.1.options.colorMode``) of a dashboard."""

    def apply(board: Board) -> None:
        *parents, last = path.split(".")
        node: Any = board
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


@pytest.mark.parametrize(
    ("case", "edit", "problem"),
    [
        ("a made-up field", change("colour", "red"), "good: colour was dropped by the round trip"),
        (
            "a made-up panel field",
            change("panels.1.sparkline", True),
            "good: panels[1].sparkline was dropped by the round trip",
        ),
        (
            "a legacy target field (grafanalib's step)",
            change("panels.1.targets.0.step", 10),
            "good: panels[1].targets[0].step was dropped by the round trip",
        ),
        (
            "a made-up field of a panel plugin's options",
            change("panels.1.options.sparkle", True),
            "good: panels[1].options.sparkle was dropped by the round trip",
        ),
        (
            "a made-up field in a collapsed row's panel",
            change("panels.0.panels.0.fieldConfig.defaults.custom.glow", 1),
            "good: panels[0].panels[0].fieldConfig.defaults.custom.glow was dropped",
        ),
        (
            "an enum value Grafana does not have",
            change("panels.1.options.colorMode", "rainbow"),
            "good: panels[1].options.color_mode: 'rainbow' is none of",
        ),
        (
            "a string where Grafana wants an integer",
            change("panels.1.gridPos", {"x": 0, "y": 1, "w": 6, "h": "4"}),
            "good: panels[1].grid_pos.h: expected an integer, got '4'",
        ),
        (
            "a bad link in a panel (left undecoded by the SDK)",
            change("panels.0.panels.0.links.0.targetBlank", "yes"),
            "good: panels[0].panels[0].links[0].target_blank: expected a boolean",
        ),
        (
            "a panel type Grafana does not have",
            change("panels.1.type", "statetimeline"),
            "good: panel 3 has the unknown type 'statetimeline'",
        ),
        (
            "a query of an unknown datasource type",
            change("panels.1.datasource", {"type": "prom", "uid": "x"}),
            "good: panel 3 queries the unknown datasource 'prom'",
        ),
    ],
)
def test_grafanas_types_reject(case: str, edit: Callable[[Board], None], problem: str) -> None:
    bad = copy.deepcopy(GOOD)
    edit(bad)
    assert any(p.startswith(problem) for p in rejections(bad)), (case, rejections(bad))


def test_a_legacy_graph_panel_is_rejected() -> None:
    """The Angular ``graph`` panel (grafanalib's ``Graph``), as grafanalib 0.7.1 writes it."""
    bad = copy.deepcopy(GOOD)
    bad["panels"][1] = {
        "type": "graph",
        "id": 3,
        "title": "Legacy",
        "datasource": DATASOURCE,
        "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
        "targets": [{"refId": "A", "expr": "up", "step": 10, "intervalFactor": 2}],
        "lines": True,
        "linewidth": 1,
        "nullPointMode": "connected",
        "renderer": "flot",
        "yaxes": [{"format": "short", "show": True}, {"format": "short", "show": True}],
    }
    problems = rejections(bad)
    assert "good: panel 3 has the unknown type 'graph'" in problems
    assert "good: panels[1].renderer was dropped by the round trip" in problems
    assert "good: panels[1].targets[0].step was dropped by the round trip" in problems
    # and with its datasource named bare, as grafanalib writes it, the SDK cannot even decode it
    bad["panels"][1]["datasource"] = "Prometheus"
    problems = rejections(bad)
    assert problems[0].startswith("good: the SDK cannot decode it"), problems
    assert "good: panel 3 has the unknown type 'graph'" in problems


def test_the_checks_examples_hold() -> None:
    failed, tried = doctest.testmod(grafana_sdk, optionflags=doctest.ELLIPSIS)
    assert (failed, tried > 0) == (0, True)
