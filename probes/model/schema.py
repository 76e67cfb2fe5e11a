"""checks.yaml as written: the document layer that pydantic validates.

Journey-level settings are optional here and inherit from ``defaults``; ``probes.model.load``
resolves them into the complete objects of ``probes.model.config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import Field, StringConstraints

from probes.model.alerting import Alerting, JourneyAlert
from probes.model.config import MAX_RETRIES, ChannelKind, Device, Location, Webhook
from probes.model.hours import OpeningHours
from probes.model.networks import PROFILES, NetworkProfile
from probes.model.steps import Step
from probes.model.thresholds import JourneyLoadTest, LoadTest
from probes.model.types import Frozen, Interval, Name, Percent, Scalar, Timeout, VariableName

DEFAULT_INTERVAL: Final = 60.0
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_RETRIES: Final = 1
DEFAULT_LOCATION: Final = "local"
DEFAULT_APDEX_T: Final = 2.0
DEFAULT_AVAILABILITY: Final = 99.5
DEFAULT_LATENCY_THRESHOLD: Final = 4.0
DEFAULT_LATENCY_TARGET: Final = 95.0
DEFAULT_NETWORKS: Final = tuple(PROFILES)  # wifi, 4g, 3g

Retries = Annotated[int, Field(ge=0, le=MAX_RETRIES, strict=True)]


class SloDoc(Frozen):
    """``slo:``: any key left out comes from ``defaults.slo``."""

    availability: Percent | None = None
    latency_threshold: Timeout | None = None
    latency_target: Percent | None = None


class DefaultsDoc(Frozen):
    interval: Interval = DEFAULT_INTERVAL
    timeout: Timeout = DEFAULT_TIMEOUT
    retries: Retries = DEFAULT_RETRIES
    location: Name = DEFAULT_LOCATION
    device: Name | None = None
    slo: SloDoc = Field(default_factory=SloDoc)
    apdex_t: Timeout = DEFAULT_APDEX_T
    networks: tuple[Name, ...] = DEFAULT_NETWORKS
    alert: JourneyAlert = Field(default_factory=JourneyAlert)


class JourneyDoc(Frozen):
    name: Name
    interval: Interval | None = None
    timeout: Timeout | None = None
    retries: Retries | None = None
    device: Name | None = None
    slo: SloDoc | None = None
    apdex_t: Timeout | None = None
    locations: tuple[Name, ...] | None = None
    networks: tuple[Name, ...] | None = None
    loadtest: JourneyLoadTest | None = None
    alert: JourneyAlert | None = None
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]
    finally_: tuple[Step, ...] = Field(default=(), alias="finally")


class ChannelDoc(Frozen):
    name: Name
    kind: ChannelKind
    team: Annotated[str, StringConstraints(min_length=1)]
    runbook_url: str | None = None
    hours: OpeningHours | None = None
    journeys: Annotated[tuple[JourneyDoc, ...], Field(min_length=1)]


class ConfigDoc(Frozen):
    defaults: DefaultsDoc = Field(default_factory=DefaultsDoc)
    variables: Mapping[VariableName, Scalar] = Field(default_factory=dict)
    devices: Mapping[Name, Device] = Field(default_factory=dict)
    locations: Mapping[Name, Location | None] = Field(default_factory=dict)
    networks: Mapping[Name, NetworkProfile] = Field(default_factory=dict)
    callbacks: Mapping[Name, Webhook] = Field(default_factory=dict)
    loadtest: LoadTest | None = None
    alerting: Alerting = Field(default_factory=Alerting)
    channels: Annotated[tuple[ChannelDoc, ...], Field(min_length=1)]
