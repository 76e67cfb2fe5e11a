"""The names the generated files share with the exporter and the end-to-end test."""

from __future__ import annotations

from alerts import names
from probes import metrics


def test_the_rules_read_the_exporters_consecutive_failures_gauge() -> None:
    assert metrics.JOURNEY_CONSECUTIVE_FAILURES.name == names.CONSECUTIVE_FAILURES
    assert names.CONSECUTIVE_FAILURES == "carewatch_journey_consecutive_failures"


def test_every_alert_name_is_listed_once() -> None:
    assert len(set(names.ALERTS)) == len(names.ALERTS) == 11
    assert names.SEVERITIES == ("page", "ticket")
