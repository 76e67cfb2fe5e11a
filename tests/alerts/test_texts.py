"""What alerts say: the same words in the rules (template slots) and in the tests (values)."""

from __future__ import annotations

from alerts import texts
from probes import Config


def test_a_failed_step_reads_with_its_message_and_reason() -> None:
    assert texts.step_text("login", "http_status", "expected status 200, got 503") == (
        "step login: expected status 200, got 503 (reason http_status)"
    )
    assert texts.step_text("login", "timeout") == "step login (reason timeout)"


def test_dashboards_are_the_next_issues_uids_with_their_variables() -> None:
    assert texts.dashboard_url("https://g.example.com/", "app", "login") == (
        "https://g.example.com/d/carewatch-journey/carewatch-journey?var-channel=app&var-journey=login"
    )
    assert texts.dashboard_url("https://g.example.com", "app").endswith(
        "/d/carewatch-overview/carewatch-overview?var-channel=app"
    )


def test_slots_are_templates_in_rules_and_values_in_tests(two_locations: Config) -> None:
    login = two_locations.find_journey("app/login")
    summary, description = texts.journey_down(login, texts.TEMPLATE)
    assert summary == "app/login is down at {{ $labels.location }}"
    filled = texts.Slots(value="2", location="lyon", step="step login (reason timeout)")
    assert texts.journey_down(login, filled)[1] == (
        "step login (reason timeout); its last 2 runs failed at lyon "
        "(down: 2 failed runs in a row at 2 locations or more)."
    )
    assert "{{ $value }}" in description


def test_a_channel_without_runbook_has_no_runbook_url(two_locations: Config) -> None:
    assert texts.links(two_locations.channel("chat"), "https://d") == {"dashboard_url": "https://d"}
    assert texts.links(two_locations.channel("app"), "https://d")["runbook_url"] == (
        "https://runbooks.example.com/app"
    )
