"""One journey model, two engines: the same verdict from both, whatever state democare is in.

For each democare state (healthy, or one fault injected), the asyncio engine (``Engine.run``, in
this process) and the Locust engine (``loadtests._interpreter``, in a subprocess running
``locust_once.py``, so gevent never patches this process) run the same journeys. They must agree
on pass or fail, on the failing step and its reason, on every step's outcome (a ``finally`` step
skipped for want of a capture included), and on the number of attempts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probes.engine.engine import Engine
from probes.model.load import load_config
from tests._support.paths import REPO
from tests._support.processes import Process, get, inject, wait_until
from tests._support.servers import free_port

pytestmark = pytest.mark.e2e

ONCE = Path(__file__).parent / "locust_once.py"
START_SECONDS = 15.0
RUN_SECONDS = 60.0

#: Journeys that break in ways the demo checks.yaml cannot show quickly: short timeouts, a
#: failing ``finally`` step, a capture that finds nothing, a port nobody listens on.
EDGES = """
defaults: {{timeout: 1s, retries: 0, location: ci}}
variables: {{base: "http://{care}", ws: "ws://{care}", closed: "http://127.0.0.1:{closed}"}}
channels:
  - name: edge
    kind: app
    team: t
    journeys:
      - name: slow-login
        steps:
          - name: login
            method: POST
            url: ${{base}}/app/v1/login
            json: {{username: demo@carewatch.example, password: demo-password}}
      - name: silent-chat
        steps:
          - name: ask
            websocket: ${{ws}}/chat/v1/ws
            subprotocols: [carechat.v1]
            conversation:
              - receive: {{within: 500ms, json: [{{path: $.type, equals: greeting}}]}}
              - send: {{json: {{type: message, text: "roaming charges"}}}}
              - receive: {{within: 500ms, json: [{{path: $.type, equals: bot_reply}}]}}
      - name: cleanup-fails
        retries: 1
        steps:
          - name: search
            url: ${{base}}/help/v1/search?q=roaming
        finally:
          - name: stores
            url: ${{base}}/stores/v1/nearby?lat=48.85&lon=2.35
      - name: capture-missing
        steps:
          - name: nearby
            url: ${{base}}/stores/v1/nearby?lat=48.85&lon=2.35
            capture: {{store: {{json: $.nothing_here}}}}
          - name: store
            url: ${{base}}/stores/v1/${{store}}
      - name: nobody-listens
        steps:
          - name: connect
            url: ${{closed}}/x
