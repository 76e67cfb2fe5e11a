"""The SLO maths: Sloth's windows, and burn-rate factors that are the Workbook's for 30 days
and Sloth's for any other period."""

from __future__ import annotations

import pytest

from alerts import names, slo
from alerts.promql import number
from probes import Config


def test_the_windows_and_pairs_are_the_workbooks() -> None:
    assert [w.name for w in slo.WINDOWS] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    pairs = [(p.severity, p.long.name, p.short.name) for p in slo.BURN_RATES]
    assert pairs == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]


@pytest.mark.parametrize(
    ("days", "factors"),
    [(30, ["14.4", "6", "3", "1"]), (28, ["13.44", "5.6", "2.8", "0.9333333333"])],
)
def test_factors_spend_the_same_share_of_the_budget_whatever_the_period(
    days: int, factors: list[str]
) -> None:
    assert [number(p.factor(days))[:12] for p in slo.BURN_RATES] == factors


@pytest.mark.parametrize(
    ("days", "averaged"), [(30, ["30d"]), (28, ["30d", "4w"]), (3, ["30d"]), (7, ["30d", "1w"])]
)
def test_the_period_is_recorded_once_and_never_by_rate_over_raw_counters(
    days: int, averaged: list[str]
) -> None:
    assert [w.name for w in slo.averaged_windows(days)] == averaged


def test_availability_counts_failed_runs_and_latency_reads_the_exact_bucket(
    two_locations: Config,
) -> None:
    account = two_locations.find_journey("app/account")  # latency_threshold: 1.5s
    availability = slo.sli_error_ratio(account, names.AVAILABILITY, slo.WINDOWS[0])
    assert 'result="failure"}[5m]' in availability
    assert "> 0)" in availability  # no runs, no ratio: closed hours stay out
    latency = slo.sli_error_ratio(account, names.LATENCY, slo.WINDOWS[2])
    assert (
        'carewatch_journey_duration_seconds_bucket{channel="app",journey="account",le="1.5"}[1h]'
        in latency
    )
    assert latency.startswith("1 - (")
    assert slo.error_budget(account, names.LATENCY) == 0.1
    assert slo.error_budget(two_locations.find_journey("app/login"), names.AVAILABILITY) == 0.001
