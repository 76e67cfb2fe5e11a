"""No dead panels (issue 11): every query of every generated dashboard returns data from a real
Prometheus.

The stack (the ``live`` fixture, tests/dashboards/conftest.py) is democare, an exporter probing
it with the repository's checks.yaml, every journey every 2 s, and Prometheus 2.42, scraping
and evaluating every second, loaded with the rules that ``alerts.generate`` makes from the same
config. Each dashboard of ``dashboards.dashboards(config)`` is opened as Grafana opens it at
its default time range (tests/_support/grafana_queries.py): its variables resolved through
Prometheus's API and set to All, its repeated rows repeated once per value, ``$__rate_interval``,
``$__interval`` and ``$__range`` worked out for each panel. Every target then runs through
Prometheus's HTTP API, an instant query or a range query as the target says, and must return
data (a number that is not NaN).

A panel that shows a text instead of "No data" (``fieldConfig.defaults.noValue``) is empty by
design on a healthy system: the steps failing now, say. Those run again with faults injected
(an error on every channel of democare, so that each journey fails, and a callback with no
signature posted to the exporter) and must return data then.

A hand-written dashboard proves the harness bites: a metric nobody exports, a label nobody
sets and a query that does not parse are each reported, and nothing else.
"""

from __future__ import annotations

import doctest
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Final

import pytest

import tests._support.grafana_queries
import tests._support.live
from dashboards import dashboards
from tests._support.grafana_queries import Plan, Query, plan, run
from tests._support.live import Live, reject_callback
from tests._support.processes import get, inject, wait_until
from tests._support.stack import query

#: The stack's start and warm-up (about 45 s here), every query, and the faults.
TEST_SECONDS: Final = 240
pytestmark = [pytest.mark.e2e, pytest.mark.prometheus, pytest.mark.timeout(TEST_SECONDS)]

UIDS: Final = {"carewatch-overview", "carewatch-journey", "carewatch-slos", "carewatch-agents"}
#: Injected into every channel of democare: each journey fails at its first step with
#: http_status, so that every copy of a repeated panel has a failure to show.
FAULT: Final = {"mode": "error", "status": 503}
UNAUTHORIZED: Final = 401
#: How long the panels empty by design may take to show the faults: a run, a scrape, the
#: recording rules, with room for a loaded machine.
FAULT_SECONDS: Final = 30.0
RETRY_SECONDS: Final = 1.0


