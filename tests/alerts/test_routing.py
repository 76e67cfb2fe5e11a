"""The Alertmanager configuration: amtool accepts it, every team's pages and tickets reach
their receivers, one outage is one notification, and no secret is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts import alertmanager_config, names
from alerts.files import ALERTMANAGER, DEFAULT_OUT
from alerts.routing import NOBODY
from probes import Config, parse_config
from tests._support.paths import REPO
from tests._support.tools import run_tool


def test_amtool_accepts_the_configuration_and_its_templates(output: Path) -> None:
    done = run_tool("amtool", "check-config", ALERTMANAGER, cwd=output)
    assert done.returncode == 0, done.stdout
    assert "SUCCESS" in done.stdout, done.stdout
    assert " - 1 templates" in done.stdout, done.stdout


def routes(config: Config) -> list[tuple[dict[str, str], str]]:
    """Every (labels, receiver) amtool must agree on: each team's page and ticket, a team
    without a route, and the agents' alerts, which have no team."""
    found = [
        ({"team": team, "severity": wanted}, getattr(route, wanted))
        for team, route in config.alerting.teams.items()
        for wanted in names.SEVERITIES
    ]
    default = config.alerting.default_receiver or NOBODY
    found.append(({"team": "nobody-routes-this", "severity": names.PAGE}, default))
    found.append(({"alertname": names.PROBER_DOWN, "severity": names.PAGE}, default))
    return found


@pytest.mark.parametrize("which", ["demo", "two_locations"])
def test_amtool_routes_every_team_and_severity_to_its_receiver(
    which: str, request: pytest.FixtureRequest
) -> None:
    config: Config = request.getfixturevalue(which)
    folder = REPO / DEFAULT_OUT if which == "demo" else request.getfixturevalue("generated")
    for labels, receiver in routes(config):
        done = run_tool(
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            f"--verify.receivers={receiver}",
            *(f"{k}={v}" for k, v in labels.items()),
            cwd=folder,
        )
        assert done.returncode == 0, f"{labels}: {done.stdout}"
        assert receiver in done.stdout.splitlines(), done.stdout


def test_alerts_are_grouped_by_channel_and_timed_from_checks_yaml(two_locations: Config) -> None:
    route = alertmanager_config(two_locations)["route"]
    assert route["group_by"] == ["channel"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "10s",
        "1m",
        "12h",
    )


def test_channel_down_and_prober_down_inhibit_what_they_explain(demo: Config) -> None:
    rules = alertmanager_config(demo)["inhibit_rules"]
    channel, journey, prober = rules
    assert channel["source_matchers"] == ['alertname="ChannelDown"']
    for muted in ("JourneyDown", "JourneyDegraded", "JourneyAvailabilityBurnRate"):
        assert muted in channel["target_matchers"][0]
    assert channel["equal"] == ["channel"]
    assert journey["equal"] == ["channel", "journey"]
    assert prober["source_matchers"] == ['alertname="ProberDown"', 'location=~".+"']
    assert prober["target_matchers"] == ['alertname!="ProberDown"']
    assert prober["equal"] == ["location"]


def test_secrets_are_only_ever_files(two_locations: Config) -> None:
    text = yaml.safe_dump(alertmanager_config(two_locations))
    for inline in ("routing_key:", "api_url:", "auth_password:", "credentials:", "service_key:"):
        assert inline not in text
    for kept in (
        "routing_key_file: /etc/alertmanager/secrets/pagerduty",
        "api_url_file: /etc/alertmanager/secrets/slack",
        "auth_password_file: /etc/alertmanager/secrets/smtp",
        "credentials_file: /etc/alertmanager/secrets/hook",
    ):
        assert kept in text


def test_without_receivers_everything_goes_to_one_that_notifies_nobody() -> None:
    config = parse_config(
        "channels: [{name: app, kind: app, team: mobile, journeys: [{name: login, steps: "
        '[{name: home, url: "http://127.0.0.1:8900/"}]}]}]',
        environ={},
    )
    document = alertmanager_config(config)
    assert document["route"]["receiver"] == NOBODY
    assert "routes" not in document["route"]
    assert document["receivers"] == [{"name": NOBODY}]
