"""Shared fixtures: real servers on loopback, never mocks.

* ``aiohttp_server`` (from pytest-aiohttp) serves an ``aiohttp.web.Application`` on 127.0.0.1.
* ``democare`` serves the demo care stack in-process and yields its base URL.
* ``write_config`` writes a checks.yaml into a temporary folder.

Every async test runs on uvloop, the loop the exporter runs on (``probes.engine.loop``).
"""

from __future__ import annotations

import asyncio
import socket
import textwrap
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from probes.engine.loop import new_event_loop
from probes.runs.results import Outcome, RunResult, StepResult

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent

ServerFactory = Callable[..., Awaitable[TestServer]]
#: How far a measured wait may fall short of the time slept: uvloop's timers and ``loop.time()``
#: count whole milliseconds, so a 0.3 s sleep can measure 0.29999 s on ``perf_counter``.
CLOCK_SLACK = 0.002


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The tests run on the exporter's own event loop."""
    return {"uvloop": new_event_loop}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def democare(aiohttp_server: ServerFactory) -> str:
    """Base URL of an in-process demo care stack, e.g. ``http://127.0.0.1:41234``."""
    from democare import create_app

    server = await aiohttp_server(create_app(seed=1))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write dedented YAML to ``tmp_path/checks.yaml`` and return its path."""

    def write(text: str, name: str = "checks.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


async def serve(
    aiohttp_server: ServerFactory, **routes: Callable[..., Awaitable[web.StreamResponse]]
) -> str:
    """Serve ``routes`` (``path_without_slash=handler``, any method) and return the base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", "/" + path.replace("__", "/"), handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def failed(result: RunResult) -> StepResult:
    """The step the run's final attempt blames; the run must have failed."""
    assert not result.ok
    step = result.final.failed_step
    assert step is not None
    assert step.outcome is Outcome.FAILED
    return step
