"""Engine-neutral pieces of running a journey: a run's variable scope, and a step's request.

Both engines call these, so templating means the same thing under asyncio and under gevent.
An engine that starts thousands of runs a second (a load test) can work out once what is the
same in every run: ``Scopes`` makes a journey's scopes, ``constant_request`` renders a step
that names no variable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from probes.errors import MissingVariable
from probes.model.config import Device, Journey, Location
from probes.model.steps import HttpStep, SmtpStep, Step, TcpStep, Tls, WebSocketStep
from probes.model.templating import render, render_str, scan
from probes.model.types import Scalar


class Scope(dict[str, object]):
    """The variables of one run attempt: built-ins, config variables, then captures.

    ``uuid`` and ``timestamp`` are computed afresh at each use.
    """

    def __missing__(self, key: str) -> object:
        if key == "uuid":
            return str(uuid.uuid4())
        if key == "timestamp":
            return int(time.time())
        raise KeyError(key)


def new_scope(
    journey: Journey,
    variables: Mapping[str, Scalar],
    *,
    location: str,
    coordinates: Location | None = None,
) -> Scope:
    """A fresh scope for one attempt of ``journey``, with a new ``run_id``."""
    return _scope(journey, variables, location, coordinates, run_id=uuid.uuid4().hex)


def _scope(
    journey: Journey,
    variables: Mapping[str, Scalar],
    location: str,
    coordinates: Location | None,
    *,
    run_id: str | None,
) -> Scope:
    scope = Scope(journey=journey.name, channel=journey.channel, location=location)
    if run_id is not None:
        scope["run_id"] = run_id
    if coordinates is not None:
        scope["location.lat"] = coordinates.lat
        scope["location.lon"] = coordinates.lon
    for name, value in variables.items():
        scope[name] = render(value, scope)
    return scope


class Scopes:
    """Makes the scopes of one journey's attempts, as ``new_scope`` does, with the work that is
    the same for every attempt done once.

    >>> from probes.model import parse_config
    >>> config = parse_config('''
    ... variables: {base: "http://127.0.0.1:8900"}
    ... channels:
    ...   - {name: app, kind: app, team: mobile, journeys: [{name: login, steps: [
    ...       {name: home, url: "${base}/?run=${run_id}"}]}]}
    ... ''', file="checks.yaml", environ={})
    >>> scopes = Scopes(config.journeys[0], config.variables, location="paris")
    >>> first, second = scopes.new(), scopes.new()
    >>> first["journey"], first["base"], first["run_id"] != second["run_id"]
    ('login', 'http://127.0.0.1:8900', True)

    When no variable holds a template, the variables are rendered once and copied. With
    ``run_id=False`` a scope has no ``run_id``: for an engine whose steps read the scope only
    through templates, and a journey none of whose templates names it (see ``referenced``).
    """

    def __init__(
        self,
        journey: Journey,
        variables: Mapping[str, Scalar],
        *,
        location: str,
        coordinates: Location | None = None,
        run_id: bool = True,
    ) -> None:
        self._journey = journey
        self._variables = variables
        self._location = location
        self._coordinates = coordinates
        self._base: Scope | None = None
        if not any(isinstance(v, str) and "$" in v for v in variables.values()):
            self._base = _scope(journey, variables, location, coordinates, run_id=None)
        # A variable named run_id replaces the built-in, as in new_scope.
        self._run_id = run_id and (self._base is None or "run_id" not in self._base)

    def new(self) -> Scope:
        """A fresh scope for one attempt, with a new ``run_id`` (unless left out)."""
        run_id = uuid.uuid4().hex if self._run_id else None
        if self._base is None:
            return _scope(
                self._journey, self._variables, self._location, self._coordinates, run_id=run_id
            )
        scope = Scope(self._base)
        if run_id is not None:
            scope["run_id"] = run_id
        return scope


def referenced(journey: Journey, variables: Mapping[str, Scalar]) -> frozenset[str]:
    """Every name a template of ``journey`` refers to: in its steps, its ``finally`` steps, its
    device profile and the variables. ``${env:...}`` references are not names."""
    documents: list[object] = [s.model_dump(by_alias=True) for s in journey.steps]
    documents += [s.model_dump(by_alias=True) for s in journey.finally_steps]
    if journey.device is not None:
        documents.append(journey.device.model_dump(by_alias=True))
    documents.append(dict(variables))
    names: set[str] = set()
    for document in documents:
        for text in _strings(document):
            names.update(ref.name for ref in scan(text)[0] if not ref.env)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Request:
    """A step's request with every template filled in, ready for any HTTP client."""

    method: str
    url: str
    headers: dict[str, str]
    params: list[tuple[str, str]]
    json: Any = None
    has_json: bool = False
    data: str | dict[str, str] | None = None


