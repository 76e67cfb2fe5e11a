"""The alerting stack in tests: Prometheus's and Alertmanager's HTTP APIs, read with the
standard library (the tools themselves: tests/_support/tools.py).

The processes themselves are started with ``democare.stack`` and the pager is
``democare.pager.Pager``; see tests/democare/test_stack.py and tests/alerts/test_end_to_end.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Final

TIMEOUT_SECONDS: Final = 5.0


class PrometheusError(Exception):
    """Prometheus refused a request (a query that does not parse, say); the message is its own
    ``errorType: error``."""


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


def api(prometheus: str, path: str, params: Sequence[tuple[str, str]]) -> Any:
    """The ``data`` of Prometheus's answer to ``GET path?params`` (``/api/v1/...``);
    PrometheusError, with its own words, if it refused."""
    url = f"{prometheus}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            raise PrometheusError(f"HTTP {exc.code} {exc.reason}") from None
    if answer.get("status") != "success":
        raise PrometheusError(f"{answer.get('errorType')}: {answer.get('error')}")
    return answer["data"]


def rule_groups(prometheus: str) -> list[Mapping[str, Any]]:
    """The rule groups Prometheus has loaded (``/api/v1/rules``)."""
    groups: list[Mapping[str, Any]] = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    return groups


def names(alerts: list[Mapping[str, Any]]) -> list[str]:
    """The sorted ``alertname`` of each alert."""
    return sorted(str(alert["labels"]["alertname"]) for alert in alerts)