def report(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    """Print figures past pytest's capture, so that every run shows them."""
    with capsys.disabled():
        for line in lines:
            print(f"\n[no dead panels] {line}", end="")
        print()


def plans(live: Live, boards: Sequence[Mapping[str, Any]]) -> list[Plan]:
    now = time.time()
    return [
        plan(board, prometheus=live.prometheus, now=now, scrape_seconds=live.scrape_seconds)
        for board in boards
    ]


def dead(live: Live, queries: Sequence[Query]) -> list[tuple[Query, str]]:
    """The queries that return no data, each with why."""
    found = []
    for each in queries:
        why = run(live.prometheus, each)
        if why is not None:
            found.append((each, why))
    return found


def listed(failures: Sequence[tuple[Query, str]]) -> str:
    return "".join(f"\n- {q.describe()}\n  -> {why}" for q, why in failures)


def test_every_panel_returns_data_and_the_empty_ones_show_a_fault(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    boards = dashboards(live.config)
    assert {board["uid"] for board in boards} == UIDS
    healthy = plans(live, boards)
    problems = [problem for each in healthy for problem in each.problems]
    assert problems == [], "\n".join(problems)
    queries = [q for each in healthy for q in each.queries]
    by_design = [q for q in queries if q.empty_by_design]
    started = time.monotonic()
    failures = [(q, why) for q, why in dead(live, queries) if not q.empty_by_design]
    took = time.monotonic() - started
    assert failures == [], f"{len(failures)} of {len(queries)} queries return no data:" + listed(
        failures
    )
    # Run as a healthy system shows them, they must at least be accepted by Prometheus.
    refused = [(q, why) for q, why in dead(live, by_design) if why.startswith("Prometheus")]
    assert refused == [], listed(refused)

    faulted = time.monotonic()
    journeys = len(live.config.journeys)
    for channel in live.config.channels:
        inject(live.care, channel=channel.kind, **FAULT)
    try:
        wait_until(
            lambda: len(query(live.prometheus, "carewatch_step_failure_info")) == journeys,
            FAULT_SECONDS,
            f"a failing step in each of the {journeys} journeys, in Prometheus",
        )
        still = by_design_under_faults(live, boards)
        took_faults = time.monotonic() - faulted
    finally:
        status, body = get(f"http://{live.care}/_faults", method="DELETE")
        assert status == 200, body
        wait_until(
            lambda: len(query(live.prometheus, "carewatch_journey_up == 1")) == journeys,
            FAULT_SECONDS,
            "every journey back up once the faults are lifted",
        )
    assert still == [], f"{len(still)} panels empty by design show no fault:" + listed(still)
    panels, empty_panels = (
        {(q.dashboard, q.panel) for q in found} for found in (queries, by_design)
    )
    report(
        capsys,
        f"{len(queries)} queries of {len(panels)} panels in {len(boards)} dashboards checked "
        f"against Prometheus in {took:.1f} s: every one returned data",
        f"{len(by_design)} of them empty by design ({len(empty_panels)} panels) returned data "
        f"with faults injected ({FAULT['mode']} {FAULT['status']} on every channel, a "
        f"callback with no signature), {took_faults:.1f} s after the faults",
    )


def by_design_under_faults(
    live: Live, boards: Sequence[Mapping[str, Any]]
) -> list[tuple[Query, str]]:
    """The panels empty by design that still show nothing ``FAULT_SECONDS`` after the faults,
    planned afresh each round (their instant queries read now), a rejected callback posted
    each round so that rates over short windows see one."""
    deadline = time.monotonic() + FAULT_SECONDS
    while True:
        assert reject_callback(live.exporter, live.config) == UNAUTHORIZED
        queries = [q for each in plans(live, boards) for q in each.queries if q.empty_by_design]
        still = dead(live, queries)
        if not still or time.monotonic() > deadline:
            return still
        time.sleep(RETRY_SECONDS)


def test_the_harness_reports_dead_panels_and_only_them(live: Live) -> None:
    channels = sorted({journey.channel for journey in live.config.journeys})
    [checked] = plans(live, [HARNESS])
    assert checked.problems == []
    found = {(q.panel, q.ref_id): why for q, why in dead(live, checked.queries)}

    assert set(found) == {
        ("a metric nobody exports", "A"),
        ("a label nobody sets", "A"),
        ("does not parse", "A"),
    }
    assert found[("a metric nobody exports", "A")] == "no series"
    assert found[("does not parse", "A")].startswith("Prometheus refused it: bad_data")
    runs = next(q for q in checked.queries if q.panel == "runs")
    # 1 h over 950 px is 3.8 s, rounded to 5 s; $__rate_interval is 5 s + the 1 s scrape.
    assert runs.expr == (
        f'sum by (journey) (rate(carewatch_journey_runs_total{{channel=~"({"|".join(channels)})"}}'
        "[6s]))"
    )
    assert (runs.instant, runs.step) == (False, 5.0)
    repeated = sorted(q.panel for q in checked.queries if q.panel.startswith("up of "))
    assert repeated == sorted(f"up of {j.name}" for j in live.config.journeys)


HARNESS: Final[Mapping[str, Any]] = {
    "uid": "harness",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {
        "list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {
                "name": "channel",
                "type": "query",
                "query": "label_values(carewatch_journey_info, channel)",
                "multi": True,
                "includeAll": True,
            },
            {
                "name": "journey",
                "type": "query",
                "query": {
                    "query": 'label_values(carewatch_journey_info{channel=~"$channel"}, journey)'
                },
                "multi": True,
                "includeAll": True,
            },
        ]
    },
    "panels": [
        {
            "type": "timeseries",
            "title": "runs",
            "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
            "targets": [
                {
                    "refId": "A",
                    "expr": "sum by (journey) (rate(carewatch_journey_runs_total"
                    '{channel=~"${channel}"}[$__rate_interval]))',
                    "range": True,
                }
            ],
        },
        {
            "type": "stat",
            "title": "a metric nobody exports",
            "targets": [{"refId": "A", "expr": "carewatch_no_such_metric", "instant": True}],
        },
        {
            "type": "stat",
            "title": "a label nobody sets",
            "targets": [
                {"refId": "A", "expr": 'carewatch_journey_up{chanel=~"$channel"}', "instant": True}
            ],
        },
        {
            "type": "stat",
            "title": "does not parse",
            "targets": [
                {"refId": "A", "expr": "rate(carewatch_journey_runs_total)", "instant": True}
            ],
        },
        {
            "type": "row",
            "title": "$journey",
            "repeat": "journey",
            "collapsed": True,
            "panels": [
                {
                    "type": "stat",
                    "title": "up of $journey",
                    "targets": [
                        {
                            "refId": "A",
                            "expr": 'carewatch_journey_up{journey=~"$journey"} == 1',
                            "instant": True,
                        }
                    ],
                }
            ],
        },
    ],
}


@pytest.mark.parametrize("module", [tests._support.grafana_queries, tests._support.live])
def test_the_examples_in_the_harness_docstrings_are_true(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0
