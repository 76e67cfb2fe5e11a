"""The configs the dashboard tests generate from: the demo's checks.yaml, whose dashboards are
committed under dashboards/generated/, and tests/fixtures/alerts/two-locations.yaml; and the
running stack of the no-dead-panels test (tests/dashboards/test_live.py).

``live`` runs democare, an exporter of the repository's checks.yaml (made quick: every journey
every 2 s) and Prometheus, scraping and evaluating every second, loaded with the recording and
alert rules that ``alerts.generate`` makes from the same config. It yields once every journey
is up and Prometheus holds ``WARM_SCRAPES`` scrapes of each, so that rates, quantiles and the
recording rules have data; the whole stack stops after the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from alerts import generate, write
from democare.launch import democare_command, environment
from democare.stack import (
    HOST,
    PROMETHEUS,
    Stack,
    prometheus_config,
    start_exporter,
    start_prometheus,
    write_yaml,
)
from probes import Config, load_config
from tests._support.live import Live, quick
from tests._support.paths import FIXTURES, REPO
from tests._support.processes import wait_until
from tests._support.servers import free_port
from tests._support.stack import query
from tests._support.tools import tool

#: How often every journey runs: the shortest that the slowest journey of checks.yaml (the
#: chat hand-over, six steps) passes in, on a loaded 2-core machine.
INTERVAL_SECONDS: Final = 2.0
SCRAPE_SECONDS: Final = 1.0
#: Scrapes of every journey's successful runs before the panels are read: enough for a rate
#: over the shortest $__rate_interval (4 scrapes) to hold several runs.
WARM_SCRAPES: Final = 30
START_SECONDS: Final = 30.0
SMTP_CA: Final = "smtp-ca.pem"


@pytest.fixture(scope="session")
def demo() -> Config:
    return load_config(str(REPO / "checks.yaml"))


@pytest.fixture(scope="session")
def two_locations() -> Config:
    return load_config(str(FIXTURES / "alerts" / "two-locations.yaml"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tool(PROMETHEUS)
    folder = tmp_path_factory.mktemp("dashboards-live")
    care_port, smtp_port, exporter_port = free_port(), free_port(), free_port()
    care, exporter = f"{HOST}:{care_port}", f"{HOST}:{exporter_port}"
    env = environment(care, f"{HOST}:{smtp_port}", smtp_ca=folder / SMTP_CA)
    checks = folder / "checks.yaml"
    checks.write_text(quick((REPO / "checks.yaml").read_text(), INTERVAL_SECONDS))
    config = load_config(str(checks), environ=env)
    write(generate(config), folder / "generated")
    scraping = prometheus_config(
        job=config.alerting.job,
        targets=[exporter],
        rule_files=[folder / "generated" / "rules.yaml"],
        alertmanager=f"{HOST}:{free_port()}",
        scrape_interval=SCRAPE_SECONDS,
        evaluation_interval=SCRAPE_SECONDS,
    )
    del scraping["alerting"]  # the panels read rules, not notifications
    with Stack(folder / "stack", env=env) as stack:
        stack.start(
            "democare",
            democare_command(
                care, f"{HOST}:{smtp_port}", smtp_ca=folder / SMTP_CA, exporter=exporter
            ),
            port=care_port,
            ready="/healthz",
        )
        agent = start_exporter(
            stack,
            "exporter",
            config=checks,
            port=exporter_port,
            location=config.defaults.location,
        )
        prometheus = start_prometheus(
            stack, config=write_yaml(folder / "prometheus.yml", scraping), port=free_port()
        )
        journeys = len(config.journeys)
        wait_until(
            lambda: len(query(prometheus.url, "carewatch_journey_up == 1")) == journeys,
            START_SECONDS,
            f"all {journeys} journeys up, in Prometheus (exporter log: {agent.log})",
        )
        warm = (
            "count_over_time(carewatch_journey_runs_total"
            f'{{result="success"}}[5m]) >= {WARM_SCRAPES}'
        )
        wait_until(
            lambda: len(query(prometheus.url, warm)) == journeys,
            START_SECONDS + WARM_SCRAPES * SCRAPE_SECONDS,
            f"{WARM_SCRAPES} scrapes of every journey's successful runs",
        )
        yield Live(config, prometheus.url, care, agent.url, SCRAPE_SECONDS)
