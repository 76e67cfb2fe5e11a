"""The generated alerts end to end, with the real tools (issue 10, "Proof with the real tools").

Real processes on loopback: two democares, an exporter probing each (``--location paris`` and
``--location lyon``), Prometheus loaded with the rules that ``python -m alerts`` generates from
the checks.yaml below, Alertmanager with the configuration it generates, and a pager (an aiohttp
webhook receiver) that records each notification and when it came: each team's pages on
``/page``, its tickets on ``/ticket``, and what no team route takes (the prober's own alerts,
which have no team) on ``/default``. Probes, scrapes and evaluations run every second.

The scenarios share one stack and run in this order, each from a quiet stack (no alert pending
or firing): a blip pages nobody; a hard outage of the app channel at both locations pages once,
with ``ChannelDown``, and its repair sends the resolved notification; the same outage at one
location is a ``JourneyDegraded`` ticket; the closed voice channel never alerted; and killing
an exporter pages ``ProberDown`` with that location's other alerts inhibited. Each prints its
figures (detection times, notification counts), for the issue's closing note.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from democare.pager import Notification, Pager
from democare.stack import (
    Service,
    Stack,
    prometheus_config,
    start_alertmanager,
    start_democare,
    start_exporter,
    start_prometheus,
    write_yaml,
)
from tests._support.paths import REPO
from tests._support.processes import get, inject, wait_until
from tests._support.scrape import samples
from tests._support.servers import free_port
from tests._support.stack import (
    alertmanager_alerts,
    names,
    prometheus_alerts,
    query,
    rule_groups,
)
from tests._support.tools import require_tools

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

LOCATIONS: Final = ("paris", "lyon")
JOURNEYS: Final = ("login", "account")
JOB: Final = "carewatch"
EVERY_SECOND: Final = 1.0
#: Alertmanager's grouping, from checks.yaml below. group_wait must cover the second or two
#: between the first location and the last, and the first journey and the last, seeing the
#: outage: within it, ChannelDown arrives and inhibits the journey alerts before anything is
#: sent. In production it is 30 s.
GROUP_WAIT: Final = 5.0
GROUP_INTERVAL: Final = 5.0
FAILED_RUNS: Final = 2
RUNBOOK: Final = "https://runbooks.example.com/app"
DASHBOARDS: Final = "http://127.0.0.1:3000"
#: Bounds on every wait, generous for a loaded 2-core machine; the figures printed are the
#: times measured, not these.
START_SECONDS: Final = 30.0
NOTIFY_SECONDS: Final = 45.0
QUIET_SECONDS: Final = 45.0
#: How long "nothing else came" is watched for: a whole group_interval, and the evaluations
#: that could still be on their way.
SETTLE_SECONDS: Final = GROUP_INTERVAL + 4 * EVERY_SECOND
GENERATOR_SECONDS: Final = 60.0
#: Scrapes of healthy runs before the first scenario (see the fixture).
WARM_SCRAPES: Final = 15
WARM_QUERY: Final = (
    'count_over_time(carewatch_journey_runs_total{channel="app",result="success"}[1m]) '
    f">= {WARM_SCRAPES}"
)
#: A blip is spent by the next run or two.
BLIP_SECONDS: Final = 10.0

CHECKS: Final = """
defaults:
  interval: 1s
  timeout: 1s
  retries: 1
  # Objectives so loose that no burn-rate alert can fire here: in a Prometheus a minute old
  # every window (5m to 30d) holds that minute only, so one failed run in twenty would burn a
  # real budget at 14.4x. The burn rates are proven by the generated promtool tests.
  slo: {{availability: 1, latency_threshold: 1s, latency_target: 1}}
