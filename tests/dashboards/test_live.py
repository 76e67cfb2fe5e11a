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
signature posted to the exporter) and must return data then. A copy of a repeated panel may
stay empty even then where the panel does not apply to its journey (the TLS panel of a journey
without TLS, the chat panel of an SMS journey), as long as another copy of it shows data; the
test prints which panels have such copies, and how many.

A hand-written dashboard proves the harness bites: a metric nobody exports, a label nobody
sets and a query that does not parse are each reported, and nothing else.
"""

from __future__ import annotations

import doctest
import time
from collections.abc import Collection, Mapping, Sequence
from types import ModuleType
from typing import Any, Final

import pytest

import tests._support.grafana_queries
import tests._support.live
from dashboards import dashboards
from tests._support.grafana_queries import REFUSED, Plan, Query, Target, plan, run
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
#: How long the faults may take to reach Prometheus, and the journeys to recover from them.
FAULT_SECONDS: Final = 30.0
#: How long the panels empty by design may take to show the faults, once every journey's
#: failing step is in Prometheus: a rate over $__rate_interval needs a few scrapes of it.
SHOW_SECONDS: Final = 15.0
RETRY_SECONDS: Final = 1.0

Identity = tuple[Target, str]
"""One copy of one panel target (``Query.identity``)."""


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
    started = time.monotonic()
    empty = dead(live, queries)
    took = time.monotonic() - started
    failures = [(q, why) for q, why in empty if not q.empty_by_design or why.startswith(REFUSED)]
    assert failures == [], f"{len(failures)} of {len(queries)} queries return no data:" + listed(
        failures
    )

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
        still = under_faults(live, boards, {q.identity for q, _ in empty})
        took_faults = time.monotonic() - faulted
    finally:
        status, body = get(f"http://{live.care}/_faults", method="DELETE")
        assert status == 200, body
        wait_until(
            lambda: len(query(live.prometheus, "carewatch_journey_up == 1")) == journeys,
            FAULT_SECONDS,
            "every journey back up once the faults are lifted",
        )
    never = unshown(queries, still)
    assert never == [], (
        f"{len(never)} queries of panels empty by design return no data in any copy, even with "
        "every channel failing:" + listed(never)
    )
    targets = {q.target for q in queries}
    report(
        capsys,
        f"{len(queries)} queries ({len(targets)} panel targets, a repeated row's once per "
        f"value) in {len(boards)} dashboards checked against Prometheus in {took:.1f} s: "
        f"{len(queries) - len(empty)} returned data on a healthy system",
        f"{len(empty)} empty on a healthy system, all in panels marked empty by design "
        f"(noValue); {len(empty) - len(still)} returned data with faults injected "
        f"({FAULT['mode']} {FAULT['status']} on every channel, a callback with no signature) "
        f"within {took_faults:.1f} s: "
        + tally(queries, {q.identity for q, _ in empty} - still.keys()),
        f"{len(still)} copies of repeated panels stayed empty where they do not apply: "
        + tally(queries, still),
    )


def unshown(
    queries: Sequence[Query], still: Mapping[Identity, tuple[Query, str]]
) -> list[tuple[Query, str]]:
    """The copies ``still`` empty under faults whose panel target no copy shows data for. A
    copy of a repeated panel that stays empty even then is one where the panel does not apply
    (the TLS panel of a journey without TLS): fine if another copy shows data."""
    shown = {q.target for q in queries if q.identity not in still}
    return [(q, why) for q, why in still.values() if q.target not in shown]


def under_faults(
    live: Live, boards: Sequence[Mapping[str, Any]], pending: set[Identity]
) -> dict[Identity, tuple[Query, str]]:
    """Those of the ``pending`` copies that still return no data ``SHOW_SECONDS`` after the
    faults show in Prometheus, with why. They are planned afresh each round (their instant
    queries read now), and a rejected callback is posted each round so that rates over short
    windows see one."""
    deadline = time.monotonic() + SHOW_SECONDS
    still: dict[Identity, tuple[Query, str]] = {}
    while True:
        assert reject_callback(live.exporter, live.config) == UNAUTHORIZED
        queries = [q for each in plans(live, boards) for q in each.queries if q.identity in pending]
        still = {q.identity: (q, why) for q, why in dead(live, queries)}
        pending = set(still)
        if not pending or time.monotonic() > deadline:
            return still
        time.sleep(RETRY_SECONDS)


def tally(queries: Sequence[Query], chosen: Collection[Identity]) -> str:
    """``'TLS certificates' (A): 10 of 11 copies`` for each panel target with copies in
    ``chosen``."""
    counts: dict[Target, list[int]] = {}
    for each in queries:
        counted = counts.setdefault(each.target, [0, 0])
        counted[0] += each.identity in chosen
        counted[1] += 1
    return (
        "; ".join(
            f"{panel!r} ({ref_id}): {some} of {total} {'copies' if total > 1 else 'query'}"
            for (_, _, panel, ref_id, _), (some, total) in counts.items()
            if some
        )
        or "none"
    )


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
    repeated = sorted(q.copy for q in checked.queries if q.panel == "up of $journey")
    assert repeated == sorted(f"journey={j.name}" for j in live.config.journeys)


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
                            "expr": 'carewatch_journey_up{journey=~"$journey"}',
                            "instant": True,
                        }
                    ],
                }
            ],
        },
    ],
}


def test_a_panel_empty_by_design_that_no_copy_fills_is_dead() -> None:
    def copy(panel: str, journey: str) -> Query:
        return Query("d", panel, "A", "x", True, 0, 1, 1, True, copy=f"journey={journey}")

    tls_login, tls_mail, failing = copy("TLS", "login"), copy("TLS", "mail"), copy("Fails", "")
    queries = [tls_login, tls_mail, failing]
    still = {q.identity: (q, "no series") for q in (tls_login, failing)}
    assert unshown(queries, still) == [(failing, "no series")]
    assert unshown(queries, {tls_mail.identity: (tls_mail, "no series")}) == []


@pytest.mark.parametrize("module", [tests._support.grafana_queries, tests._support.live])
def test_the_examples_in_the_harness_docstrings_are_true(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0
