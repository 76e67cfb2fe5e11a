"""End to end: democare and the exporter as real processes, scraped by a real Prometheus.

Faults injected into democare must show up as ``carewatch_journey_up 0`` with the right step and
reason within one interval, and clear when the fault is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from democare.stack import PROMETHEUS, PROMTOOL
from tests._support.processes import Process, down, get, inject, wait_until
from tests._support.scrape import value
from tests._support.servers import free_port
from tests._support.tools import tool

pytestmark = pytest.mark.e2e

INTERVAL = 1.0
START_SECONDS = 15.0
#: A fault must be reported within one interval of the next run: interval + timeout + a margin
#: for a loaded 2-core machine.
REPORT_SECONDS = INTERVAL + 1.0 + 3.0

CHECKS = """
defaults: {{interval: 1s, timeout: 1s, retries: 0, location: ci}}
variables: {{base: "http://{care}"}}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - name: login
            method: POST
            url: ${{base}}/app/v1/login
            json: {{username: demo@carewatch.example, password: demo-password}}
            expect: {{status: 200, json: [{{path: $.token, exists: true}}]}}
            capture: {{token: {{json: $.token}}}}
          - name: account
            url: ${{base}}/app/v1/account
            headers: {{Authorization: "Bearer ${{token}}"}}
  - name: help
    kind: self_service
    team: digital
    journeys:
      - name: search
        steps:
          - name: search
            url: ${{base}}/help/v1/search?q=roaming
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """democare and the exporter, running the CHECKS above."""
    tmp = tmp_path_factory.mktemp("e2e")
    care, agent = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = tmp / "checks.yaml"
    config.write_text(CHECKS.format(care=care))
    smtp = f"127.0.0.1:{free_port()}"
    democare = Process(
        [sys.executable, "-m", "democare", "--listen", care, "--smtp-listen", smtp],
        tmp / "democare.log",
    )
    exporter = Process(
        [sys.executable, "exporter.py", "--config", str(config), "--listen", agent],
        tmp / "exporter.log",
    )
    metrics = f"http://{agent}/metrics"
    try:
        wait_until(lambda: get(f"http://{care}/healthz")[0] == 200, START_SECONDS, "democare up")
        wait_until(
            lambda: (
                value(get(metrics)[1], "carewatch_journey_up", journey="login") is not None
                and value(get(metrics)[1], "carewatch_journey_up", journey="search") is not None
            ),
            START_SECONDS,
            "both journeys reported",
        )
        yield {
            "care": care,
            "agent": agent,
            "metrics": metrics,
            "config": config,
            "exporter": exporter,
        }
    finally:
        assert exporter.stop() == 0, exporter.output()
        democare.stop()


@pytest.fixture
def care(stack: dict[str, Any]) -> Iterator[str]:
    """democare's address, with every fault removed after the test."""
    yield stack["care"]
    get(f"http://{stack['care']}/_faults", method="DELETE")


@pytest.mark.parametrize(
    ("fault", "step", "reason", "message"),
    [
        ({"mode": "error", "status": 503}, "login", "http_status", "expected status 200, got 503"),
        (
            {"mode": "down"},
            "login",
            "connect",
            "the server closed the connection without answering",
        ),
        (
            {"mode": "slow", "delay_ms": 3000},
            "login",
            "timeout",
            "journey timeout 1s reached while waiting for the response",
        ),
        (
            {"mode": "garbage"},
            "login",
            "assertion",
            "$.token: body is not JSON "
            "('<html><body><h1>502 Bad Gateway</h1>upstream error</body></html>')",
        ),
        (
            {"mode": "error", "path": "/app/v1/account"},
            "account",
            "http_status",
            "expected status 2xx, got 503",
        ),
    ],
)
def test_fault_drops_the_channel_with_step_reason_and_message(
    stack: dict[str, Any], care: str, fault: dict[str, Any], step: str, reason: str, message: str
) -> None:
    metrics = stack["metrics"]
    wait_until(
        lambda: value(get(metrics)[1], "carewatch_journey_up", journey="login") == 1,
        REPORT_SECONDS,
        "login up before the fault",
    )
    inject(care, channel="app", **fault)
    text = wait_until(lambda: down(metrics, "login"), REPORT_SECONDS, f"login down after {fault}")
    assert (
        value(
            text,
            "carewatch_step_failure_info",
            journey="login",
            step=step,
            reason=reason,
            message=message,
        )
        == 1
    ), text
    assert value(text, "carewatch_journey_consecutive_failures", journey="login") >= 1
    assert (
        value(text, "carewatch_step_failures_total", journey="login", step=step, reason=reason) >= 1
    )
    assert value(text, "carewatch_journey_up", journey="search") == 1
    get(f"http://{care}/_faults", method="DELETE")
    text = wait_until(
        lambda: up(metrics, "login"), REPORT_SECONDS, "login back up after the fault is removed"
    )
    assert value(text, "carewatch_journey_consecutive_failures", journey="login") == 0
    assert value(text, "carewatch_step_failure_info", journey="login") is None


def up(metrics: str, journey: str) -> str | None:
    """The exposition once ``journey`` is up, else None."""
    text = get(metrics)[1]
    return text if value(text, "carewatch_journey_up", journey=journey) == 1 else None


def test_build_info_names_the_agents_location(stack: dict[str, Any]) -> None:
    _, text = get(stack["metrics"])
    assert value(text, "carewatch_build_info", location="ci") == 1


