"""The generated promtool tests: they pass on Debian bookworm's promtool (2.42), cover every
alert, and fail when a rule is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts import generate, names, write
from alerts.files import RULE_TESTS, RULES
from alerts.rule_tests import go_round, humanize_duration, humanize_percentage
from probes import Config
from tests._support.tools import run_tool


def test_promtool_passes_the_generated_tests(output: Path) -> None:
    done = run_tool("promtool", "test", "rules", RULE_TESTS, cwd=output)
    assert done.returncode == 0, done.stdout[-5000:]
    assert "SUCCESS" in done.stdout


def test_every_alert_fires_and_stays_quiet_in_some_case(two_locations: Config) -> None:
    tests = yaml.safe_load(generate(two_locations)[RULE_TESTS])["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for test in tests:
        for check in test.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == set(names.ALERTS)
    assert quiet == set(names.ALERTS)
    exprs = [c for test in tests for c in test.get("promql_expr_test", [])]
    assert any(c["exp_samples"] == [] for c in exprs)  # closed: no ratio at all


def test_the_tests_fail_when_a_rule_is_wrong(two_locations: Config, tmp_path: Path) -> None:
    files = generate(two_locations)
    broken = files[RULES].replace(
        'carewatch_journey_consecutive_failures{channel="app",journey="login"} >= 2\n',
        'carewatch_journey_consecutive_failures{channel="app",journey="login"} >= 3\n',
    )
    assert broken != files[RULES]
    write({**files, RULES: broken}, tmp_path)
    done = run_tool("promtool", "test", "rules", RULE_TESTS, cwd=tmp_path)
    assert done.returncode == 1
    assert "alertname: JourneyDown, time: 2m" in done.stdout


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m 30s"), (20 * 86400, "20d 0h 0m 0s"), (3 * 3600, "3h 0m 0s"), (45, "45s")],
)
def test_durations_read_as_prometheus_humanizes_them(seconds: int, text: str) -> None:
    assert humanize_duration(seconds) == text


def test_values_round_and_read_as_prometheus_does() -> None:
    assert go_round(0.1 + 0.2) == 0.3
    assert go_round(0.49874686) == 0.4987
    assert humanize_percentage(0.51) == "51%"
