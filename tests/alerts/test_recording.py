"""Recording rules: Sloth's names over Sloth's windows for both SLIs of every journey, with
channel, journey, team and slo; carewatch's uptime and Apdex per location."""

from __future__ import annotations

from alerts import names, recording_groups
from probes import Config


def records(config: Config) -> list[dict[str, object]]:
    return [rule for group in recording_groups(config) for rule in group["rules"]]


def test_every_journey_has_both_slis_over_every_window_and_the_period(
    two_locations: Config,
) -> None:
    found = {
        (r["labels"]["channel"], r["labels"]["journey"], r["labels"].get("slo"), r["record"])  # type: ignore[index]
        for r in records(two_locations)
    }
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "4w"]  # 28 days is Sloth's 4w
    meta = [
        names.OBJECTIVE,
        names.ERROR_BUDGET,
        names.TIME_PERIOD,
        names.CURRENT_BURN_RATE,
        names.PERIOD_BURN_RATE,
        names.PERIOD_BUDGET_REMAINING,
    ]
    for journey in two_locations.journeys:
        for sli in names.SLIS:
            for record in [f"slo:sli_error:ratio_rate{w}" for w in windows] + meta:
                assert (journey.channel, journey.name, sli, record) in found
        for record in (
            "carewatch:journey_uptime:ratio_rate1h",
            "carewatch:journey_apdex:ratio_rate1d",
        ):
            assert (journey.channel, journey.name, None, record) in found


def test_the_labels_are_channel_journey_team_and_slo(two_locations: Config) -> None:
    for rule in records(two_locations):
        labels = rule["labels"]
        assert isinstance(labels, dict)
        expected = {"channel", "journey", "team"} | ({"slo"} if "slo" in labels else set())
        assert set(labels) == expected, rule
        if str(rule["record"]).startswith("slo:"):
            assert labels["slo"] in names.SLIS


def test_the_objective_and_budget_are_the_journeys(two_locations: Config) -> None:
    objective = {
        (r["labels"]["journey"], r["labels"]["slo"]): r["expr"]  # type: ignore[index]
        for r in records(two_locations)
        if r["record"] in (names.OBJECTIVE,)
    }
    assert objective[("login", "availability")] == "vector(0.999)"
    assert objective[("account", "latency")] == "vector(0.9)"
    period = {r["expr"] for r in records(two_locations) if r["record"] == names.TIME_PERIOD}
    assert period == {"vector(28)"}


def test_the_period_window_averages_the_5m_ratios_like_sloth(two_locations: Config) -> None:
    [rule] = [
        r
        for r in records(two_locations)
        if r["record"] == "slo:sli_error:ratio_rate4w"
        and r["labels"]
        == {"channel": "app", "journey": "login", "slo": "latency", "team": "mobile"}
    ]
    assert str(rule["expr"]).startswith(
        'sum_over_time(slo:sli_error:ratio_rate5m{channel="app",journey="login",slo="latency"}[4w])'
    )