"""

DEMO_JOURNEYS = [
    "app/login",
    "help/search-article",
    "stores/nearest-store",
    "agent-console/ticket-reaches-agent",
    "chat/ask-bot",
    "chat/handover-to-callback",
    "voice/schedule-callback",
    "video/join-session",
]

#: (checks file, fault, journeys, what must fail: {journey: (step, reason)}). Every other
#: journey listed must pass. The expectations keep the comparison honest: two engines that both
#: ignored a fault would agree too.
STATES: list[tuple[str, dict[str, Any] | None, list[str], dict[str, tuple[str, str]]]] = [
    ("demo", None, DEMO_JOURNEYS, {}),
    (
        "demo",
        {"channel": "app", "mode": "error", "status": 503, "path": "/app/v1/account"},
        ["app/login", "agent-console/ticket-reaches-agent"],
        {"app/login": ("account", "http_status")},
    ),
    (
        "demo",
        {"channel": "app", "mode": "down"},
        ["app/login", "agent-console/ticket-reaches-agent", "chat/handover-to-callback"],
        {
            "app/login": ("login", "connect"),
            "agent-console/ticket-reaches-agent": ("login", "connect"),
            "chat/handover-to-callback": ("login", "connect"),
        },
    ),
    (
        "demo",
        {"channel": "self_service", "mode": "garbage"},
        ["help/search-article", "stores/nearest-store"],
        {"help/search-article": ("search", "assertion")},
    ),
    (
        "demo",
        {"channel": "video", "mode": "error", "status": 500, "path": "/video/v1/join"},
        ["video/join-session"],
        {"video/join-session": ("join", "http_status")},
    ),
    (
        "demo",
        {"channel": "agent", "mode": "error", "status": 403},
        ["agent-console/ticket-reaches-agent"],
        {"agent-console/ticket-reaches-agent": ("agent-sees-ticket", "http_status")},
    ),
    (
        "edges",
        {"channel": "app", "mode": "slow", "delay_ms": 2000},
        ["edge/slow-login"],
        {"edge/slow-login": ("login", "timeout")},
    ),
    (
        "edges",
        {"channel": "chat", "mode": "no_reply"},
        ["edge/silent-chat"],
        {"edge/silent-chat": ("ask", "timeout")},
    ),
    (
        "edges",
        {"channel": "locator", "mode": "error", "status": 502},
        ["edge/cleanup-fails", "edge/capture-missing", "edge/nobody-listens"],
        {
            "edge/cleanup-fails": ("stores", "http_status"),
            "edge/capture-missing": ("nearby", "http_status"),
            "edge/nobody-listens": ("connect", "connect"),
        },
    ),
    (
        "edges",
        None,
        ["edge/capture-missing"],
        {"edge/capture-missing": ("nearby", "capture")},
    ),
]


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """democare as a process, the checks files pointing at it, and the environment they read."""
    tmp = tmp_path_factory.mktemp("parity")
    address = f"127.0.0.1:{free_port()}"
    democare = Process(
        [sys.executable, "-m", "democare", "--listen", address, "--smtp-listen", "off"],
        tmp / "democare.log",
    )
    edges = tmp / "edges.yaml"
    edges.write_text(EDGES.format(care=address, closed=free_port()))
    environ = {
        **os.environ,
        "DEMOCARE_URL": f"http://{address}",
        "DEMOCARE_WS_URL": f"ws://{address}",
    }
    try:
        wait_until(lambda: get(f"http://{address}/healthz")[0] == 200, START_SECONDS, "democare")
        yield {
            "address": address,
            "files": {"demo": REPO / "checks.yaml", "edges": edges},
            "environ": environ,
        }
    finally:
        democare.stop()


def verdict(run: dict[str, Any]) -> dict[str, Any]:
    """What both engines must agree on, from a ``RunResult.to_dict()``."""
    final = run["attempts"][-1]
    return {
        "success": run["success"],
        "failed_step": run["failed_step"],
        "reason": run["reason"],
        "attempts": len(run["attempts"]),
        "steps": [(s["step"], s["outcome"], s["reason"]) for s in final["steps"]],
    }


def on_asyncio(checks: Path, environ: dict[str, str], journeys: list[str]) -> dict[str, Any]:
    config = load_config(checks, environ=environ)
    engine = Engine(config.variables, location=config.defaults.location)

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(engine.run(config.find_journey(j)) for j in journeys))

    return {j: r.to_dict() for j, r in zip(journeys, asyncio.run(run_all()), strict=True)}


def on_locust(checks: Path, environ: dict[str, str], journeys: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ONCE), str(checks), *journeys],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    return {j: out["result"] for j, out in json.loads(done.stdout).items()}


@pytest.mark.parametrize(
    ("checks", "fault", "journeys", "failing"),
    STATES,
    ids=[f"{c}-{f['channel']}-{f['mode']}" if f else f"{c}-healthy" for c, f, _, _ in STATES],
)
def test_both_engines_reach_the_same_verdict(
    care: dict[str, Any],
    checks: str,
    fault: dict[str, Any] | None,
    journeys: list[str],
    failing: dict[str, tuple[str, str]],
) -> None:
    path = care["files"][checks]
    if fault is not None:
        inject(care["address"], **fault)
    try:
        probes = on_asyncio(path, care["environ"], journeys)
        locust = on_locust(path, care["environ"], journeys)
    finally:
        get(f"http://{care['address']}/_faults", method="DELETE")
    for journey in journeys:
        expected = failing.get(journey)
        seen = verdict(probes[journey])
        assert (seen["failed_step"], seen["reason"]) == (expected or (None, None)), probes[journey]
        assert verdict(locust[journey]) == seen, (journey, probes[journey], locust[journey])