def render_request(step: HttpStep, scope: Mapping[str, object], device: Device | None) -> Request:
    """The request ``step`` makes in ``scope``; raises MissingVariable when a value is missing.

    The device profile's User-Agent and headers come first, so a step can override them.
    """
    headers = render_headers(step.headers, scope, device)
    params: list[tuple[str, str]] = []
    for key, value in step.query.items():
        for item in value if isinstance(value, list) else [value]:
            params.append((key, render_str(item, scope) if isinstance(item, str) else _text(item)))
    data: str | dict[str, str] | None = None
    if step.form is not None:
        data = {
            k: render_str(v, scope) if isinstance(v, str) else _text(v)
            for k, v in step.form.items()
        }
    elif step.body is not None:
        data = render_str(step.body, scope)
    return Request(
        method=step.method,
        url=render_str(step.url, scope),
        headers=headers,
        params=params,
        json=render(step.json_, scope) if step.has_json_body else None,
        has_json=step.has_json_body,
        data=data,
    )


#: No variables at all: rendering against it fails on the first template that names one.
_NO_VARIABLES: Final[Mapping[str, object]] = MappingProxyType({})


def constant_request(step: HttpStep, device: Device | None) -> Request | None:
    """The request ``step`` makes in every scope, or None when a template in it (or in the
    device profile) names a variable, ``uuid`` or ``timestamp`` included.

    An engine may render it once and send it on every run. The same ``Request`` is then shared
    by every run: its headers, query, form and JSON must be read, never changed.
    """
    try:
        return render_request(step, _NO_VARIABLES, device)
    except MissingVariable:
        return None


def render_headers(
    own: Mapping[str, str], scope: Mapping[str, object], device: Device | None
) -> dict[str, str]:
    """A step's headers over its device profile's (User-Agent first), names compared ignoring
    case: ``{"x-platform": "ios"}`` replaces the device's ``X-Platform``."""
    headers: dict[str, str] = {}
    if device is None and not own:
        return headers
    if device is not None:
        headers["User-Agent"] = render_str(device.user_agent, scope)
        layers = [device.headers, own]
    else:
        layers = [own]
    for layer in layers:
        for name, value in layer.items():
            for same in [k for k in headers if k.lower() == name.lower()]:
                del headers[same]
            headers[name] = render_str(value, scope)
    return headers


def require(step: Step, scope: Mapping[str, object]) -> None:
    """Raise MissingVariable if any template of ``step`` (request or ``expect``) has no value.

    Engines call it before a ``finally`` step, so cleanup that needs a value an earlier,
    failed step never captured is skipped rather than sent half-rendered. A conversation's
    lines may use what its earlier lines capture.
    """
    known = set(scope) | _DYNAMIC
    parts: list[tuple[dict[str, Any], set[str]]]
    if isinstance(step, WebSocketStep):
        parts = [(step.model_dump(by_alias=True, exclude={"name", "conversation"}), set())]
        parts += [
            (line.model_dump(by_alias=True, exclude={"capture"}), set(line.capture))
            for line in step.conversation
        ]
    else:
        parts = [(step.model_dump(by_alias=True, exclude={"name", "capture"}), set())]
    for document, captured in parts:
        for text in _strings(document):
            for ref in scan(text)[0]:
                if not ref.env and ref.name not in known:
                    raise MissingVariable(ref.name)
        known |= captured


_DYNAMIC: Final = frozenset({"uuid", "timestamp"})


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_TLS_FIELDS: Final = ("ca_file", "cert_file", "key_file", "server_name")


def render_tls(step: Step, scope: Mapping[str, object]) -> Step:
    """``step`` with the templates of its ``tls`` options filled in (file paths, server name).

    Runners then read plain values wherever they use them: to build the SSL context, to verify
    the server's name, and in their messages.
    """
    if isinstance(step, HttpStep | WebSocketStep) and step.tls is not None:
        tls = _rendered(step.tls, scope)
        return step if tls is step.tls else step.model_copy(update={"tls": tls})
    if isinstance(step, TcpStep) and step.tcp.tls is not None:
        tls = _rendered(step.tcp.tls, scope)
        if tls is step.tcp.tls:
            return step
        return step.model_copy(update={"tcp": step.tcp.model_copy(update={"tls": tls})})
    if isinstance(step, SmtpStep) and step.smtp.tls is not None:
        tls = _rendered(step.smtp.tls, scope)
        if tls is step.smtp.tls:
            return step
        return step.model_copy(update={"smtp": step.smtp.model_copy(update={"tls": tls})})
    return step


def _rendered(options: Tls, scope: Mapping[str, object]) -> Tls:
    values = {f: getattr(options, f) for f in _TLS_FIELDS}
    if not any(isinstance(v, str) and "${" in v for v in values.values()):
        return options
    return options.model_copy(
        update={f: render_str(v, scope) for f, v in values.items() if isinstance(v, str)}
    )
