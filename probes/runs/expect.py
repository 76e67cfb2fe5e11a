"""Checking a response against a step's ``expect`` and taking its ``capture`` values.

Pure functions over a ``Response``: the asyncio engine and the gevent (Locust) engine build a
Response from their own client's answer and call the same code, so they reach the same verdict.

>>> r = Response(status=503, headers={}, body=b"", duration=0.1)
>>> check(Expect.model_validate({"status": [200, "3xx"]}), r, {}).message
'expected status 200 or 3xx, got 503'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

from probes.model.durations import format_duration
from probes.model.jsonpath import find_all, selects_one
from probes.model.steps import Capture, Expect, JsonAssertion, Matcher, status_matches
from probes.model.templating import render, render_str
from probes.runs.results import Failure, Reason

_MISSING: Final = object()
_SHOWN_CHARS: Final = 80


@dataclass(slots=True)
class Response:
    """An HTTP answer as both engines see it. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    duration: float
    _json: Any = field(default=_MISSING, repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        if self._json is _MISSING:
            self._json = json.loads(self.body)
        return self._json


def check(expect: Expect, response: Response, scope: Mapping[str, object]) -> Failure | None:
    """The first expectation ``response`` breaks, or None when it meets them all."""
    if not status_matches(expect.status, response.status):
        wanted = " or ".join(expect.status)
        return Failure(Reason.HTTP_STATUS, f"expected status {wanted}, got {response.status}")
    for name, matcher in expect.headers.items():
        value = response.headers.get(name.lower())
        problem = _match(matcher, [] if value is None else [value], scope, kind="header")
        if problem:
            return Failure(Reason.ASSERTION, f"header {name}: {problem}")
    if expect.body is not None:
        text = response.text
        for needle in expect.body.contains:
            wanted_text = render_str(needle, scope)
            if wanted_text not in text:
                return Failure(Reason.ASSERTION, f"body: expected to contain {wanted_text!r}")
        for written in expect.body.regex:
            pattern = render_str(written, scope)
            try:
                matched = re.search(pattern, text)
            except re.error as exc:  # a templated value made it invalid
                return Failure(Reason.ASSERTION, f"body: {_bad_regex(pattern, exc)}")
            if not matched:
                return Failure(Reason.ASSERTION, f"body: expected to match /{pattern}/")
    for assertion in expect.json_:
        try:
            document = response.json()
        except ValueError:
            path = render_str(assertion.path, scope)
            return Failure(Reason.ASSERTION, f"{path}: body is not JSON ({_head(response)})")
        problem = json_problem(assertion, document, scope)
        if problem:
            return Failure(Reason.ASSERTION, problem)
    if expect.max_duration is not None and response.duration > expect.max_duration:
        return Failure(
            Reason.SLOW,
            f"took {format_duration(round(response.duration, 3))}, "
            f"expected at most {format_duration(expect.max_duration)}",
        )
    return None


def json_problem(
    assertion: JsonAssertion, document: object, scope: Mapping[str, object]
) -> str | None:
    """Why ``document`` breaks ``assertion``, or None: ``'$.token: expected to exist'``.

    The one JSON-path check of every step kind: an HTTP body, a chat message, a webhook event.
    """
    path = render_str(assertion.path, scope)
    try:
        found = find_all(path, document)
    except ValueError as exc:  # a captured value made the path invalid
        return f"{path}: {exc}"
    problem = _match(assertion, found, scope, kind="json", many=not selects_one(path))
    return f"{path}: {problem}" if problem else None


_SYMBOLS: Final = {"equals": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_BRIEF_CHARS: Final = 16


def describe(assertion: JsonAssertion, scope: Mapping[str, object]) -> str:
    """A short human form of ``assertion``, for messages: ``$.type == 'bot_reply'``.

    Long operands are cut (``$.Body contains '3f9a0c2e41b7d8e5…'``): enough to recognise a
    run id, short enough for a metric's message.
    """
    path = render_str(assertion.path, scope)
    parts: list[str] = []
    for op, operand in assertion.operators():
        if op == "exists":
            parts.append(f"{path} {'exists' if operand else 'is absent'}")
            continue
        value = render(operand, scope)
        if op == "regex":
            shown = f"/{_cut(_plain(value))}/"
        elif isinstance(value, str):
            shown = repr(_cut(value))
        else:
            shown = _cut(json.dumps(value, default=str))
        parts.append(f"{path} {_SYMBOLS.get(op, op)} {shown}")
    return " and ".join(parts)


def _cut(text: str) -> str:
    return text if len(text) <= _BRIEF_CHARS else text[:_BRIEF_CHARS] + "…"


def judge(
    expect: Expect,
    captures: Mapping[str, Capture],
    response: Response,
    scope: MutableMapping[str, object],
) -> Failure | None:
    """How every engine decides an HTTP step: the expectations first, then, when they hold,
    the captures, which go into ``scope`` for later steps."""
    failure = check(expect, response, scope)
    if failure is None:
        values, failure = take(captures, response)
        scope.update(values)
    return failure


def take(
    captures: Mapping[str, Capture], response: Response
) -> tuple[dict[str, object], Failure | None]:
    """The values ``captures`` name, or the first one that could not be taken."""
    values: dict[str, object] = {}
    for name, capture in captures.items():
        if capture.json_ is not None:
            try:
                found = find_all(capture.json_, response.json())
            except ValueError:
                return values, Failure(
                    Reason.CAPTURE, f"{name}: body is not JSON ({_head(response)})"
                )
            if not found:
                return values, Failure(Reason.CAPTURE, f"{name}: {capture.json_} matched nothing")
            values[name] = found[0]
        elif capture.header is not None:
            header = response.headers.get(capture.header.lower())
            if header is None:
                return values, Failure(Reason.CAPTURE, f"{name}: no {capture.header} header")
            values[name] = header
        elif capture.regex is not None:
            match = re.search(capture.regex, response.text)
            if not match:
                return values, Failure(Reason.CAPTURE, f"{name}: /{capture.regex}/ matched nothing")
            values[name] = match.group(1) if match.re.groups else match.group(0)
    return values, None


def _head(response: Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return repr(text[:_SHOWN_CHARS] + ("..." if len(text) > _SHOWN_CHARS else ""))


def _match(
    matcher: Matcher,
    found: list[object],
    scope: Mapping[str, object],
    *,
    kind: str,
    many: bool = False,
) -> str | None:
    """Why ``found`` (the values selected) breaks ``matcher``, or None.

    ``many``: the JSON path can select several values, so ``contains`` looks among them even
    when only one was found (one id ``'T-12'`` does not contain ``'T-1'``).
    """
    for op, operand in matcher.operators():
        if op == "exists":
            if bool(found) != operand:
                return (
                    "expected to exist" if operand else f"expected not to exist, got {_show(found)}"
                )
            continue
        if not found:
            return "expected to exist" if kind == "json" else "missing"
        if many and op == "contains":
            value: object = found
        else:
            value = found[0] if len(found) == 1 else found
        operand = render(operand, scope)
        problem = _compare(op, value, operand)
        if problem:
            return problem
    return None


def _compare(op: str, value: object, operand: object) -> str | None:
    if op == "equals":
        same = value == operand and isinstance(value, bool) == isinstance(operand, bool)
        if not same and isinstance(value, str) and not isinstance(operand, str):
            same = value == _plain(operand)  # headers are text: 'equals: 5' matches '5'
        return None if same else f"expected {_show(operand)}, got {_show(value)}"
    if op == "contains":
        if isinstance(value, str):
            ok = str(operand) in value
        elif isinstance(value, list | dict):
            ok = operand in value
        else:
            ok = False
        return None if ok else f"expected to contain {_show(operand)}, got {_show(value)}"
    if op == "regex":
        pattern = _plain(operand)
        try:
            ok = re.search(pattern, _plain(value)) is not None
        except re.error as exc:  # a templated value made it invalid
            return _bad_regex(pattern, exc)
        return None if ok else f"expected to match /{pattern}/, got {_show(value)}"
    number = _number(value)
    if number is None:
        return f"expected a number, got {_show(value)}"
    assert isinstance(operand, int | float)
    symbol, ok = {
        "lt": ("<", number < operand),
        "le": ("<=", number <= operand),
        "gt": (">", number > operand),
        "ge": (">=", number >= operand),
    }[op]
    return None if ok else f"expected {symbol} {operand:g}, got {_show(value)}"


def _bad_regex(pattern: str, exc: re.error) -> str:
    return f"/{pattern}/ is not a valid regular expression ({exc})"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _show(value: object) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
