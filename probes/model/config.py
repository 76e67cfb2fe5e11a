"""The journey model: checks.yaml parsed once into frozen, typed objects.

Both engines interpret these objects: the asyncio engine (``probes.engine``, used by the
exporter) and the gevent engine (``loadtests/``); the generators (alert rules, dashboards) are to
read them too. This module imports neither aiohttp nor locust, and must stay that way.

Shape::

    Config
      defaults, variables, devices, locations, callbacks (Webhook by name), loadtest, secrets
      channels: Channel(name, kind, team, runbook_url, hours)
        journeys: Journey(name, interval, timeout, retries, device, slo, apdex_t, locations,
                          hours, networks, loadtest)
          steps / finally_steps: HttpStep, WebSocketStep, AwaitStep, TcpStep, DnsStep or
                                 SmtpStep (``probes.model.steps``)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from probes.errors import Problem
from probes.model.alerting import Alerting, AlertPolicy
from probes.model.hours import OpeningHours
from probes.model.networks import NetworkProfile
from probes.model.secrets import NO_SECRETS, Secrets
from probes.model.steps import (
    Step,
)
from probes.model.thresholds import JourneyLoadTest, LoadTest
from probes.model.types import (
    Frozen,
    Scalar,
    Seconds,
)

MAX_RETRIES: Final = 10
#: How far a signed callback's time may be from the agent's clock (Stripe's libraries: 5 min).
DEFAULT_TOLERANCE_SECONDS: Final = 300.0
MAX_TOLERANCE_SECONDS: Final = 86_400.0
#: The largest checks.yaml read (8 MiB): 10,000 rich journeys take about 5 MB. A larger file,
#: or a device such as /dev/zero, is refused before it can take the agent's memory.
MAX_FILE_BYTES: Final = 8 * 2**20
#: Apdex: a run is satisfied within T, tolerating within TOLERATING_FACTOR x T, else frustrated.
TOLERATING_FACTOR: Final = 4


class ChannelKind(StrEnum):
    """How a customer reaches care; drives dashboards and default alert routing."""

    APP = "app"
    SELF_SERVICE = "self_service"
    LOCATOR = "locator"
    SMS = "sms"
    PUSH = "push"
    CHAT = "chat"
    VOICE = "voice"
    EMAIL = "email"
    VIDEO = "video"
    AGENT = "agent"
    WEB = "web"


# --- expectations -----------------------------------------------------------------------------

# --- resolved objects -------------------------------------------------------------------------


class Location(Frozen):
    """Where an agent runs, with coordinates that locator steps use as ``${location.lat}``."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Device(Frozen):
    """A mobile client profile, applied to every request of a journey that uses it."""

    user_agent: str
    headers: Mapping[str, str] = Field(default_factory=dict)


class Signature(Frozen):
    """An HMAC of the raw body, sent in a header: how SMS and push providers sign webhooks.

    Example: ``{header: X-Democare-Signature, secret: "${env:SMS_WEBHOOK_SECRET}",
    prefix: "sha256="}`` accepts ``X-Democare-Signature: sha256=<hex HMAC-SHA256 of the body>``.

    ``scheme: stripe`` is Stripe's: ``Stripe-Signature: t=<Unix time>,v1=<hex HMAC of
    "t.body">``. Since the time is signed, an event more than ``tolerance`` away from now is
    rejected, and so is a signature seen before (docs/security.md).
    """

    header: Annotated[str, StringConstraints(min_length=1)]
    secret: Annotated[str, StringConstraints(min_length=1)]
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    prefix: str = ""  # written before the digest, such as "sha256="
    encoding: Literal["hex", "base64"] = "hex"
    scheme: Literal["hmac", "stripe"] = "hmac"  # hmac: of the body alone
    tolerance: Annotated[Seconds, Field(gt=0, le=MAX_TOLERANCE_SECONDS, allow_inf_nan=False)] = (
        DEFAULT_TOLERANCE_SECONDS  # how far a signed time may be from now
    )


class Token(Frozen):
    """A shared secret the provider sends in a header or a query parameter."""

    header: str | None = None
    query: str | None = None
    value: Annotated[str, StringConstraints(min_length=1)]

    @model_validator(mode="after")
    def _one_place(self) -> Token:
        if (self.header is None) == (self.query is None):
            raise ValueError("expected exactly one of header, query")
        return self


