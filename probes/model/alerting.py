"""``alerting:`` and each journey's ``alert:``: who is paged, how, and when a journey is down.

The alert generator (``alerts/``) reads this and nothing of the engines. Every secret stays in a
file that Alertmanager reads at run time (``*_file`` keys, the ones Alertmanager 0.25 accepts),
because the generated configuration is committed: no key here takes a secret inline, and no
value here is expanded from the environment.

>>> Alerting.model_validate({
...     "receivers": {"care-pager": {"pagerduty": {"routing_key_file": "/run/secrets/pd"}}},
...     "teams": {"mobile-app": {"page": "care-pager", "ticket": "care-pager"}},
...     "default_receiver": "care-pager",
... }).teams["mobile-app"].page
'care-pager'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from probes.model.types import Frozen, Name, Seconds, SecondsOrZero

#: Runs in a row that must fail (after retries) before a journey counts as down at a location.
DEFAULT_FAILED_RUNS: Final = 2
MAX_FAILED_RUNS: Final = 100
#: The SLO period, in days, over which the error budget is counted (Sloth's default too).
DEFAULT_PERIOD_DAYS: Final = 30
MAX_PERIOD_DAYS: Final = 365
#: Where the generated dashboards live until a real Grafana is named.
DEFAULT_DASHBOARD_URL: Final = "http://127.0.0.1:3000"
#: The Prometheus job that scrapes the agents.
DEFAULT_JOB: Final = "carewatch"
#: Alertmanager's own defaults for a route.
DEFAULT_GROUP_WAIT: Final = 30.0
DEFAULT_GROUP_INTERVAL: Final = 300.0
DEFAULT_REPEAT_INTERVAL: Final = 4 * 3600.0

Text = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
FilePath = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^/")]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "a URL with a user or password would write a secret into the generated files; "
            "use credentials_file instead"
        )
    return value


class JourneyAlert(Frozen):
    """``alert:`` of a journey (or ``defaults.alert``): when it counts as down, and whether it
    may page.

    ``failed_runs``: runs in a row that must fail at a location. ``min_failed_locations``:
    locations that must see that before the journey pages as down (fewer: a ticket); by default
    1 for a journey run at one location, else 2. ``page: false`` turns its pages into tickets.
    """

    failed_runs: Annotated[int, Field(ge=1, le=MAX_FAILED_RUNS, strict=True)] | None = None
    min_failed_locations: Annotated[int, Field(ge=1, le=1000, strict=True)] | None = None
    page: bool | None = None


class WebhookReceiver(Frozen):
    """A generic webhook: Alertmanager POSTs its JSON to ``url``. Alertmanager 0.25 has no
    ``url_file``, so a secret goes in a bearer token read from ``credentials_file``."""

    url: Text
    credentials_file: FilePath | None = None

    _url = field_validator("url")(_http_url)


class SlackReceiver(Frozen):
    """Slack, through an incoming-webhook URL read from ``api_url_file``."""

    api_url_file: FilePath
    channel: Text


class PagerDutyReceiver(Frozen):
    """PagerDuty Events API v2, with the integration's routing key read from a file."""

    routing_key_file: FilePath


class EmailReceiver(Frozen):
    """Email through ``smarthost`` (``host:port``), the password read from a file."""

    to: Text
    from_: Text = Field(alias="from")
    smarthost: Annotated[str, StringConstraints(pattern=r"^[^\s:]+:\d{1,5}$")]
    auth_username: Text | None = None
    auth_password_file: FilePath | None = None
    require_tls: bool = True

    @model_validator(mode="after")
    def _password_needs_user(self) -> EmailReceiver:
        if self.auth_password_file is not None and self.auth_username is None:
            raise ValueError("auth_password_file needs auth_username")
        return self


class Receiver(Frozen):
    """Where notifications go: exactly one of ``webhook``, ``slack``, ``pagerduty``, ``email``."""

    webhook: WebhookReceiver | None = None
    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    email: EmailReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Receiver:
        given = [k for k in ("webhook", "slack", "pagerduty", "email") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of webhook, slack, pagerduty or email; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """``webhook``, ``slack``, ``pagerduty`` or ``email``."""
        return next(k for k in ("webhook", "slack", "pagerduty", "email") if getattr(self, k))


class TeamRoute(Frozen):
    """A team's receivers: ``page`` for what must wake someone, ``ticket`` for the rest."""

    page: Name
    ticket: Name


class Alerting(Frozen):
    """``alerting:``: receivers, each team's routing, and the numbers the rules are built on."""

    period_days: Annotated[int, Field(ge=1, le=MAX_PERIOD_DAYS, strict=True)] = DEFAULT_PERIOD_DAYS
    dashboard_url: Text = DEFAULT_DASHBOARD_URL
    job: Name = DEFAULT_JOB
    group_wait: SecondsOrZero = DEFAULT_GROUP_WAIT
    group_interval: Seconds = DEFAULT_GROUP_INTERVAL
    repeat_interval: Seconds = DEFAULT_REPEAT_INTERVAL
    receivers: Mapping[Name, Receiver] = Field(default_factory=dict)
    teams: Mapping[Text, TeamRoute] = Field(default_factory=dict)
    default_receiver: Name | None = None

    _dashboard = field_validator("dashboard_url")(_http_url)

    @model_validator(mode="after")
    def _receivers_exist(self) -> Alerting:
        named = [
            (f"teams.{team}.{kind}", getattr(route, kind))
            for team, route in self.teams.items()
            for kind in ("page", "ticket")
        ]
        if self.default_receiver is not None:
            named.append(("default_receiver", self.default_receiver))
        unknown = [f"{where}: {name!r}" for where, name in named if name not in self.receivers]
        if unknown:
            known = ", ".join(sorted(self.receivers)) or "none"
            raise ValueError(f"no such receiver ({'; '.join(unknown)}); receivers: {known}")
        if self.receivers and self.default_receiver is None:
            raise ValueError(
                "expected default_receiver: it gets the alerts of teams without a route"
            )
        return self


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """A journey's ``alert:``, resolved: every value set."""

    failed_runs: int = DEFAULT_FAILED_RUNS
    min_failed_locations: int = 1
    page: bool = True


def default_min_failed_locations(locations: int) -> int:
    """1 for a journey run at one location, else 2: Grafana Synthetic Monitoring's and
    Datadog's "minimum locations failed", so one location's own trouble never pages.

    >>> [default_min_failed_locations(n) for n in (1, 2, 5)]
    [1, 2, 2]
    """
    return 1 if locations <= 1 else 2
