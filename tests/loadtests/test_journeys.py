"""Which journeys a load test runs, and the import rule that keeps gevent out of the rest.

``loadtests.journeys`` is pure (no locust, no gevent), so it is tested here, in process. The
modules that run inside Locust are checked in a fresh interpreter: importing them must import
locust before anything else can take the standard library unpatched.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from loadtests.journeys import excluded, included, tags, unsupported
from probes.model.load import load_config, parse_config
from tests._support.paths import REPO

EXCLUDED_DEMO = {
    "sms/text-care-number": "await step 'reply': callback round trips (SMS replies, push "
    "receipts, inbound email) are not run by the Locust engine yet",
    "push/alert-delivered": "await step 'receipt': callback round trips (SMS replies, push "
    "receipts, inbound email) are not run by the Locust engine yet",
    "email/write-to-care": "SMTP step 'send': SMTP steps are not run by the Locust engine yet",
}


def test_the_demo_journeys_left_out_are_named_with_a_reason() -> None:
    config = load_config(REPO / "checks.yaml", environ={})
    assert dict(excluded(config, location="local")) == EXCLUDED_DEMO
    assert [j.id for j in included(config, location="local")] == [
        j.id for j in config.journeys if j.id not in EXCLUDED_DEMO
    ]


CHECKS = """
locations: {local: null, paris: null}
channels:
  - name: ops
    kind: web
    team: t
    journeys:
      - name: http-only
        steps: [{name: a, url: "http://127.0.0.1:1/"}]
      - name: dns
        steps: [{name: resolve, dns: {name: care.example.com}}]
      - name: tcp-cleanup
        steps: [{name: a, url: "http://127.0.0.1:1/"}]
        finally: [{name: port, tcp: {address: "127.0.0.1:5060"}}]
      - name: mtls
        steps: [{name: a, url: "https://127.0.0.1:1/", tls: {insecure: true}}]
      - name: paris-only
        locations: [paris]
        steps: [{name: a, url: "http://127.0.0.1:1/"}]
"""


def test_each_reason_for_leaving_a_journey_out(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config(CHECKS), environ={})
    assert excluded(config, location="local") == [
        ("ops/dns", "DNS step 'resolve': DNS steps are not run by the Locust engine yet"),
        ("ops/tcp-cleanup", "TCP step 'port': TCP steps are not run by the Locust engine yet"),
        ("ops/mtls", "HTTP step 'a': tls options are not applied by the Locust engine yet"),
        ("ops/paris-only", "runs only at paris; this load test runs as local"),
    ]
    assert [j.id for j in included(config, location="paris")] == ["ops/http-only", "ops/paris-only"]


def test_a_step_the_engine_runs_has_no_reason() -> None:
    config = parse_config(CHECKS, environ={})
    assert unsupported(config.journeys[0].steps[0]) is None


def test_tags_are_the_channel_and_its_kind() -> None:
    config = parse_config(CHECKS, environ={})
    assert tags(config.journeys[0], "web") == ("ops", "web")


def loaded_after(module: str) -> list[str]:
    """Top-level modules in the order a fresh interpreter first imported them for ``module``."""
    code = (
        f"import sys, {module}\n"
        "print(' '.join(dict.fromkeys(m.split('.')[0] for m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("module", ["loadtests", "loadtests.journeys"])
def test_the_pure_modules_import_no_engine(module: str) -> None:
    assert set(loaded_after(module)).isdisjoint({"locust", "gevent", "aiohttp"})


@pytest.mark.parametrize("module", ["loadtests._interpreter", "loadtests._users"])
def test_the_locust_side_imports_locust_first_and_never_the_asyncio_engine(module: str) -> None:
    loaded = loaded_after(module)
    assert "aiohttp" not in loaded
    assert loaded.index("locust") < loaded.index("probes"), loaded  # gevent patches first
