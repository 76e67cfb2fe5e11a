"""``make stack`` (``python -m democare.stack_demo``): it runs the whole chain, prints each page
legibly, and ``stop`` ends every process it started.

The rules here are hand-written (a journey that is down pages), so that the command is proven
whatever the generator writes; the pager listens where checks.yaml's webhook receiver points.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from democare.stack import port_taken
from probes import Exit
from tests._support.paths import REPO
from tests._support.processes import inject, wait_until
from tests._support.servers import free_port
from tests._support.tools import require_tools

pytestmark = pytest.mark.e2e

STACK_SECONDS: Final = 60.0
SERVICES: Final = ("democare", "smtp", "exporter", "prometheus", "alertmanager")
CHECKS: Final = """
defaults: {{interval: 1s, timeout: 1s, retries: 0}}
variables:
  base: ${{env:DEMOCARE_URL:-http://127.0.0.1:9}}
alerting:
  group_wait: 1s
  receivers:
    pager: {{webhook: {{url: "http://127.0.0.1:{pager}/hook"}}}}
  default_receiver: pager
channels:
  - name: app
    kind: app
    team: mobile-app
    runbook_url: https://runbooks.example.com/app
    journeys:
      - name: login
        steps:
          - name: login
            method: POST
            url: ${{base}}/app/v1/login
            json: {{username: demo@carewatch.example, password: demo-password}}
            expect: {{status: 200}}
"""
RULES: Final = """
groups:
  - name: hand-written
    rules:
      - alert: JourneyDown
        expr: carewatch_journey_up == 0
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.channel }}/{{ $labels.journey }} is down"
          runbook_url: https://runbooks.example.com/app
"""
ALERTMANAGER_CONFIG: Final = """
route: {{receiver: pager, group_by: [channel], group_wait: 1s, group_interval: 1s}}
receivers:
  - name: pager
    webhook_configs: [{{url: "http://127.0.0.1:{pager}/hook"}}]
"""


class Running:
    """``python -m democare.stack_demo start`` as a child process, its output in a file."""

    def __init__(self, cwd: Path, *options: str) -> None:
        self.cwd = cwd
        self.output = cwd / "stack-demo.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", "democare.stack_demo", "start", *options],
                cwd=cwd,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def stack_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "democare.stack_demo", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=STACK_SECONDS,
    )


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in (*SERVICES, "pager")}


@pytest.fixture
def generated(tmp_path: Path, ports: dict[str, int]) -> Path:
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "rules.yaml").write_text(textwrap.dedent(RULES))
    (folder / "alertmanager.yaml").write_text(
        textwrap.dedent(ALERTMANAGER_CONFIG.format(pager=ports["pager"]))
    )
    (tmp_path / "checks.yaml").write_text(textwrap.dedent(CHECKS.format(pager=ports["pager"])))
    return folder


@pytest.fixture
def running(tmp_path: Path, ports: dict[str, int], generated: Path) -> Iterator[Running]:
    require_tools()
    addresses = [f"--{name}=127.0.0.1:{ports[name]}" for name in SERVICES]
    started = Running(tmp_path, "--config=checks.yaml", f"--generated={generated}", *addresses)
    try:
        yield started
    finally:
        started.kill()  # only when the test failed before stopping it


def test_the_stack_prints_its_urls_then_each_page_and_stop_ends_everything(
    tmp_path: Path, ports: dict[str, int], running: Running
) -> None:
    wait_until(lambda: "pages print below" in running.text(), STACK_SECONDS, running.text())
    text = running.text()
    assert f"http://127.0.0.1:{ports['prometheus']}/alerts" in text
    assert f"http://127.0.0.1:{ports['alertmanager']}/#/alerts" in text
    assert f"pager (webhook receiver)      http://127.0.0.1:{ports['pager']}" in text
    breaking = (
        f"curl -X POST http://127.0.0.1:{ports['democare']}/_faults "
        """-d '{"channel": "app", "mode": "error", "status": 503}'"""
    )
    assert breaking in text

    inject(f"127.0.0.1:{ports['democare']}", channel="app", mode="error", status=503)
    wait_until(lambda: "FIRING JourneyDown" in running.text(), STACK_SECONDS, running.text())
    page = running.text().split("pages print below.")[1]
    assert "/hook (receiver pager): 1 alert" in page
    assert "    app/login is down" in page
    assert "    runbook:   https://runbooks.example.com/app" in page

    stopped = stack_demo(tmp_path, "stop")
    assert stopped.returncode == Exit.OK, stopped.stderr
    assert stopped.stdout.startswith("stopped: stack"), stopped.stdout
    assert running.process.wait(timeout=STACK_SECONDS) == Exit.OK
    assert "stopping the stack..." in running.text()
    assert list((tmp_path / ".stack").glob("*.pid")) == []
    assert [name for name, port in ports.items() if port_taken("127.0.0.1", port)] == []


def test_stop_ends_what_a_killed_start_left_behind(
    tmp_path: Path, ports: dict[str, int], running: Running
) -> None:
    wait_until(lambda: "pages print below" in running.text(), STACK_SECONDS, running.text())
    os.kill(running.process.pid, signal.SIGKILL)  # the command alone: its processes live on
    running.process.wait()
    assert port_taken("127.0.0.1", ports["prometheus"]) is not None

    stopped = stack_demo(tmp_path, "stop")
    assert stopped.returncode == Exit.OK, stopped.stderr
    assert stopped.stdout.startswith("stopped: "), stopped.stdout
    assert {"democare", "exporter", "prometheus", "alertmanager"} <= set(
        stopped.stdout.removeprefix("stopped: ").strip().split(", ")
    )
    deadline = time.monotonic() + STACK_SECONDS
    while any(port_taken("127.0.0.1", port) for port in ports.values()):
        assert time.monotonic() < deadline, "a port is still held after stop"
        time.sleep(0.1)


def test_stop_with_nothing_running(tmp_path: Path) -> None:
    done = stack_demo(tmp_path, "stop")
    assert (done.returncode, done.stdout) == (Exit.OK, "nothing was running\n")


def test_start_without_the_generated_files_says_how_to_make_them(
    tmp_path: Path, generated: Path
) -> None:
    done = stack_demo(tmp_path, "start", "--config=checks.yaml", f"--generated={tmp_path}")
    assert done.returncode == Exit.CONFIG
    assert f"carewatch alerts --config checks.yaml --out {tmp_path}" in done.stderr
    assert not (tmp_path / ".stack").exists()
