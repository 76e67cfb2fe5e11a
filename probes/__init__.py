"""carewatch probes: the journey model and the engines that run it.

The only public API is what this module exposes, and it imports neither aiohttp nor locust, so
both engines and every generator can use it:

* ``load_config`` / ``parse_config`` turn checks.yaml into a ``Config`` (or raise ``ConfigError``
  listing every located ``Problem``).
* ``Config`` > ``Channel`` > ``Journey`` > ``Step``: the model. A step is an ``HttpStep`` (with
  ``Expect``, ``Capture``), a ``WebSocketStep``, an ``AwaitStep``, a ``TcpStep``, a ``DnsStep`` or
  an ``SmtpStep``.
* ``RunResult`` > ``Attempt`` > ``StepResult``, with ``Reason`` and ``Phase``: what a run found.
* ``Exit``: the exit codes every carewatch command ends with.

The asyncio engine lives in ``probes.engine`` and the running agent in ``probes.service``;
import them explicitly where an event loop runs. ``probes.metrics`` is the metric contract.
"""

from __future__ import annotations

from probes.errors import CarewatchError, ConfigError, MissingVariable, Problem
from probes.exits import Exit
from probes.model.config import Channel, ChannelKind, Config, Defaults, Device, Journey, Slo
from probes.model.load import load_config, parse_config
from probes.model.steps import (
    AwaitStep,
    Capture,
    DnsStep,
    Expect,
    HttpStep,
    SmtpStep,
    Step,
    TcpStep,
    Tls,
    WebSocketStep,
)
from probes.runs.results import Attempt, Outcome, Phase, Reason, RunResult, StepResult

__all__ = [
    "Attempt",
    "AwaitStep",
    "Capture",
    "CarewatchError",
    "Channel",
    "ChannelKind",
    "Config",
    "ConfigError",
    "Defaults",
    "Device",
    "DnsStep",
    "Exit",
    "Expect",
    "HttpStep",
    "Journey",
    "MissingVariable",
    "Outcome",
    "Phase",
    "Problem",
    "Reason",
    "RunResult",
    "Slo",
    "SmtpStep",
    "Step",
    "StepResult",
    "TcpStep",
    "Tls",
    "WebSocketStep",
    "load_config",
    "parse_config",
]
