"""The alerting stack in tests: Prometheus's and Alertmanager's HTTP APIs, read with the
standard library (the tools themselves: tests/_support/tools.py).

The processes themselves are started with ``democare.stack`` and the pager is
``democare.pager.Pager``; see tests/democare/test_stack.py and tests/alerts/test_end_to_end.py.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

TIMEOUT_SECONDS: Final = 5.0


def get_json(url: str) -> Any:
    """The JSON answer to a GET of ``url``."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def prometheus_alerts(prometheus: str) -> list[Mapping[str, Any]]:
    """The alerts Prometheus has now, pending or firing, each with ``labels``, ``annotations``
    and ``state`` (``/api/v1/alerts``)."""
    alerts: list[Mapping[str, Any]] = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    return alerts


def alertmanager_alerts(alertmanager: str) -> list[Mapping[str, Any]]:
    """The alerts Alertmanager holds now, each with ``labels`` and a ``status`` whose ``state``
    is ``active`` or ``suppressed`` (``inhibitedBy``, ``silencedBy``) (``/api/v2/alerts``)."""
    alerts: list[Mapping[str, Any]] = get_json(f"{alertmanager}/api/v2/alerts")
    return alerts


def query(prometheus: str, expression: str) -> list[Mapping[str, Any]]:
    """The instant vector ``expression`` evaluates to now: ``[{"metric": {...}, "value":
    [time, "1"]}]``."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    result: list[Mapping[str, Any]] = get_json(url)["data"]["result"]
    return result


def rule_groups(prometheus: str) -> list[Mapping[str, Any]]:
    """The rule groups Prometheus has loaded (``/api/v1/rules``)."""
    groups: list[Mapping[str, Any]] = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    return groups


def names(alerts: list[Mapping[str, Any]]) -> list[str]:
    """The sorted ``alertname`` of each alert."""
    return sorted(str(alert["labels"]["alertname"]) for alert in alerts)
