"""The configs the dashboard tests generate from: the demo's checks.yaml, whose dashboards are
committed under dashboards/generated/, and tests/fixtures/alerts/two-locations.yaml."""

from __future__ import annotations

import pytest

from probes import Config, load_config
from tests._support.paths import FIXTURES, REPO


@pytest.fixture(scope="session")
def demo() -> Config:
    return load_config(str(REPO / "checks.yaml"))


@pytest.fixture(scope="session")
def two_locations() -> Config:
    return load_config(str(FIXTURES / "alerts" / "two-locations.yaml"))
