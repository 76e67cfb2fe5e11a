"""Shared fixtures: real servers on loopback, never mocks.

* ``aiohttp_server`` (from pytest-aiohttp) serves an ``aiohttp.web.Application`` on 127.0.0.1.
* ``democare`` serves the demo care stack in-process and yields its base URL.
* ``write_config`` writes a checks.yaml into a temporary folder.

Every async test runs on uvloop, the loop the exporter runs on (``probes.engine.loop``).

This file holds fixtures and hooks only, and no test module imports it: the helpers the test
modules share (``serve``, ``failed``, ``CLOCK_SLACK``, ...) are in ``tests/_support``.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from probes.engine.loop import new_event_loop
from tests._support.servers import ServerFactory


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The tests run on the exporter's own event loop."""
    return {"uvloop": new_event_loop}


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
