"""The demo stack that the no-dead-panels test reads its dashboards against
(tests/dashboards/test_live.py; the fixture that starts it is in tests/dashboards/conftest.py).

It runs the repository's own checks.yaml, so that every channel of the demo feeds the panels
(SMS, push and email round trips, chat, the TLS of the SMTP step...), made quick: ``quick``
runs every journey every ``interval`` and shortens every timeout and ``within`` to fit in it,
since checks.yaml refuses a timeout longer than the interval.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

import yaml

from probes import Config
from probes.model import format_duration, parse_duration
from tests._support.stack import TIMEOUT_SECONDS

#: The keys of checks.yaml that bound how long a run, a step or a wait may take.
BOUNDS: Final = frozenset({"timeout", "within"})
#: A callback event no signature can match: the exporter counts it as rejected.
UNSIGNED: Final = b'{"carewatch": "a callback with no signature"}'


@dataclass(frozen=True, slots=True)
class Live:
    """Where the running stack answers, and the config its exporter and rules come from."""

    config: Config
    prometheus: str
    """``http://HOST:PORT``"""
    care: str
    """democare's ``HOST:PORT``, for its fault API."""
    exporter: str
    """``http://HOST:PORT``"""
    scrape_seconds: float


def quick(checks: str, interval: float) -> str:
    """checks.yaml ``checks`` with every journey running every ``interval`` seconds (its own
    interval included).

    >>> print(quick('''
    ... defaults: {interval: 15s, timeout: 5s}
    ... channels: [{journeys: [{interval: 30s, timeout: 8s, steps: [
    ...     {await: {within: 5s}}, {timeout: 1s}]}]}]
    ... ''', 2.0), end="")
    defaults: {interval: 2s, timeout: 2s}
    channels:
    - journeys:
      - interval: 2s
        timeout: 2s
        steps:
        - await: {within: 2s}
        - {timeout: 1s}
    """
    document = yaml.safe_load(checks)
    document.setdefault("defaults", {})["interval"] = format_duration(interval)
    _shorten(document, interval)
    return str(yaml.safe_dump(document, sort_keys=False, default_flow_style=None))


def _shorten(node: Any, interval: float) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "interval" or (key in BOUNDS and parse_duration(value) > interval):
                node[key] = format_duration(interval)
            else:
                _shorten(value, interval)
    elif isinstance(node, list):
        for item in node:
            _shorten(item, interval)


def reject_callback(exporter: str, config: Config) -> int:
    """Post an unsigned event to the first of ``config``'s callbacks; the exporter's answer
    (401: rejected)."""
    name = next(iter(config.callbacks))
    request = urllib.request.Request(f"{exporter}/callbacks/{name}", data=UNSIGNED, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
