"""The shape of the system, enforced: the model imports no engine, and probes/ never gevent.

Each check runs in a fresh interpreter, so what the test process already imported cannot hide
an import the model would pull in.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

ENGINES = ("aiohttp", "locust", "gevent")
#: The modules a second engine (Locust, a k6 exporter) and the generators may import.
MODEL_MODULES = (
    "probes",
    "probes.config",
    "probes.model",
    "probes.steps",
    "probes.expect",
    "probes.interpret",
    "probes.templating",
    "probes.results",
    "probes.metrics",
    "probes.hours",
    "probes.experience",
    "probes.callbacks",
    "probes.chat",
    "probes.thresholds",
)


def imported_by(module: str) -> set[str]:
    code = (
        f"import sys, {module}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("module", MODEL_MODULES)
def test_the_model_imports_no_engine(module: str) -> None:
    assert imported_by(module).isdisjoint(ENGINES)


def test_the_asyncio_engine_never_imports_gevent_or_locust() -> None:
    loaded = imported_by("probes.service")
    assert "aiohttp" in loaded  # the check can see an engine when there is one
    assert loaded.isdisjoint({"gevent", "locust"})
