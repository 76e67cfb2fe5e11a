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
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loadtests.journeys import included
from probes.model.load import load_config
from tests._support.paths import REPO
from tests._support.processes import Process, get, inject, wait_until
from tests._support.servers import free_port

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
    users: list[int]  # the user count, once a second (--csv-full-history)
    entries: list[dict[str, Any]]  # Locust's final statistics (--json-file; the CSV lags)
    seconds: float  # how long Locust ran, start to exit


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
    care: dict[str, Any],
    tmp: Path,
    *,
    users: int | None = None,
    seconds: int | None = None,
    classes: tuple[str, ...] = (),
    checks: Path | None = None,
    limit: float | None = None,
    extra: tuple[str, ...] = (),
) -> Run:
    """Run Locust headless; ``users`` and ``seconds`` become ``-u``, ``-r`` and ``-t`` when given
    (else checks.yaml's ``loadtest:`` section sets the load); ``checks`` replaces checks.yaml."""
    prefix = tmp / "run"
    load: list[str] = []
    if users is not None:
        load += ["--users", str(users), "--spawn-rate", str(users)]
    if seconds is not None:
        load += ["--run-time", f"{seconds}s"]
    environ = dict(care["environ"])
    if checks is not None:
        environ["CAREWATCH_CHECKS"] = str(checks)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            *load,
            "--stop-timeout",
            "2",
            "--csv",
            str(prefix),
            "--csv-full-history",
            "--json-file",
            str(tmp / "stats"),
            "--thresholds-json",
            str(tmp / "verdict.json"),
            "--thresholds-junit",
            str(tmp / "junit.xml"),
            "--only-summary",
            *extra,
            *classes,
        ],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=(limit if limit is not None else seconds or 0) + MARGIN_SECONDS,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    with open(f"{prefix}_stats.csv", newline="") as file:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(file)}
    with open(f"{prefix}_failures.csv", newline="") as file:
        failures = list(csv.DictReader(file))
    with open(f"{prefix}_stats_history.csv", newline="") as file:
        users_seen = [int(row["User Count"]) for row in csv.DictReader(file)]
    verdict = json.loads((tmp / "verdict.json").read_text())
    junit = ET.parse(tmp / "junit.xml").getroot()
    entries = json.loads((tmp / "stats.json").read_text())
    return Run(
        done.returncode, output, stats, failures, verdict, junit, users_seen, entries, elapsed
    )


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


# --- the load, from the top-level loadtest: section -------------------------------------------


def checks_with(tmp: Path, loadtest: str) -> Path:
    """The demo checks.yaml with a top-level ``loadtest:`` section (YAML flow style) added."""
    path = tmp / "checks.yaml"
    text = (REPO / "checks.yaml").read_text(encoding="utf-8")
    path.write_text(f"{text}\nloadtest: {loadtest}\n", encoding="utf-8")
    return path


def test_stages_shape_the_load_and_end_the_run(clean: dict[str, Any], tmp_path: Path) -> None:
    checks = checks_with(
        tmp_path, "{stages: [{duration: 2s, users: 2}, {duration: 2s, users: 4, spawn_rate: 4}]}"
    )
    run = locust(clean, tmp_path, checks=checks, classes=("app/login",), limit=4)  # no -u, -t
    assert run.code == 0, run.output
    assert "Shape test stopping" in run.output
    assert run.seconds < 4 + 10, run.output  # the stages' 4 s, Locust's start and stop
    ticks = re.findall(r"Shape test updating to (\d+) users at ([\d.]+) spawn rate", run.output)
    assert ticks == [("2", "2.00"), ("4", "4.00")], run.output  # each stage in turn, then stop
    assert "(4 total users)" in run.output, run.output
    assert max(run.users) <= 4, run.users


def test_load_settings_are_the_defaults_of_u_r_t(clean: dict[str, Any], tmp_path: Path) -> None:
    checks = checks_with(tmp_path, "{users: 3, spawn_rate: 3, run_time: 3s}")
    run = locust(clean, tmp_path, checks=checks, classes=("app/login",), limit=3)
    assert run.code == 0, run.output
    assert "Run time limit set to 3 seconds" in run.output
    assert 'All users spawned: {"app/login": 3} (3 total users)' in run.output
    wins = tmp_path / "wins"
    wins.mkdir()
    run = locust(clean, wins, users=1, seconds=1, checks=checks, classes=("app/login",))
    assert run.code == 0, run.output
    assert 'All users spawned: {"app/login": 1} (1 total users)' in run.output  # -u 1 wins
    assert "Run time limit set to 1 seconds" in run.output


def test_global_thresholds_count_steps_only(clean: dict[str, Any], tmp_path: Path) -> None:
    """One step of two fails in every journey run: the global fail_ratio is failed step
    requests over step requests (about 1/2), not Locust's Aggregated (about 2/3)."""
    inject(clean["address"], channel="app", mode="error", status=503, path="/app/v1/account")
    checks = checks_with(tmp_path, '{thresholds: ["fail_ratio < 60%", "rps > 0"]}')
    run = locust(clean, tmp_path, users=2, seconds=3, checks=checks, classes=("app/login",))
    steps = [e for e in run.entries if e["method"] != "JOURNEY"]
    journeys = [e for e in run.entries if e["method"] == "JOURNEY"]
    assert {e["name"] for e in steps} == {"app/login/login", "app/login/account"}
    assert journeys, run.output  # counted by Locust's Aggregated row, not by steps (all)
    requests = sum(e["num_requests"] for e in steps)
    failures = sum(e["num_failures"] for e in steps)
    total = {t["metric"]: t for t in run.verdict["thresholds"] if t["entry"] == "steps (all)"}
    assert total["fail_ratio"]["observed"] == pytest.approx(failures / requests)
    assert total["fail_ratio"]["passed"] is True, run.output  # Aggregated's is about 2/3
    # Over the whole run, from its first request to its last: not from Locust's start-up.
    span = max(e["last_request_timestamp"] for e in steps) - min(e["start_time"] for e in steps)
    assert total["rps"]["observed"] == pytest.approx(requests / span, rel=0.1)
    assert run.verdict["total_entry"]["name"] == "steps (all)"
    assert "steps (all): every step's requests together" in run.output
    assert run.code == 99, run.output  # app/login's own fail_ratio threshold broke


def test_with_worker_processes_thresholds_are_checked_once_on_the_master(
    clean: dict[str, Any], tmp_path: Path
) -> None:
    journeys = included(load_config(REPO / "checks.yaml", environ={}), location="local")
    run = locust(clean, tmp_path, users=len(journeys), seconds=5, extra=("--processes", "2"))
    assert run.code == 0, run.output
    assert run.verdict["passed"] is True
    entries = [t["entry"] for t in run.verdict["thresholds"]]
    assert sorted(set(entries)) == sorted(j.id for j in journeys)
    assert len(entries) == 2 * len(journeys)  # each journey's two SLO thresholds, once
    assert run.output.count("thresholds held") == 1, run.output  # one summary: the master's
    assert all(int(run.stats[("JOURNEY", j.id)]["Request Count"]) > 0 for j in journeys)
