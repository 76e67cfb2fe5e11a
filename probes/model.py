"""The journey model: checks.yaml parsed once into frozen, typed objects.

Both engines interpret these objects: the asyncio engine (``probes.engine``, used by the
exporter) and the gevent engine (``loadtests/``). Generators (alerts, dashboards) read them too.
This module imports neither aiohttp nor locust, and must stay that way.

Shape::

    Config
      defaults, variables, devices
      channels: Channel(name, kind, team, runbook_url)
        journeys: Journey(name, interval, timeout, retries, device, slo, apdex_t)
          steps / finally_steps: HttpStep(name, method, url, ..., expect: Expect, capture)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from probes._paths import compile_path
from probes.durations import parse_duration

#: Names of channels, journeys, steps, devices and locations: they become metric labels and
#: ``channel/journey/step`` paths, so no slash and no spaces.
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name: TypeAlias = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: Names of variables and captures: they are written inside ``${...}``.
VARIABLE_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
VariableName: TypeAlias = Annotated[str, StringConstraints(pattern=VARIABLE_PATTERN)]
Seconds: TypeAlias = Annotated[float, BeforeValidator(parse_duration)]
Percent: TypeAlias = Annotated[float, Field(gt=0, le=100)]
Scalar: TypeAlias = str | int | float | bool

MAX_RETRIES: Final = 10
MIN_INTERVAL_SECONDS: Final = 1.0
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


class Frozen(BaseModel):
    """Base of every checks.yaml mapping: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)


# --- expectations -----------------------------------------------------------------------------

_STATUS: Final = re.compile(r"^[1-5](?:xx|\d\d)$")
STATUS_EXPECTED: Final = (
    "expected an HTTP status such as 200, a class such as 2xx, or a list of them"
)


def _status_list(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError(f"{STATUS_EXPECTED}; got an empty list")
    out: list[str] = []
    for item in items:
        text = (
            str(item).lower() if isinstance(item, int | str) and not isinstance(item, bool) else ""
        )
        if not _STATUS.match(text):
            raise ValueError(f"{STATUS_EXPECTED}; got {item!r}")
        out.append(text)
    return tuple(out)


StatusSpec: TypeAlias = Annotated[tuple[str, ...], BeforeValidator(_status_list)]


def status_matches(spec: tuple[str, ...], code: int) -> bool:
    """Whether ``code`` is allowed by a status spec such as ``("200", "3xx")``."""
    text = str(code)
    return any(s == text or (s.endswith("xx") and s[0] == text[0] and len(text) == 3) for s in spec)


def _compile_regex(value: object) -> object:
    if not isinstance(value, str):
        return value  # not text: the str type reports it
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return value


Regex: TypeAlias = Annotated[str, BeforeValidator(_compile_regex)]
OPERATORS: Final = ("equals", "contains", "exists", "regex", "lt", "le", "gt", "ge")


class Matcher(Frozen):
    """What a value must satisfy; every operator given must hold.

    ``equals`` compares JSON values; ``contains`` is a substring for text, an element for lists
    and a key for objects, and one of the values selected by a JSON path that can select several
    (``$.items[*].id``); ``exists: false`` asserts absence; ``lt le gt ge`` compare numbers.
    """

    equals: Any = None
    contains: Any = None
    exists: bool | None = None
    regex: Regex | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Matcher:
        if not self.operators():
            raise ValueError(f"expected at least one of: {', '.join(OPERATORS)}")
        return self

    def operators(self) -> list[tuple[str, Any]]:
        """The operators that were written, in a stable order, with their operands."""
        return [(op, getattr(self, op)) for op in OPERATORS if op in self.model_fields_set]


def _matcher_shorthand(value: object) -> object:
    """A bare value under ``headers:`` means ``equals``."""
    return value if isinstance(value, Mapping) else {"equals": value}


HeaderMatcher: TypeAlias = Annotated[Matcher, BeforeValidator(_matcher_shorthand)]


def _json_path(value: object) -> object:
    if isinstance(value, str):  # anything else, the str type reports
        compile_path(value)
    return value


JsonPath: TypeAlias = Annotated[str, BeforeValidator(_json_path)]


class JsonAssertion(Matcher):
    """``{path: $.token, exists: true}``: a JSON-path assertion on the response body."""

    path: JsonPath


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class BodyExpectation(Frozen):
    """Text the response body must contain, or regular expressions it must match."""

    contains: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    regex: Annotated[tuple[Regex, ...], BeforeValidator(_one_or_many)] = ()


class Expect(Frozen):
    """What a good response looks like. With no ``status`` given, any 2xx passes."""

    status: StatusSpec = ("2xx",)
    max_duration: Seconds | None = None
    headers: Mapping[str, HeaderMatcher] = Field(default_factory=dict)
    body: BodyExpectation | None = None
    json_: tuple[JsonAssertion, ...] = Field(default=(), alias="json")


class Capture(Frozen):
    """Where a later-steps variable comes from: exactly one of a JSON path, a header or a regex.

    A regex captures its first group, or the whole match when it has no group.
    """

    json_: JsonPath | None = Field(default=None, alias="json")
    header: str | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Capture:
        given = [k for k in ("json", "header", "regex") if getattr(self, _attr(k)) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of json, header, regex; got {', '.join(given) or 'none'}"
            )
        return self


def _attr(key: str) -> str:
    return "json_" if key == "json" else key


# --- steps ------------------------------------------------------------------------------------

Method: TypeAlias = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class HttpStep(Frozen):
    """One HTTP exchange. Strings may hold ``${...}`` templates.

    Example::

        - name: login
          method: POST
          url: ${base_url}/app/v1/login
          json: {username: ${username}, password: ${password}}
          expect: {status: 200, json: [{path: $.token, exists: true}]}
          capture: {token: {json: $.token}}
    """

    name: Name
    method: Annotated[Method, BeforeValidator(_upper)] = "GET"
    url: str
    headers: Mapping[str, str] = Field(default_factory=dict)
    query: Mapping[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json")
    form: Mapping[str, Scalar] | None = None
    body: str | None = None
    timeout: Seconds | None = None
    follow_redirects: bool = True
    expect: Expect = Field(default_factory=Expect)
    capture: Mapping[VariableName, Capture] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^(https?://|\$\{)", value):
            raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpStep:
        given = [k for k in ("json", "form", "body") if k in self._set_keys()]
        if len(given) > 1:
            raise ValueError(f"expected at most one of json, form, body; got {', '.join(given)}")
        return self

    def _set_keys(self) -> set[str]:
        return {("json" if f == "json_" else f) for f in self.model_fields_set}

    @property
    def has_json_body(self) -> bool:
        """Whether ``json:`` was written (it may legitimately be ``null``)."""
        return "json_" in self.model_fields_set


#: Every step kind. Issue-by-issue this becomes a union (websocket, await, smtp, tcp, dns).
Step: TypeAlias = HttpStep


# --- resolved objects -------------------------------------------------------------------------


class Device(Frozen):
    """A mobile client profile, applied to every request of a journey that uses it."""

    user_agent: str
    headers: Mapping[str, str] = Field(default_factory=dict)


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
