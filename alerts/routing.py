"""The Alertmanager configuration: each team's pages and tickets to its receivers, grouped by
channel, with the inhibitions that keep one outage to one notification.

Secrets stay in files that Alertmanager reads when it sends (the ``*_file`` keys that
Alertmanager 0.25 accepts); nothing secret is written here. ``amtool check-config`` and
``amtool config routes test`` check the result (tests/alerts/test_routing.py).
"""

from __future__ import annotations

from typing import Any, Final

from alerts import names
from alerts.promql import quote, window
from probes import Config
from probes.model import Alerting, Receiver

Document = dict[str, Any]

#: The receiver that gets everything when checks.yaml names none: it has no integration, so
#: Alertmanager shows the alerts and notifies nobody.
NOBODY: Final = "nobody"
TEMPLATES: Final = "templates/carewatch.tmpl"
#: Alerts muted while a channel is down: the channel's page says it all.
MUTED_BY_CHANNEL_DOWN: Final = (
    names.JOURNEY_DOWN,
    names.JOURNEY_DEGRADED,
    names.AVAILABILITY_BURN_RATE,
    names.LATENCY_BURN_RATE,
)
#: Muted while the same journey is down or degraded: that alert names the location and step.
MUTED_BY_JOURNEY_ALERTS: Final = (names.AVAILABILITY_BURN_RATE, names.LATENCY_BURN_RATE)


def matcher(label: str, value: str, op: str = "=") -> str:
    """``team="mobile-app"``: one Alertmanager matcher."""
    return f"{label}{op}{quote(value)}"


def alertmanager_config(config: Config) -> Document:
    """alertmanager.yaml as data."""
    alerting = config.alerting
    return {
        "route": route(alerting),
        "inhibit_rules": inhibit_rules(),
        "receivers": receivers(alerting),
        "templates": [TEMPLATES],
    }


def root_receiver(alerting: Alerting) -> str:
    return alerting.default_receiver or NOBODY


def route(alerting: Alerting) -> Document:
    """Group by channel; each team's page and ticket to its receivers; the rest to the root."""
    routes = [
        {
            "matchers": [matcher("team", team), matcher("severity", wanted)],
            "receiver": getattr(alerting.teams[team], wanted),
        }
        for team in sorted(alerting.teams)
        for wanted in names.SEVERITIES
    ]
    root: Document = {
        "receiver": root_receiver(alerting),
        "group_by": ["channel"],
        "group_wait": _duration(alerting.group_wait),
        "group_interval": _duration(alerting.group_interval),
        "repeat_interval": _duration(alerting.repeat_interval),
    }
    if routes:
        root["routes"] = routes
    return root


def inhibit_rules() -> list[Document]:
    """ChannelDown mutes its channel's journey alerts; JourneyDown and JourneyDegraded mute
    their journey's burn rates; a ProberDown that knows its location mutes that location."""
    return [
        {
            "source_matchers": [matcher("alertname", names.CHANNEL_DOWN)],
            "target_matchers": [matcher("alertname", "|".join(MUTED_BY_CHANNEL_DOWN), "=~")],
            "equal": ["channel"],
        },
        {
            "source_matchers": [
                matcher("alertname", f"{names.JOURNEY_DOWN}|{names.JOURNEY_DEGRADED}", "=~")
            ],
            "target_matchers": [matcher("alertname", "|".join(MUTED_BY_JOURNEY_ALERTS), "=~")],
            "equal": ["channel", "journey"],
        },
        {
            # A ProberDown without a location (the whole job gone, or an agent unseen for an
            # hour) must not mute every alert that has no location either.
            "source_matchers": [
                matcher("alertname", names.PROBER_DOWN),
                matcher("location", ".+", "=~"),
            ],
            "target_matchers": [matcher("alertname", names.PROBER_DOWN, "!=")],
            "equal": ["location"],
        },
    ]


def receivers(alerting: Alerting) -> list[Document]:
    if not alerting.receivers:
        return [{"name": NOBODY}]
    return [receiver(name, alerting.receivers[name]) for name in sorted(alerting.receivers)]


def receiver(name: str, spec: Receiver) -> Document:
    """One receiver, its text from templates/carewatch.tmpl and its secret from a file."""
    if spec.webhook is not None:
        hook: Document = {"url": spec.webhook.url, "send_resolved": True}
        if spec.webhook.credentials_file is not None:
            hook["http_config"] = {
                "authorization": {"credentials_file": spec.webhook.credentials_file}
            }
        return {"name": name, "webhook_configs": [hook]}
    if spec.slack is not None:
        return {
            "name": name,
            "slack_configs": [
                {
                    "api_url_file": spec.slack.api_url_file,
                    "channel": spec.slack.channel,
                    "send_resolved": True,
                    "title": _template("carewatch.slack.title"),
                    "title_link": _template("carewatch.dashboard_url"),
                    "text": _template("carewatch.slack.text"),
                }
            ],
        }
    if spec.pagerduty is not None:
        return {
            "name": name,
            "pagerduty_configs": [
                {
                    "routing_key_file": spec.pagerduty.routing_key_file,
                    "send_resolved": True,
                    "description": _template("carewatch.title"),
                    "details": {
                        "alerts": _template("carewatch.text"),
                        "runbook": _template("carewatch.runbook_url"),
                        "dashboard": _template("carewatch.dashboard_url"),
                    },
                    # Not the runbook: a channel may have none, and an empty link is refused.
                    "links": [{"href": _template("carewatch.dashboard_url"), "text": "dashboard"}],
                }
            ],
        }
    assert spec.email is not None  # Receiver holds exactly one
    mail = spec.email
    email: Document = {"to": mail.to, "from": mail.from_, "smarthost": mail.smarthost}
    if mail.auth_username is not None:
        email["auth_username"] = mail.auth_username
    if mail.auth_password_file is not None:
        email["auth_password_file"] = mail.auth_password_file
    email |= {
        "require_tls": mail.require_tls,
        "send_resolved": True,
        "headers": {"Subject": _template("carewatch.title")},
        "html": _template("carewatch.email.html"),
        "text": _template("carewatch.text"),
    }
    return {"name": name, "email_configs": [email]}


def _template(name: str) -> str:
    return f'{{{{ template "{name}" . }}}}'


def _duration(seconds: float) -> str:
    """Alertmanager's duration: ``30s``, ``5m``, ``4h``; milliseconds when it must."""
    if seconds == int(seconds):
        return window(int(seconds)) if seconds else "0s"
    return f"{round(seconds * 1000)}ms"
