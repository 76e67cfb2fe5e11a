"""Grafana dashboards generated from checks.yaml with grafanalib: ``carewatch dashboards``
(``python -m dashboards``). See docs/dashboards.md.

Four dashboards, each a pure function from the model (``probes.Config``) to Grafana's JSON
model: the overview (``dashboards.overview``, uid ``carewatch-overview``), the journey
drill-down (``dashboards.journey``, ``carewatch-journey``), the SLOs (``dashboards.slos``,
``carewatch-slos``) and the agents (``dashboards.agents``, ``carewatch-agents``); the alerts'
``dashboard_url`` links land on the first two. ``dashboards.grafana`` holds the building blocks
and brings grafanalib's output up to Grafana's current model. ``generate`` dumps them with a
provisioning file; ``write`` is the thin shell that puts them on disk. This package imports only
``probes``, ``probes.model``, ``probes.runs`` and ``probes.metrics`` from probes, and the
alerts' names and SLO maths, whose recording rules it reads.

>>> from probes import parse_config
>>> config = parse_config('''
... channels:
...   - {name: app, kind: app, team: mobile, journeys: [{name: login, steps: [
...       {name: home, url: "http://127.0.0.1:8900/"}]}]}
... ''', file="checks.yaml", environ={})
>>> for name in sorted(generate(config)): print(name)
carewatch-agents.json
carewatch-journey.json
carewatch-overview.json
carewatch-slos.json
provisioning.yaml
>>> [board["uid"] for board in dashboards(config)]
['carewatch-overview', 'carewatch-journey', 'carewatch-slos', 'carewatch-agents']
"""

from __future__ import annotations

from alerts.files import stale, write
from dashboards.agents import agents
from dashboards.command import run
from dashboards.files import FILES, dashboards, generate
from dashboards.journey import journey
from dashboards.overview import overview
from dashboards.slos import slos

__all__ = [
    "FILES",
    "agents",
    "dashboards",
    "generate",
    "journey",
    "overview",
    "run",
    "slos",
    "stale",
    "write",
]
