"""democare and the exporter as child processes, reached over HTTP with the standard library.

The end-to-end tests start them with ``Process``, wait for them with ``wait_until``, break
democare with ``inject`` and read the exporter's verdict with ``down``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._support.paths import REPO
from tests._support.scrape import value


def get(url: str, *, data: bytes | None = None, method: str | None = None) -> tuple[int, str]:
    """The status and text of a request to ``url``; a JSON body when ``data`` is given."""
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """The first true result of ``check``, retried for ``seconds``; fails the test saying
    ``what`` never happened. A connection refused counts as not yet."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except (urllib.error.URLError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:g}s")
        time.sleep(0.1)


class Process:
    """A child process with its output in a file, stopped at teardown."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.handle = subprocess.Popen(
            argv, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.handle.poll() is None:
            self.handle.send_signal(signal.SIGTERM)
            try:
                self.handle.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.handle.kill()
                self.handle.wait()
        return self.handle.returncode


def inject(care: str, **fault: Any) -> None:
    """Inject ``fault`` into democare at ``care`` (host:port) through its fault API."""
    status, body = get(f"http://{care}/_faults", data=json.dumps(fault).encode(), method="POST")
    assert status == 200, body


def down(metrics: str, journey: str) -> str | None:
    """The scrape once ``journey`` is down, else None."""
    text = get(metrics)[1]
    return text if value(text, "carewatch_journey_up", journey=journey) == 0 else None
