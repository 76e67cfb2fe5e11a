"""democare.stack: the alerting stack's processes, proven with a hand-written rule.

A rule that fires while Prometheus scrapes the exporter (``up == 1``) travels through the real
Prometheus and Alertmanager to the pager; stopping the exporter resolves it. Whatever the stack
started is gone once it closes, and a stack whose owner vanished is stopped from its pid files.
"""

from __future__ import annotations

import doctest
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import democare.stack
from democare.pager import Pager
from democare.stack import (
    Stack,
    StackFailed,
    Tool,
    ToolMissing,
    prometheus_config,
    record_pid,
    recorded_pid,
    start_alertmanager,
    start_democare,
    start_exporter,
    start_prometheus,
    stop_recorded,
    write_yaml,
)
from tests._support.processes import wait_until
from tests._support.servers import free_port
from tests._support.stack import prometheus_alerts, query, rule_groups
from tests._support.tools import require_tools

pytestmark = pytest.mark.e2e

JOB: Final = "carewatch"
#: Generous for a loaded machine: a scrape, an evaluation, Alertmanager's group_wait and a POST
#: take about 3 s here.
NOTIFY_SECONDS: Final = 30.0
CHECKS: Final = """
defaults: {{interval: 1s, timeout: 1s, retries: 0}}
locations: {{paris: }}
channels:
  - name: app
    kind: app
    team: mobile-app
    journeys:
      - name: login
        steps:
          - name: login
            method: POST
            url: "{care}/app/v1/login"
            json: {{username: demo@carewatch.example, password: demo-password}}
"""
RULES: Final = """
groups:
  - name: harness
    rules:
      - alert: ExporterScraped
        expr: up{job="carewatch"} == 1
        labels: {severity: page}
        annotations: {summary: "{{ $labels.instance }} is scraped"}
"""
ALERTMANAGER_CONFIG: Final = """
route:
  receiver: pager
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: pager
    webhook_configs: [{{url: "{pager}/page", send_resolved: true}}]
"""


@pytest.fixture
def pager() -> Iterator[Pager]:
    with Pager() as running:
        yield running


def test_an_alert_goes_from_the_exporter_through_prometheus_and_alertmanager_to_the_pager(
    tmp_path: Path, pager: Pager
) -> None:
    require_tools()
    with Stack(tmp_path / "stack") as stack:
        care = start_democare(stack, "democare", port=free_port())
        checks = tmp_path / "checks.yaml"
        checks.write_text(textwrap.dedent(CHECKS.format(care=care.url)))
        exporter = start_exporter(
            stack, "exporter", config=checks, port=free_port(), location="paris"
        )
        am_config = tmp_path / "alertmanager.yaml"
        am_config.write_text(textwrap.dedent(ALERTMANAGER_CONFIG.format(pager=pager.url)))
        alertmanager = start_alertmanager(stack, config=am_config, port=free_port())
        rules = tmp_path / "rules.yaml"
        rules.write_text(textwrap.dedent(RULES))
        config = prometheus_config(
            job=JOB,
            targets=[exporter.address],
            rule_files=[rules],
            alertmanager=alertmanager.address,
            scrape_interval=1.0,
            evaluation_interval=1.0,
        )
        prometheus = start_prometheus(
            stack, config=write_yaml(tmp_path / "prometheus.yml", config), port=free_port()
        )
        assert [group["name"] for group in rule_groups(prometheus.url)] == ["harness"]

        [firing] = wait_until(pager.notifications, NOTIFY_SECONDS, "the firing notification")
        assert firing.path == "/page"
        assert firing.status == "firing"
        [alert] = firing.alerts
        assert alert["labels"] == {
            "alertname": "ExporterScraped",
            "severity": "page",
            "instance": exporter.address,
            "job": JOB,
        }
        assert alert["annotations"] == {"summary": f"{exporter.address} is scraped"}
        # The exporter's own location label reaches Prometheus: no target label overwrote it.
        assert query(prometheus.url, 'carewatch_journey_up{location="paris"}')

        stack.stop("exporter")
        resolved = wait_until(
            lambda: pager.notifications()[1:], NOTIFY_SECONDS, "the resolved notification"
        )
        assert [(n.status, n.alertnames("resolved")) for n in resolved] == [
            ("resolved", ["ExporterScraped"])
        ]
        assert prometheus_alerts(prometheus.url) == []
        processes = [service.process for service in stack.services.values()]

    assert [process.poll() is not None for process in processes] == [True] * 3
    assert list((tmp_path / "stack").glob("*.pid")) == []


def test_a_process_that_cannot_start_fails_with_its_log_and_the_rest_is_stopped(
    tmp_path: Path,
) -> None:
    require_tools()
    broken = tmp_path / "prometheus.yml"
    broken.write_text("scrape_configs: [{job_name: a}, {job_name: a}]\n")
    with Stack(tmp_path / "stack") as stack:
        care = start_democare(stack, "democare", port=free_port())
        with pytest.raises(StackFailed, match="prometheus exited with status") as failed:
            start_prometheus(stack, config=broken, port=free_port())
        assert 'found multiple scrape configs with job name \\"a\\"' in str(failed.value)
    assert care.process.poll() is not None


def test_a_missing_tool_says_how_to_install_it() -> None:
    tool = Tool("Pager daemon", ("carewatch-no-such-tool",), "carewatch-no-such-package")
    with pytest.raises(ToolMissing, match="carewatch-no-such-tool is on PATH") as missing:
        tool.path()
    assert "sudo apt-get install carewatch-no-such-package" in str(missing.value)


def test_a_stack_whose_owner_is_gone_is_stopped_from_its_pid_files(tmp_path: Path) -> None:
    folder = tmp_path / "stack"
    orphaned = Stack(folder)
    care = start_democare(orphaned, "democare", port=free_port())
    # A pid file naming a program the pid does not run (this test) is never signalled.
    record_pid(folder, "reused", os.getpid(), "/usr/bin/not-this-program")
    assert recorded_pid(folder, "democare") == care.process.pid
    assert recorded_pid(folder, "reused") is None

    assert stop_recorded(folder) == ["democare"]
    deadline = time.monotonic() + 10
    while care.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert care.process.returncode is not None
    assert list(folder.glob("*.pid")) == []


def test_the_examples_in_the_docstrings_are_true() -> None:
    assert doctest.testmod(democare.stack).failed == 0
