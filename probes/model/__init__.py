"""The journey model: checks.yaml turned into frozen, typed objects that no engine shapes.

``load_config`` / ``parse_config`` return a ``Config`` or raise ``ConfigError`` listing every
located ``Problem``. ``Config`` > ``Channel`` > ``Journey`` > ``Step``. Both engines and every
generator read this package; it imports no engine (``tests/test_layering.py``).

>>> config = parse_config('''
... channels:
...   - name: app
...     kind: app
...     team: mobile
...     journeys:
...       - name: login
...         steps:
...           - name: home
...             url: http://127.0.0.1:8900/
... ''', file="checks.yaml", environ={})
>>> [(journey.channel, journey.name, len(journey.steps)) for journey in config.journeys]
[('app', 'login', 1)]
"""

from __future__ import annotations

from probes.model.addresses import check_address, join_address, split_address
from probes.model.alerting import (
    Alerting,
    AlertPolicy,
    EmailReceiver,
    JourneyAlert,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    TeamRoute,
    WebhookReceiver,
)
from probes.model.config import (
    MAX_FILE_BYTES,
    MAX_RETRIES,
    TOLERATING_FACTOR,
    Channel,
    ChannelKind,
    Config,
    Defaults,
    Device,
    Journey,
    Location,
    Signature,
    Slo,
    Token,
    Webhook,
)
from probes.model.durations import MAX_DURATION_SECONDS, format_duration, parse_duration
from probes.model.hours import OpeningHours, is_open
from probes.model.jsonpath import compile_path, find_all, selects_one
from probes.model.load import load_config, parse_config
from probes.model.networks import PROFILES, NetworkProfile
from probes.model.secrets import NO_SECRETS, REDACTED, Secrets
from probes.model.steps import (
    STEP_KINDS,
    AwaitStep,
    Capture,
    DnsSpec,
    DnsStep,
    Exchange,
    Expect,
    HttpStep,
    JsonAssertion,
    Matcher,
    Receive,
    Send,
    SmtpSpec,
    SmtpStep,
    Step,
    TcpStep,
    Tls,
    WebSocketStep,
    status_matches,
)
from probes.model.templating import render, render_str
from probes.model.thresholds import (
    PERCENTILE_RESOLUTION,
    TOTAL_ENTRY,
    TOTAL_MEANING,
    EntryStats,
    JourneyLoadTest,
    LoadTest,
    Stage,
    Threshold,
    Verdict,
    default_thresholds,
    missing_entry,
)
from probes.model.types import (
    MAX_INTERVAL_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_INTERVAL_SECONDS,
    NAME_PATTERN,
    Frozen,
    Scalar,
)

__all__ = [
    "MAX_DURATION_SECONDS",
    "MAX_FILE_BYTES",
    "MAX_INTERVAL_SECONDS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_SECONDS",
    "MIN_INTERVAL_SECONDS",
    "NAME_PATTERN",
    "NO_SECRETS",
    "PERCENTILE_RESOLUTION",
    "PROFILES",
    "REDACTED",
    "STEP_KINDS",
    "TOLERATING_FACTOR",
    "TOTAL_ENTRY",
    "TOTAL_MEANING",
    "AlertPolicy",
    "Alerting",
    "AwaitStep",
    "Capture",
    "Channel",
    "ChannelKind",
    "Config",
    "Defaults",
    "Device",
    "DnsSpec",
    "DnsStep",
    "EmailReceiver",
    "EntryStats",
    "Exchange",
    "Expect",
    "Frozen",
    "HttpStep",
    "Journey",
    "JourneyAlert",
    "JourneyLoadTest",
    "JsonAssertion",
    "LoadTest",
    "Location",
    "Matcher",
    "NetworkProfile",
    "OpeningHours",
    "PagerDutyReceiver",
    "Receive",
    "Receiver",
    "Scalar",
    "Secrets",
    "Send",
    "Signature",
    "SlackReceiver",
    "Slo",
    "SmtpSpec",
    "SmtpStep",
    "Stage",
    "Step",
    "TcpStep",
    "TeamRoute",
    "Threshold",
    "Tls",
    "Token",
    "Verdict",
    "WebSocketStep",
    "Webhook",
    "WebhookReceiver",
    "check_address",
    "compile_path",
    "default_thresholds",
    "find_all",
    "format_duration",
    "is_open",
    "join_address",
    "load_config",
    "missing_entry",
    "parse_config",
    "parse_duration",
    "render",
    "render_str",
    "selects_one",
    "split_address",
    "status_matches",
]
