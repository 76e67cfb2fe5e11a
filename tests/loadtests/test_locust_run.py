"""Locust itself, headless, in a subprocess, against democare as a process.

A short run of ``loadtests/locustfile.py`` on the demo checks.yaml must report every step as its
own ``channel/journey/step`` entry and every journey as a ``JOURNEY`` entry, all passing on a
healthy democare, with every threshold held (exit code 0); with a fault injected, the broken
journey's entries fail, naming the step and the reason, its thresholds break, and Locust exits
with 99. The pytest process never imports locust (gevent would patch it).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loadtests.journeys import included
from probes.config import load_config
from tests.conftest import REPO, free_port
from tests.test_exporter import Process, get, inject, wait_until

pytestmark = pytest.mark.e2e

START_SECONDS = 15.0
#: Locust's own start and stop, around its --run-time, on a loaded 2-core machine.
MARGIN_SECONDS = 30.0
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"


@dataclass(frozen=True)
class Run:
    """What a headless Locust run left: its exit code, output and CSV statistics."""

    code: int
    output: str
    stats: dict[tuple[str, str], dict[str, str]]  # (type, name) -> the CSV row
    failures: list[dict[str, str]]
    verdict: dict[str, Any]  # --thresholds-json
    junit: ET.Element  # --thresholds-junit


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """democare as a process, and the environment that points checks.yaml at it."""
    tmp = tmp_path_factory.mktemp("locust")
    address = f"127.0.0.1:{free_port()}"
    democare = Process(
        [sys.executable, "-m", "democare", "--listen", address, "--smtp-listen", "off"],
        tmp / "democare.log",
    )
    environ = {
        **os.environ,
        "CAREWATCH_CHECKS": str(REPO / "checks.yaml"),
        "DEMOCARE_URL": f"http://{address}",
        "DEMOCARE_WS_URL": f"ws://{address}",
    }
    try:
        wait_until(lambda: get(f"http://{address}/healthz")[0] == 200, START_SECONDS, "democare")
        yield {"address": address, "environ": environ}
    finally:
        democare.stop()


@pytest.fixture
def clean(care: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``care``, with every fault removed after the test."""
    yield care
    get(f"http://{care['address']}/_faults", method="DELETE")


def locust(
    care: dict[str, Any], tmp: Path, *, users: int, seconds: int, classes: tuple[str, ...] = ()
) -> Run:
    prefix = tmp / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{seconds}s",
            "--stop-timeout",
            "2",
            "--csv",
            str(prefix),
            "--thresholds-json",
            str(tmp / "verdict.json"),
            "--thresholds-junit",
            str(tmp / "junit.xml"),
            "--only-summary",
            *classes,
        ],
        cwd=REPO,
        env=care["environ"],
        capture_output=True,
        text=True,
        timeout=seconds + MARGIN_SECONDS,
    )
    output = done.stdout + done.stderr
    with open(f"{prefix}_stats.csv", newline="") as file:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(file)}
    with open(f"{prefix}_failures.csv", newline="") as file:
        failures = list(csv.DictReader(file))
    verdict = json.loads((tmp / "verdict.json").read_text())
    junit = ET.parse(tmp / "junit.xml").getroot()
    return Run(done.returncode, output, stats, failures, verdict, junit)


def test_a_healthy_run_reports_every_step_and_journey(
    clean: dict[str, Any], tmp_path: Path
) -> None:
    journeys = included(load_config(REPO / "checks.yaml", environ={}), location="local")
    run = locust(clean, tmp_path, users=len(journeys), seconds=4)  # one user per journey
    assert run.code == 0, run.output
    assert run.failures == [], run.output
    for journey in journeys:
        entry = run.stats[("JOURNEY", journey.id)]
        assert int(entry["Request Count"]) > 0, run.output
        assert entry["Failure Count"] == "0"
        for step in (*journey.steps, *journey.finally_steps):
            kind = getattr(step, "method", "WS")
            row = run.stats[(kind, f"{journey.id}/{step.name}")]
            assert int(row["Request Count"]) > 0, (journey.id, step.name, run.output)
            assert row["Failure Count"] == "0"
    assert "not load-tested: sms/text-care-number: await step 'reply'" in run.output
    assert "not load-tested: email/write-to-care: SMTP step 'send'" in run.output
    assert run.verdict["passed"] is True
    assert {t["entry"] for t in run.verdict["thresholds"]} == {j.id for j in journeys}
    assert run.junit.get("failures") == "0"
    assert run.junit.get("skipped") == "3"  # sms, push, email: not run by the Locust engine


def test_a_fault_fails_the_journey_with_step_and_reason(
    clean: dict[str, Any], tmp_path: Path
) -> None:
    inject(clean["address"], channel="app", mode="error", status=503, path="/app/v1/account")
    run = locust(clean, tmp_path, users=2, seconds=2, classes=("app/login",))
    assert run.code == 99, run.output
    journey = run.stats[("JOURNEY", "app/login")]
    assert int(journey["Failure Count"]) == int(journey["Request Count"]) > 0
    assert run.stats[("POST", "app/login/login")]["Failure Count"] == "0"
    account = run.stats[("GET", "app/login/account")]
    assert int(account["Failure Count"]) == int(account["Request Count"]) > 0
    errors = {(f["Method"], f["Name"]): f["Error"] for f in run.failures}
    assert errors == {
        ("GET", "app/login/account"): "http_status: expected status 200, got 503",
        ("JOURNEY", "app/login"): "account: http_status: expected status 200, got 503",
    }
    broken = [t for t in run.verdict["thresholds"] if not t["passed"]]
    assert [(t["entry"], t["metric"]) for t in broken] == [("app/login", "fail_ratio")]
    assert run.verdict["exit_code"] == 99
    (failure,) = run.junit.iter("failure")
    assert failure.get("message", "").startswith("fail_ratio was 100 %")
    assert "1 of 2 thresholds broken (exit code 99)" in run.output
