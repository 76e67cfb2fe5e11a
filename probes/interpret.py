"""Engine-neutral pieces of running a journey: a run's variable scope, and a step's request.

Both engines call these, so templating means the same thing under asyncio and under gevent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from probes._types import Scalar
from probes.errors import MissingVariable
from probes.model import Device, Journey, Location
from probes.steps import HttpStep, SmtpStep, Step, TcpStep, Tls, WebSocketStep
from probes.templating import render, render_str, scan


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
    scope = Scope(
        run_id=uuid.uuid4().hex,
        journey=journey.name,
        channel=journey.channel,
        location=location,
    )
    if coordinates is not None:
        scope["location.lat"] = coordinates.lat
        scope["location.lon"] = coordinates.lon
    for name, value in variables.items():
        scope[name] = render(value, scope)
    return scope


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


def render_headers(
    own: Mapping[str, str], scope: Mapping[str, object], device: Device | None
) -> dict[str, str]:
    """A step's headers over its device profile's (User-Agent first), names compared ignoring
    case: ``{"x-platform": "ios"}`` replaces the device's ``X-Platform``."""
    headers: dict[str, str] = {}
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
