"""The configs the alert tests generate from: the demo's checks.yaml, whose output is
committed under alerts/generated/, and tests/fixtures/alerts/two-locations.yaml (two locations,
a journey that may not page, a 28-day period, every kind of receiver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import generate, write
from probes import Config, load_config
from tests._support.paths import FIXTURES, REPO


@pytest.fixture(scope="session")
def demo() -> Config:
    return load_config(str(REPO / "checks.yaml"))


@pytest.fixture(scope="session")
def two_locations() -> Config:
    return load_config(str(FIXTURES / "alerts" / "two-locations.yaml"))


@pytest.fixture(scope="session")
def generated(two_locations: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of two-locations.yaml, written to a folder of their own."""
    out = tmp_path_factory.mktemp("two-locations")
    write(generate(two_locations), out)
    return out


@pytest.fixture(params=["committed", "two-locations"])
def output(request: pytest.FixtureRequest, generated: Path) -> Path:
    """Each folder of generated files: the committed demo's, and two-locations.yaml's."""
    return REPO / "alerts" / "generated" if request.param == "committed" else generated
