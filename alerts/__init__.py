"""Prometheus rules, their promtool tests and the Alertmanager configuration, generated from
checks.yaml: ``carewatch alerts`` (``python -m alerts``). See docs/alerts.md.

Each generator is a pure function from the model (``probes.Config``) to data: recording rule
groups (``alerts.recording``), alert rule groups (``alerts.rules``), the Alertmanager
configuration (``alerts.routing``) and its notification templates (``alerts.templates``), the
promtool tests (``alerts.rule_tests``) and the PrometheusRule resource
(``alerts.prometheusrule``). ``generate`` dumps them as files; ``write`` is the thin shell that
puts them on disk. This package imports only ``probes``, ``probes.model``, ``probes.runs`` and
``probes.metrics`` (tests/test_layering.py).

>>> from probes import parse_config
>>> config = parse_config('''
... channels:
...   - {name: app, kind: app, team: mobile, journeys: [{name: login, steps: [
...       {name: home, url: "http://127.0.0.1:8900/"}]}]}
... ''', file="checks.yaml", environ={})
>>> print(*sorted(generate(config)))
alertmanager.yaml prometheusrule.yaml rules.test.yaml rules.yaml templates/carewatch.tmpl
>>> alerts = sorted({r.get("alert", "") for g in alert_groups(config) for r in g["rules"]})
>>> print(*alerts[1:6]); print(*alerts[6:])
CallbackRejections CertificateExpired CertificateExpiresSoon ChannelDown ConfigReloadFailed
JourneyAvailabilityBurnRate JourneyDown JourneyLatencyBurnRate JourneyStale ProberDown
"""

from __future__ import annotations

from alerts.command import run
from alerts.files import FILES, generate, stale, write
from alerts.prometheusrule import prometheus_rule
from alerts.recording import recording_groups
from alerts.routing import alertmanager_config
from alerts.rule_tests import rule_tests
from alerts.rules import alert_groups
from alerts.templates import notification_templates

__all__ = [
    "FILES",
    "alert_groups",
    "alertmanager_config",
    "generate",
    "notification_templates",
    "prometheus_rule",
    "recording_groups",
    "rule_tests",
    "run",
    "stale",
    "write",
]