def test_promtool_accepts_the_exposition(stack: dict[str, Any], tmp_path: Path) -> None:
    promtool = tool(PROMTOOL)
    _, text = get(stack["metrics"])
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sighup_with_a_broken_file_keeps_running(stack: dict[str, Any]) -> None:
    config: Path = stack["config"]
    exporter: Process = stack["exporter"]
    good = config.read_text()
    try:
        config.write_text(good.replace("retries: 0", "retries: lots"))
        exporter.handle.send_signal(signal.SIGHUP)
        wait_until(
            lambda: value(get(stack["metrics"])[1], "carewatch_config_last_reload_successful") == 0,
            START_SECONDS,
            "reload marked unsuccessful",
        )
        assert "config reload rejected" in exporter.output()
        assert "defaults.retries" in exporter.output()
        before = value(
            get(stack["metrics"])[1],
            "carewatch_journey_runs_total",
            journey="search",
            result="success",
        )
        wait_until(
            lambda: (
                value(
                    get(stack["metrics"])[1],
                    "carewatch_journey_runs_total",
                    journey="search",
                    result="success",
                )
                > before
            ),
            REPORT_SECONDS,
            "journeys still running on the old config",
        )
    finally:
        config.write_text(good)
        exporter.handle.send_signal(signal.SIGHUP)
    wait_until(
        lambda: value(get(stack["metrics"])[1], "carewatch_config_last_reload_successful") == 1,
        START_SECONDS,
        "good config reloaded",
    )


def test_sighup_with_a_value_the_schedule_cannot_take_keeps_running(stack: dict[str, Any]) -> None:
    config: Path = stack["config"]
    exporter: Process = stack["exporter"]
    metrics = stack["metrics"]
    good = config.read_text()
    try:
        config.write_text(good.replace("interval: 1s", "interval: .nan"))
        exporter.handle.send_signal(signal.SIGHUP)
        wait_until(
            lambda: value(get(metrics)[1], "carewatch_config_last_reload_successful") == 0,
            START_SECONDS,
            "reload marked unsuccessful",
        )
        assert "keeping the running config" in exporter.output()
        assert "Task exception was never retrieved" not in exporter.output()
        assert get(f"http://{stack['agent']}/-/ready")[0] == 200
        text = get(metrics)[1]
        assert value(text, "carewatch_scheduler_journeys") == 2
        before = value(text, "carewatch_journey_runs_total", journey="search", result="success")
        wait_until(
            lambda: (
                value(
                    get(metrics)[1],
                    "carewatch_journey_runs_total",
                    journey="search",
                    result="success",
                )
                > before
            ),
            REPORT_SECONDS,
            "journeys still running on the old config",
        )
    finally:
        config.write_text(good)
        exporter.handle.send_signal(signal.SIGHUP)
    wait_until(
        lambda: value(get(metrics)[1], "carewatch_config_last_reload_successful") == 1,
        START_SECONDS,
        "good config reloaded",
    )


#: A target slower than any test: the journey's timeout is what would end its run.
HANGING = """
defaults: {{interval: 1h, timeout: 30s, retries: 0, location: ci}}
channels:
  - name: web
    kind: web
    team: digital
    journeys:
      - name: hangs
        steps:
          - {{name: home, url: "http://{address}/"}}
"""


class _Hangs(BaseHTTPRequestHandler):
    arrived = threading.Event()

    def do_GET(self) -> None:
        self.arrived.set()
        time.sleep(40)

    def log_message(self, *_: object) -> None:
        pass


def test_sigterm_does_not_wait_for_a_probe_run(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hangs)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "checks.yaml"
    config.write_text(HANGING.format(address=f"127.0.0.1:{server.server_address[1]}"))
    agent = f"127.0.0.1:{free_port()}"
    exporter = Process(
        [sys.executable, "exporter.py", "--config", str(config), "--listen", agent],
        tmp_path / "exporter.log",
    )
    try:
        wait_until(lambda: get(f"http://{agent}/-/ready")[0] == 200, START_SECONDS, "agent ready")
        probe = threading.Thread(
            target=lambda: _quietly(f"http://{agent}/probe?journey=web/hangs"), daemon=True
        )
        probe.start()
        assert _Hangs.arrived.wait(START_SECONDS), "the probe's request never reached the target"
        started = time.monotonic()
        exporter.handle.send_signal(signal.SIGTERM)
        exporter.handle.wait(timeout=20)
        assert time.monotonic() - started < 5.0, exporter.output()
        assert exporter.handle.returncode == 0, exporter.output()
    finally:
        exporter.stop()
        server.shutdown()
        server.server_close()


def _quietly(url: str) -> None:
    """GET ``url`` and forget the answer, whatever it is."""
    with contextlib.suppress(urllib.error.URLError, OSError):
        urllib.request.urlopen(url, timeout=60).read()


@pytest.mark.prometheus
def test_prometheus_scrapes_the_exporter(stack: dict[str, Any], tmp_path: Path) -> None:
    binary = tool(PROMETHEUS)
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: carewatch\n    static_configs: [{{targets: ['{stack['agent']}']}}]\n"
    )
    prometheus = Process(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        query = urllib.parse.urlencode({"query": "carewatch_journey_up"})

        def scraped() -> list[dict[str, Any]] | None:
            status, body = get(f"http://127.0.0.1:{port}/api/v1/query?{query}")
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return result if len(result) == 2 else None

        result = wait_until(scraped, 30.0, "Prometheus has scraped carewatch_journey_up")
        by_journey = {r["metric"]["journey"]: r for r in result}
        assert set(by_journey) == {"login", "search"}
        assert by_journey["search"]["metric"]["location"] == "ci"
        assert by_journey["search"]["metric"]["channel"] == "help"
        up = urllib.parse.urlencode({"query": 'up{job="carewatch"}'})
        status, body = get(f"http://127.0.0.1:{port}/api/v1/query?{up}")
        assert status == 200, body
        assert json.loads(body)["data"]["result"][0]["value"][1] == "1", prometheus.output()
    finally:
        prometheus.stop()
