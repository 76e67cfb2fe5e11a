"""Alert rules: the names, severities, labels and annotations of ALERTS_SPEC (docs/alerts.md),
a closed channel that never alerts, and promtool's check of every generated rule file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alerts import alert_groups, names
from probes import Config
from tests._support.tools import run_tool


def alerts(config: Config) -> list[dict[str, Any]]:
    return [rule for group in alert_groups(config) for rule in group["rules"] if "alert" in rule]


def by_name(config: Config, name: str) -> list[dict[str, Any]]:
    return [rule for rule in alerts(config) if rule["alert"] == name]


def test_every_alert_has_a_severity_a_summary_a_description_and_a_dashboard(
    two_locations: Config,
) -> None:
    found = alerts(two_locations)
    assert {rule["alert"] for rule in found} == set(names.ALERTS)
    for rule in found:
        assert rule["labels"]["severity"] in names.SEVERITIES, rule
        assert {"summary", "description", "dashboard_url"} <= set(rule["annotations"]), rule
        assert rule["annotations"]["dashboard_url"].startswith("https://grafana.example.com/d/")


def test_channel_alerts_name_their_team_and_runbook_and_are_gated_on_opening_hours(
    two_locations: Config,
) -> None:
    agent = {names.PROBER_DOWN, names.CONFIG_RELOAD_FAILED, names.CALLBACK_REJECTIONS}
    for rule in alerts(two_locations):
        if rule["alert"] in agent:
            assert "team" not in rule["labels"]  # the default receiver's
            continue
        channel = rule["labels"]["channel"]
        assert rule["labels"]["team"] == two_locations.channel(channel).team
        assert f'carewatch_channel_open{{channel="{channel}"}}' in rule["expr"], rule["alert"]
        runbook = rule["annotations"].get("runbook_url")
        assert runbook == two_locations.channel(channel).runbook_url  # none: left out


def test_journey_down_needs_consecutive_failures_at_enough_locations_and_no_for(
    two_locations: Config,
) -> None:
    down = {r["labels"]["journey"]: r for r in by_name(two_locations, names.JOURNEY_DOWN)}
    assert all("for" not in rule for rule in down.values())
    assert (
        'carewatch_journey_consecutive_failures{channel="app",journey="account"} >= 3'
        in (down["account"]["expr"])
    )
    records = {
        rule["labels"]["journey"]: rule["expr"]
        for group in alert_groups(two_locations)
        for rule in group["rules"]
        if rule.get("record") == names.JOURNEY_DOWN_RECORD
    }
    assert records["login"].endswith(">= bool 2\n")  # two locations run it
    assert records["account"].endswith(">= bool 1\n")  # paris only
    degraded = {r["labels"]["journey"] for r in by_name(two_locations, names.JOURNEY_DEGRADED)}
    assert degraded == {"login", "ask-bot", "nearest"}  # never for a journey of one location
    assert {r["labels"]["severity"] for r in by_name(two_locations, names.JOURNEY_DEGRADED)} == {
        names.TICKET
    }


def test_the_description_names_the_failing_step_from_carewatch_step_failure_info(
    two_locations: Config,
) -> None:
    [login] = [
        r for r in by_name(two_locations, names.JOURNEY_DOWN) if r["labels"]["journey"] == "login"
    ]
    description = login["annotations"]["description"]
    assert 'printf "carewatch_step_failure_info{channel=%q,journey=%q,location=%q}"' in description
    assert "{{ .Labels.step }}" in description
    assert "{{ with .Labels.message }}: {{ . }}{{ end }}" in description
    assert "(reason {{ .Labels.reason }})" in description


def test_a_journey_that_may_not_page_raises_only_tickets(two_locations: Config) -> None:
    ask_bot = [r for r in alerts(two_locations) if r["labels"].get("journey") == "ask-bot"]
    assert {r["labels"]["severity"] for r in ask_bot} == {names.TICKET}
    burn = [r for r in ask_bot if r["alert"] == names.AVAILABILITY_BURN_RATE]
    assert len(burn) == 1  # all four pairs of windows in one ticket
    [chat_down] = [
        r for r in by_name(two_locations, names.CHANNEL_DOWN) if r["labels"]["channel"] == "chat"
    ]
    assert chat_down["labels"]["severity"] == names.TICKET


def test_burn_rates_page_at_the_workbooks_factors(demo: Config) -> None:
    [page] = [
        r
        for r in by_name(demo, names.AVAILABILITY_BURN_RATE)
        if r["labels"]["journey"] == "login" and r["labels"]["severity"] == names.PAGE
    ]
    assert page["labels"]["slo"] == "availability"
    assert "slo:sli_error:ratio_rate5m" in page["expr"]
    assert "> (14.4 * 0.001)" in page["expr"]
    assert "slo:sli_error:ratio_rate6h" in page["expr"]
    assert "> (6 * 0.001)" in page["expr"]


def test_prober_down_watches_the_job_and_knows_the_dead_agents_location(
    two_locations: Config,
) -> None:
    scraped, vanished = by_name(two_locations, names.PROBER_DOWN)
    assert 'up{job="care-agents"} == 0' in scraped["expr"]
    assert 'last_over_time(carewatch_build_info{job="care-agents"}[1h])' in scraped["expr"]
    assert "for" not in scraped
    assert vanished["expr"] == 'absent(up{job="care-agents"})\n'
    assert vanished["for"] == "5m"  # a Prometheus that just started has scraped nothing yet


def test_promtool_accepts_every_rule_and_finds_no_duplicate(output: Path) -> None:
    done = run_tool("promtool", "check", "rules", "rules.yaml", cwd=output)
    assert done.returncode == 0, done.stdout
    assert "SUCCESS" in done.stdout, done.stdout
    assert "duplicate" not in done.stdout, done.stdout
    groups = yaml.safe_load((output / "rules.yaml").read_text(encoding="utf-8"))["groups"]
    rules = sum(len(group["rules"]) for group in groups)
    assert f"SUCCESS: {rules} rules found" in done.stdout
