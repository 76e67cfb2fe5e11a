"""The rule groups as a Prometheus-Operator ``PrometheusRule`` (monitoring.coreos.com/v1), for
a Prometheus run by the operator on Kubernetes.

>>> prometheus_rule([{"name": "g", "rules": []}])["spec"]["groups"][0]["name"]
'g'
"""

from __future__ import annotations

from typing import Any, Final

from alerts.recording import Group

NAME: Final = "carewatch"
#: The label kube-prometheus's Prometheus selects rules by, by default.
LABELS: Final = {"app.kubernetes.io/name": "carewatch", "role": "alert-rules"}


def prometheus_rule(groups: list[Group], *, name: str = NAME) -> dict[str, Any]:
    """``groups`` wrapped in a PrometheusRule resource called ``name``."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {"groups": groups},
    }