class Webhook(Frozen):
    """A provider's webhook (an entry of checks.yaml's ``callbacks:``): how the receiver on
    ``/callbacks/<name>`` tells a genuine inbound event from a forged one: exactly one of
    ``signature``, ``token``, or ``unsigned: true`` (accept anything: only for a receiver that
    nobody else can reach, since it faces whoever can reach the agent)."""

    signature: Signature | None = None
    token: Token | None = None
    unsigned: bool = False

    @model_validator(mode="after")
    def _one_check(self) -> Webhook:
        given = [k for k in ("signature", "token") if getattr(self, k) is not None]
        given += ["unsigned: true"] if self.unsigned else []
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of signature, token or unsigned: true; "
                f"got {', '.join(given) or 'none'}"
            )
        return self


@dataclass(frozen=True, slots=True)
class Slo:
    """A journey's objectives: availability in %, and the % of runs under a latency threshold."""

    availability: float
    latency_threshold: float
    latency_target: float

    @property
    def availability_ratio(self) -> float:
        """The availability objective as a ratio, e.g. 99.9 % -> 0.999."""
        return round(self.availability / 100, 12)  # 99.9 / 100 is 0.9990000000000001

    @property
    def latency_ratio(self) -> float:
        """The latency objective as a ratio of runs, e.g. 95 % -> 0.95."""
        return round(self.latency_target / 100, 12)


@dataclass(frozen=True, slots=True)
class Journey:
    """A customer's multi-step task on one channel, with every default filled in."""

    name: str
    channel: str
    interval: float
    timeout: float
    retries: int
    device_name: str | None
    device: Device | None
    slo: Slo
    apdex_t: float
    steps: tuple[Step, ...]
    finally_steps: tuple[Step, ...] = ()
    locations: tuple[str, ...] | None = None  # None: every location runs it
    hours: OpeningHours | None = None  # its channel's opening hours; None: always open
    networks: Mapping[str, NetworkProfile] = field(default_factory=dict)  # experience estimates
    loadtest: JourneyLoadTest | None = None  # how it takes part in load tests
    alert: AlertPolicy = field(default_factory=AlertPolicy)  # when it is down; may it page

    def runs_at(self, location: str) -> bool:
        """Whether an agent at ``location`` runs this journey."""
        return self.locations is None or location in self.locations

    @property
    def id(self) -> str:
        """``channel/journey``: unique in a config, and how the CLI and /probe name it."""
        return f"{self.channel}/{self.name}"


@dataclass(frozen=True, slots=True)
class Channel:
    """One way customers reach care (the app, chat, SMS, ...), owned by a team."""

    name: str
    kind: ChannelKind
    team: str
    runbook_url: str | None
    journeys: tuple[Journey, ...]
    hours: OpeningHours | None = None  # None: always open


@dataclass(frozen=True, slots=True)
class Defaults:
    """Values every journey inherits unless it sets its own."""

    interval: float
    timeout: float
    retries: int
    location: str
    device: str | None
    slo: Slo
    apdex_t: float


@dataclass(frozen=True, slots=True)
class Config:
    """A whole checks.yaml, validated and resolved."""

    source: str
    defaults: Defaults
    variables: Mapping[str, Scalar]
    devices: Mapping[str, Device]
    channels: tuple[Channel, ...]
    locations: Mapping[str, Location | None] = field(default_factory=dict)
    callbacks: Mapping[str, Webhook] = field(default_factory=dict)  # the webhooks, by name
    loadtest: LoadTest | None = None  # the load-test section, for loadtests/
    alerting: Alerting = field(default_factory=Alerting)  # receivers and routing, for alerts/
    secrets: Secrets = NO_SECRETS  # what every message hides (probes.model.secrets)
    #: Located doubts that do not stop the file (a journey that may not fit its interval):
    #: ``carewatch check`` prints them, the exporter logs them at each load.
    warnings: tuple[Problem, ...] = ()
    journeys: tuple[Journey, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "journeys", tuple(j for c in self.channels for j in c.journeys))

    def channel(self, name: str) -> Channel:
        """The channel called ``name``; KeyError if there is none."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)

    def find_journey(self, name: str) -> Journey:
        """A journey by ``channel/journey`` or, when unambiguous, by its bare name."""
        matches = [j for j in self.journeys if name in (j.id, j.name)]
        if len(matches) != 1:
            raise KeyError(name)
        return matches[0]