variables:
  base: ${{env:DEMOCARE_URL:-http://127.0.0.1:9}}
locations:
  paris:
  lyon:
alerting:
  dashboard_url: {dashboards}
  job: {job}
  group_wait: {group_wait:g}s
  group_interval: {group_interval:g}s
  repeat_interval: 1h
  receivers:
    pager: {{webhook: {{url: "{pager}/page"}}}}
    queue: {{webhook: {{url: "{pager}/ticket"}}}}
    oncall: {{webhook: {{url: "{pager}/default"}}}}
  teams:
    mobile-app: {{page: pager, ticket: queue}}
    contact-center: {{page: pager, ticket: queue}}
  default_receiver: oncall
channels:
  - name: app
    kind: app
    team: mobile-app
    runbook_url: {runbook}
    journeys:
      - name: login
        steps:
          - &login
            name: login
            method: POST
            url: ${{base}}/app/v1/login
            json: {{username: demo@carewatch.example, password: demo-password}}
            expect: {{status: 200}}
            capture: {{token: {{json: $.token}}}}
      - name: account
        steps:
          - *login
          - name: account
            url: ${{base}}/app/v1/account
            headers: {{Authorization: "Bearer ${{token}}"}}
            expect: {{status: 200}}
  - name: voice
    kind: voice
    team: contact-center
    runbook_url: https://runbooks.example.com/voice
    hours: {{tz: UTC, weekly: {{{closed_day}: "10:00-11:00"}}}}   # not today, nor tomorrow
    journeys:
      - name: callback
        steps:
          - name: request
            method: POST
            url: ${{base}}/voice/v1/callbacks
            json: {{msisdn: "+33600000001"}}
            expect: {{status: 201}}
"""
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTAGE: Final = {"channel": "app", "mode": "error", "status": 503}
#: RFC 3339 with nanoseconds, as Alertmanager writes startsAt.
NANOSECONDS: Final = re.compile(r"(\.\d{6})\d*")


@dataclass
class Harness:
    """The running stack, and where each part of it answers."""

    stack: Stack
    pager: Pager
    cares: dict[str, Service]
    exporters: dict[str, Service]
    prometheus: Service
    alertmanager: Service
    started: float
    """``time.monotonic()`` when the stack was up."""

    def since(self, start: int) -> list[Notification]:
        """The notifications that came after the first ``start``."""
        return self.pager.notifications()[start:]


def closed_day(now: datetime) -> str:
    """A weekday three days from ``now``: the voice channel is closed today and tomorrow."""
    return DAYS[(now + timedelta(days=3)).weekday()]


def generate(checks: Path, out: Path) -> None:
    """The rules, Alertmanager configuration and templates of ``checks``, by the generator's
    command line (ALERTS_SPEC: ``python -m alerts --config X --out DIR``)."""
    done = subprocess.run(
        [sys.executable, "-m", "alerts", "--config", str(checks), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=GENERATOR_SECONDS,
    )
    if done.returncode != 0:
        pytest.fail(f"python -m alerts failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    for generated in ("rules.yaml", "alertmanager.yaml"):
        assert (out / generated).is_file(), f"python -m alerts wrote no {generated}"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    require_tools()
    folder = tmp_path_factory.mktemp("alerts-e2e")
    with Pager() as pager, Stack(folder / "stack") as stack:
        checks = folder / "checks.yaml"
        checks.write_text(
            textwrap.dedent(
                CHECKS.format(
                    dashboards=DASHBOARDS,
                    job=JOB,
                    group_wait=GROUP_WAIT,
                    group_interval=GROUP_INTERVAL,
                    pager=pager.url,
                    runbook=RUNBOOK,
                    closed_day=closed_day(datetime.now(UTC)),
                )
            )
        )
        generate(checks, folder / "generated")
        cares = {
            place: start_democare(stack, f"democare-{place}", port=free_port())
            for place in LOCATIONS
        }
        exporters = {
            place: start_exporter(
                stack,
                f"exporter-{place}",
                config=checks,
                port=free_port(),
                location=place,
                env={"DEMOCARE_URL": cares[place].url},
            )
            for place in LOCATIONS
        }
        alertmanager = start_alertmanager(
            stack, config=folder / "generated" / "alertmanager.yaml", port=free_port()
        )
        config = prometheus_config(
            job=JOB,
            targets=[exporters[place].address for place in LOCATIONS],
            rule_files=[folder / "generated" / "rules.yaml"],
            alertmanager=alertmanager.address,
            scrape_interval=EVERY_SECOND,
            evaluation_interval=EVERY_SECOND,
        )
        prometheus = start_prometheus(
            stack, config=write_yaml(folder / "prometheus.yml", config), port=free_port()
        )
        harness = Harness(
            stack, pager, cares, exporters, prometheus, alertmanager, started=time.monotonic()
        )
        assert rule_groups(prometheus.url), "Prometheus loaded no rule group"
        wait_until(
            lambda: len(query(prometheus.url, f'up{{job="{JOB}"}} == 1')) == len(LOCATIONS),
            START_SECONDS,
            "Prometheus scraping both exporters",
        )
        wait_until(
            lambda: (
                len(query(prometheus.url, 'carewatch_journey_up{channel="app"} == 1'))
                == len(LOCATIONS) * len(JOURNEYS)
            ),
            START_SECONDS,
            "every app journey up at both locations, in Prometheus",
        )
        # History first: in a Prometheus seconds old, the burn-rate windows hold almost no
        # success, so one failed run would read as the whole budget burning.
        wait_until(
            lambda: len(query(prometheus.url, WARM_QUERY)) == len(LOCATIONS) * len(JOURNEYS),
            START_SECONDS + WARM_SCRAPES,
            f"{WARM_SCRAPES} scrapes of every app journey's successes",
        )
        yield harness


def report(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    """Print figures past pytest's capture, so that every run shows them."""
    with capsys.disabled():
        for line in lines:
            print(f"\n[alerts end to end] {line}", end="")
        print()


def quiet(harness: Harness) -> int:
    """Wait until no alert is pending or firing anywhere and notifications have stopped
    coming; the number of notifications so far."""

    def calm() -> bool:
        if prometheus_alerts(harness.prometheus.url) or alertmanager_alerts(
            harness.alertmanager.url
        ):
            return False
        received = harness.pager.notifications()
        return not received or time.monotonic() - received[-1].at > GROUP_INTERVAL

    wait_until(calm, QUIET_SECONDS, "a quiet stack: no alert pending or firing")
    return len(harness.pager.notifications())


def first_after(
    harness: Harness, start: int, what: str, *, status: str | None = None
) -> Notification:
    """The first notification after the first ``start`` (with ``status``, if given)."""
    notification: Notification = wait_until(
        lambda: next((n for n in harness.since(start) if status in (None, n.status)), None),
        NOTIFY_SECONDS,
        what,
    )
    return notification


def assert_recovered(before: Sequence[Notification], after: Sequence[Notification]) -> None:
    """After a repair: nothing fired that had not been notified before it (a page for a
    journey that was muted, say), and the last notification resolves everything. Between
    them, Alertmanager may tell of alerts resolved one by one, at each group_interval."""
    known = {_identity(a) for n in before for a in n.alerts if a["status"] == "firing"}
    new = [
        dict(a["labels"])
        for n in after
        for a in n.alerts
        if a["status"] == "firing" and _identity(a) not in known
    ]
    assert new == [], f"fired during the repair: {new}; notifications: {counted(after)}"
    assert {n.path for n in after} == {n.path for n in before}, counted(after)
    assert (after[-1].status, after[-1].alertnames("firing")) == ("resolved", []), counted(after)


def _identity(alert: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset(alert["labels"].items())


def settle(harness: Harness, start: int) -> list[Notification]:
    """Everything that came since the first ``start``, once ``SETTLE_SECONDS`` passed without
    more (counted from now, or from the last one to come)."""
    called = time.monotonic()
    while True:
        received = harness.since(start)
        last = max(called, received[-1].at) if received else called
        wait = last + SETTLE_SECONDS - time.monotonic()
        if wait <= 0:
            return received
        time.sleep(wait)


def break_app(harness: Harness, places: Sequence[str], **fault: Any) -> None:
    for place in places:
        inject(harness.cares[place].address, **(fault or OUTAGE))


def repair(harness: Harness, places: Sequence[str]) -> None:
    for place in places:
        status, body = get(f"{harness.cares[place].url}/_faults", method="DELETE")
        assert status == 200, body


def faults_left(harness: Harness, place: str) -> list[Any]:
    faults: list[Any] = json.loads(get(f"{harness.cares[place].url}/_faults")[1])["faults"]
    return faults


def metric(harness: Harness, place: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``, at ``place``'s exporter."""
    scraped = samples(get(f"{harness.exporters[place].url}/metrics")[1])
    wanted = set(labels.items())
    return sum(v for (sample, found), v in scraped.items() if sample == name and wanted <= found)


def started_at(alert: Mapping[str, Any]) -> float:
    """An alert's ``startsAt`` as a Unix time."""
    text = NANOSECONDS.sub(r"\1", str(alert["startsAt"])).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def ever_alerted(harness: Harness, selector: str, seconds: float) -> list[Mapping[str, Any]]:
    """The ALERTS series (pending or firing) matching ``selector`` in the last ``seconds``."""
    window = max(1, math.ceil(seconds))
    return query(harness.prometheus.url, f"count_over_time(ALERTS{selector}[{window}s])")


def counted(notifications: Sequence[Notification]) -> str:
    kinds = [f"{n.path} {n.status} {'+'.join(n.alertnames()) or '-'}" for n in notifications]
    return f"{len(notifications)} ({'; '.join(kinds) or 'none'})"


# --- the scenarios, in order ------------------------------------------------------------------


def test_one_transient_failure_notifies_nobody(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    start = quiet(harness)
    began = time.monotonic()
    retries = {p: metric(harness, p, "carewatch_journey_retries_total") for p in LOCATIONS}
    failures = {
        p: metric(harness, p, "carewatch_journey_runs_total", journey="account", result="failure")
        for p in LOCATIONS
    }
    # One failed attempt, which the retry absorbs...
    blip = {"path": "/app/v1/login", "count": 1}
    break_app(harness, LOCATIONS, **OUTAGE, **blip)
    for place in LOCATIONS:
        wait_until(
            lambda p=place: not faults_left(harness, p), BLIP_SECONDS, "the blip to be spent"
        )
    # ...then one failed run (both attempts of one account run), below failed_runs.
    break_app(harness, LOCATIONS, **OUTAGE, path="/app/v1/account", count=FAILED_RUNS)
    for place in LOCATIONS:
        wait_until(
            lambda p=place: (
                metric(
                    harness, p, "carewatch_journey_runs_total", journey="account", result="failure"
                )
                == failures[p] + 1
                and metric(harness, p, "carewatch_journey_up", journey="account") == 1
            ),
            BLIP_SECONDS,
            f"one failed account run at {place}, then a good one",
        )
    received = settle(harness, start)

    assert received == []
    assert ever_alerted(harness, "", time.monotonic() - began) == []
    for place in LOCATIONS:
        assert metric(harness, place, "carewatch_journey_retries_total") >= retries[place] + 2
        assert (
            metric(
                harness, place, "carewatch_journey_runs_total", journey="login", result="failure"
            )
            == 0
        )
    report(
        capsys,
        "blip: at each location one failed attempt absorbed by the retry and one failed run "
        f"(failed_runs is {FAILED_RUNS}): {len(received)} notifications, no alert even pending, "
        f"over {time.monotonic() - began:.1f} s",
    )


def test_a_hard_outage_at_every_location_pages_once_with_channel_down_then_resolves(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    start = quiet(harness)
    broken, broken_wall = time.monotonic(), time.time()
    break_app(harness, LOCATIONS)
    page = first_after(harness, start, "the ChannelDown page")
    detection = page.at - broken
    received = settle(harness, start)

    assert [(n.path, n.status) for n in received] == [("/page", "firing")], counted(received)
    [alert] = page.alerts
    labels, annotations = alert["labels"], alert["annotations"]
    assert labels["alertname"] == "ChannelDown"
    assert (labels["channel"], labels["team"], labels["severity"]) == ("app", "mobile-app", "page")
    assert "location" not in labels
    why = annotations["description"]
    assert "login" in why, why
    assert "http_status" in why, why
    assert "expected status 200, got 503" in why, why
    assert annotations["runbook_url"] == RUNBOOK
    assert annotations["dashboard_url"].startswith(DASHBOARDS)
    held = alertmanager_alerts(harness.alertmanager.url)
    inhibited = [a for a in held if a["status"]["inhibitedBy"]]
    assert "JourneyDown" in names(inhibited)
    assert [a["labels"]["alertname"] for a in held if not a["status"]["inhibitedBy"]] == [
        "ChannelDown"
    ]
    fired = started_at(alert) - broken_wall

    repaired = time.monotonic()
    repair(harness, LOCATIONS)
    resolved = first_after(harness, start + 1, "the resolved page", status="resolved")
    recovery = resolved.at - repaired
    after = settle(harness, start + 1)

    assert_recovered(received, after)
    assert "ChannelDown" in resolved.alertnames("resolved")
    report(
        capsys,
        f"hard outage of app at both locations: ChannelDown page {detection:.1f} s after the "
        f"fault (Prometheus fired it at +{fired:.1f} s; group_wait is {GROUP_WAIT:g} s); "
        f"{len(received)} notification; inhibited in Alertmanager: {', '.join(names(inhibited))}",
        f"the page says: {why}",
        f"repair: resolved notification {recovery:.1f} s after the fault was lifted "
        f"({', '.join(resolved.alertnames('resolved'))}); notifications in all: "
        f"{counted(received + after)}",
    )


def test_an_outage_at_one_location_is_a_journey_degraded_ticket_not_a_page(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    start = quiet(harness)
    broken = time.monotonic()
    break_app(harness, ["lyon"])
    ticket = first_after(harness, start, "the JourneyDegraded ticket")
    detection = ticket.at - broken
    received = settle(harness, start)

    assert {(n.path, n.status) for n in received} == {("/ticket", "firing")}, counted(received)
    alerts = [alert for n in received for alert in n.alerts]
    assert {a["labels"]["alertname"] for a in alerts} == {"JourneyDegraded"}
    assert {a["labels"]["location"] for a in alerts} == {"lyon"}
    assert {a["labels"]["severity"] for a in alerts} == {"ticket"}
    assert {a["labels"]["journey"] for a in alerts} == set(JOURNEYS)

    repaired = time.monotonic()
    repair(harness, ["lyon"])
    resolved = first_after(harness, start + len(received), "the resolved ticket", status="resolved")
    recovery = resolved.at - repaired
    after = settle(harness, start + len(received))
    assert_recovered(received, after)
    report(
        capsys,
        f"outage of app at lyon only: JourneyDegraded ticket {detection:.1f} s after the fault, "
        f"no page; resolved {recovery:.1f} s after the repair; notifications in all: "
        f"{counted(received + after)}",
    )


def test_a_closed_channel_never_alerted(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    for place in LOCATIONS:
        assert metric(harness, place, "carewatch_channel_open", channel="voice") == 0
        runs = metric(harness, place, "carewatch_journey_runs_total", channel="voice")
        assert runs == 0
    lifetime = time.monotonic() - harness.started + START_SECONDS
    assert ever_alerted(harness, '{channel="voice"}', lifetime) == []
    mentions = [
        n
        for n in harness.pager.notifications()
        for a in n.alerts
        if a["labels"].get("channel") == "voice"
    ]
    assert mentions == []
    report(capsys, "voice, closed all along: no alert pending or firing, no notification")


def test_a_dead_exporter_pages_prober_down_and_mutes_its_location(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    start = quiet(harness)
    killed = time.monotonic()
    harness.stack.stop("exporter-lyon")
    page = first_after(harness, start, "the ProberDown page")
    detection = page.at - killed
    received = settle(harness, start)

    # The prober's alerts have no team, so they take the root route: alerting.default_receiver.
    assert [(n.path, n.status) for n in received] == [("/default", "firing")], counted(received)
    [alert] = page.alerts
    assert alert["labels"]["alertname"] == "ProberDown"
    assert alert["labels"]["location"] == "lyon"
    assert alert["labels"]["severity"] == "page"
    held = alertmanager_alerts(harness.alertmanager.url)
    muted = [
        a
        for a in held
        if a["labels"].get("location") == "lyon" and a["labels"]["alertname"] != "ProberDown"
    ]
    assert all(a["status"]["inhibitedBy"] for a in muted), muted
    report(
        capsys,
        f"exporter at lyon killed: ProberDown page {detection:.1f} s later; "
        f"{len(received)} notification; lyon's other alerts, inhibited: "
        f"{', '.join(names(muted)) or 'none fired'}",
    )
