"""``alerting:`` and each journey's ``alert:``, resolved: defaults, overrides, and receivers.

Located errors for bad ``alerting:`` sections are fixture files under
tests/fixtures/config/bad/ (alert*.yaml), checked by tests/model/test_load.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from probes.model import AlertPolicy, Config, parse_config
from probes.model.alerting import DEFAULT_FAILED_RUNS, DEFAULT_PERIOD_DAYS


def config(**sections: Any) -> Config:
    """A config of two journeys on channel ``app``: ``everywhere`` and ``paris-only``; the
    only location is ``paris`` unless ``locations`` is given."""
    journeys = sections.pop("journeys", {})
    document = {
        "locations": {"paris": {"lat": 48.85, "lon": 2.35}},
        **sections,
        "channels": [
            {
                "name": "app",
                "kind": "app",
                "team": "mobile",
                "journeys": [
                    {
                        "name": "everywhere",
                        "steps": [{"name": "s", "url": "http://127.0.0.1:8900/"}],
                        **journeys.get("everywhere", {}),
                    },
                    {
                        "name": "paris-only",
                        "locations": ["paris"],
                        "steps": [{"name": "s", "url": "http://127.0.0.1:8900/"}],
                        **journeys.get("paris-only", {}),
                    },
                ],
            }
        ],
    }
    return parse_config(json.dumps(document), environ={})


TWO_LOCATIONS = {"paris": {"lat": 48.85, "lon": 2.35}, "lyon": {"lat": 45.76, "lon": 4.84}}


def test_without_alerting_every_journey_pages_after_two_failed_runs_at_one_location() -> None:
    loaded = config()
    assert loaded.alerting.receivers == {}
    assert loaded.alerting.period_days == DEFAULT_PERIOD_DAYS
    assert [j.alert for j in loaded.journeys] == [AlertPolicy(DEFAULT_FAILED_RUNS, 1, True)] * 2


def test_a_journey_run_at_several_locations_pages_at_two_by_default() -> None:
    loaded = config(locations=TWO_LOCATIONS)
    everywhere, paris_only = loaded.journeys
    assert everywhere.alert.min_failed_locations == 2
    assert paris_only.alert.min_failed_locations == 1


def test_a_journey_overrides_any_part_of_defaults_alert() -> None:
    loaded = config(
        locations=TWO_LOCATIONS,
        defaults={"alert": {"failed_runs": 3, "page": False}},
        journeys={"everywhere": {"alert": {"min_failed_locations": 1, "page": True}}},
    )
    everywhere, paris_only = loaded.journeys
    assert everywhere.alert == AlertPolicy(failed_runs=3, min_failed_locations=1, page=True)
    assert paris_only.alert == AlertPolicy(failed_runs=3, min_failed_locations=1, page=False)


def test_receivers_teams_and_the_numbers_are_kept_as_written() -> None:
    loaded = config(
        alerting={
            "period_days": 28,
            "dashboard_url": "https://grafana.example.com",
            "group_wait": "10s",
            "receivers": {
                "pager": {"pagerduty": {"routing_key_file": "/run/secrets/pd"}},
                "queue": {"webhook": {"url": "http://127.0.0.1:9/hook"}},
            },
            "teams": {"mobile": {"page": "pager", "ticket": "queue"}},
            "default_receiver": "queue",
        }
    )
    alerting = loaded.alerting
    assert (alerting.period_days, alerting.group_wait) == (28, 10.0)
    assert {name: r.kind for name, r in alerting.receivers.items()} == {
        "pager": "pagerduty",
        "queue": "webhook",
    }
    assert alerting.teams["mobile"].page == "pager"


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ({"period_days": 0}, "greater than or equal to 1"),
        ({"dashboard_url": "grafana.example.com"}, "expected an http:// or https:// URL"),
        ({"receivers": {"x": {}}}, "expected exactly one of webhook"),
        (
            {"receivers": {"x": {"slack": {"api_url_file": "relative", "channel": "#c"}}}},
            "expected text matching ^/",
        ),
    ],
)
def test_a_bad_alerting_value_is_a_located_error(alerting: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match="problem") as caught:
        config(alerting=alerting)
    assert message in str(caught.value)
    assert "<string>:" in str(caught.value)  # located: file and line
