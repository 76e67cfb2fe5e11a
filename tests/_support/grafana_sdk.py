"""Grafana's own types, made strict: does ``grafana-foundation-sdk`` (Grafana's generated
models of the dashboard schema, pinned to a Grafana 11.6 build) accept a dashboard JSON model?

The SDK's ``Dashboard.from_json`` rejects nothing: it drops every key it does not know, keeps
values without looking at their types, and keeps a panel of an unknown type (the Angular
``graph``) or a query of an unknown datasource as an untyped bag. So ``rejections`` asks more
of it:

* a round trip (``from_json``, then the SDK's JSON encoder) must give back every key path of
  the original, with the same value: a dropped or changed path is a field the types reject;
* every value the SDK decoded must have the type its annotation names (an enum's member, an
  ``int``, a ``Literal``), nested objects included, and nested dicts the SDK left undecoded
  under a typed field (panel links, transformations) are decoded with that type and checked
  the same way;
* every panel type must be one the SDK registers a panel plugin for, and every query's
  datasource type one it registers a query type for.

>>> rejections({"uid": "x", "schemaVersion": 41, "panels": [], "templating": {"list": []},
...             "annotations": {"list": []}})
[]
>>> rejections({"uid": "x", "schemaVersion": 41, "colour": "red"})
['x: colour was dropped by the round trip']
"""

from __future__ import annotations

import copy
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

from grafana_foundation_sdk.cog import runtime, variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

#: Where the SDK's models live: objects of these modules are checked field by field.
SDK: Final = "grafana_foundation_sdk."


@functools.cache
def _registered() -> runtime.Runtime:
    register_default_plugins()
    return runtime.Runtime()


def panel_types() -> frozenset[str]:
    """The panel plugins the SDK knows (``row`` aside)."""
    return frozenset(_registered().panelcfg_variants)


def datasource_types() -> frozenset[str]:
    """The datasources whose queries the SDK knows."""
    return frozenset(_registered().dataquery_variants)


def roundtrip(data: Mapping[str, Any], model: type[Any] = Dashboard) -> tuple[Any, Any]:
    """``data`` decoded by the SDK's ``model``, and encoded back to plain JSON."""
    _registered()
    decoded = model.from_json(copy.deepcopy(dict(data)))
    return decoded, json.loads(json.dumps(decoded, cls=JSONEncoder))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def lost(original: Any, returned: Any, path: str = "") -> list[str]:
    """Key paths of ``original`` that ``returned`` lacks or holds a different value at."""
    here = path or "the dashboard"
    if isinstance(original, Mapping):
        if not isinstance(returned, Mapping):
            return [f"{here} became {returned!r}"]
        problems = []
        for key, value in original.items():
            inner = f"{path}.{key}" if path else str(key)
            if key not in returned:
                problems.append(f"{inner} was dropped by the round trip")
            else:
                problems += lost(value, returned[key], inner)
        return problems
    if isinstance(original, list):
        if not isinstance(returned, list) or len(returned) != len(original):
            return [f"{here} changed from a list of {len(original)} to {returned!r}"]
        return [p for i, v in enumerate(original) for p in lost(v, returned[i], f"{path}[{i}]")]
    if not _same(original, returned):
        return [f"{here} changed from {original!r} to {returned!r}"]
    return []


_HINTS: Final[dict[type[object], dict[str, Any]]] = {}


def _hints(cls: type[object]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _is_sdk(value: Any) -> bool:
    return type(value).__module__.startswith(SDK)


def _sdk_class(hint: Any) -> bool:
    return isinstance(hint, type) and hint.__module__.startswith(SDK) and hasattr(hint, "from_json")


def type_errors(value: Any, hint: Any = Any, path: str = "") -> list[str]:
    """Where ``value`` (an SDK object, or what it holds) does not have the annotated type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        arms = [arm for arm in args if arm is not type(None)]
        for arm in arms:  # an object the SDK decoded as one arm answers to that arm
            if isinstance(arm, type) and _is_sdk(value) and isinstance(value, arm):
                return type_errors(value, arm, path)
        tries = [type_errors(value, arm, path) for arm in arms]
        if any(not errors for errors in tries):
            return []
        return tries[0] if len(tries) == 1 else [f"{path}: {value!r} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is none of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        return [
            p for i, item in enumerate(value) for p in type_errors(item, args[0], f"{path}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        return [p for k, item in value.items() for p in type_errors(item, args[1], f"{path}.{k}")]
    if hint is Any or hint is object:
        return _fields(value, path) if _is_sdk(value) else []
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            hint(value)
        except ValueError:
            return [f"{path}: {value!r} is none of {[m.value for m in hint]}"]
        return []
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r}"]
    if hint is variants.Dataquery:
        if isinstance(value, runtime.UnknownDataquery):
            return [f"{path}: a query of no datasource type the SDK knows: {value.data}"]
        return _fields(value, path) if isinstance(value, hint) else [f"{path}: not a query"]
    if _sdk_class(hint):
        if isinstance(value, hint):
            return _fields(value, path)
        if isinstance(value, dict):  # a typed field the SDK's from_json left undecoded
            decoded, returned = roundtrip(value, hint)
            return lost(value, returned, path) + _fields(decoded, path)
        return [f"{path}: expected {hint.__name__}, got {value!r}"]
    return [] if isinstance(hint, type) and isinstance(value, hint) else [f"{path}: {value!r}"]


def _fields(obj: Any, path: str) -> list[str]:
    """``type_errors`` of each annotated attribute of an SDK object."""
    problems = []
    for attribute, hint in _hints(type(obj)).items():
        if hasattr(obj, attribute):
            inner = f"{path}.{attribute}" if path else attribute
            problems += type_errors(getattr(obj, attribute), hint, inner)
    return problems


def unknown_plugins(dashboard: Mapping[str, Any]) -> list[str]:
    """Panels of a type the SDK has no panel plugin for (the Angular ``graph``, say), and
    queries of a datasource type it does not know."""
    uid = dashboard.get("uid", "?")
    problems = []
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            kind = inner.get("type")
            if kind != "row" and kind not in panel_types():
                problems.append(f"{uid}: panel {inner.get('id')} has the unknown type {kind!r}")
            for target in inner.get("targets") or []:
                datasource = target.get("datasource") or inner.get("datasource") or {}
                kind = datasource.get("type") if isinstance(datasource, Mapping) else None
                if kind not in datasource_types():
                    problems.append(
                        f"{uid}: panel {inner.get('id')} queries the unknown datasource {kind!r}"
                    )
    return problems


def rejections(dashboard: Mapping[str, Any]) -> list[str]:
    """Everything Grafana's types reject in ``dashboard`` (see the module's text)."""
    uid = dashboard.get("uid", "?")
    try:
        decoded, returned = roundtrip(dashboard)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return [f"{uid}: the SDK cannot decode it: {error!r}", *unknown_plugins(dashboard)]
    problems = [f"{uid}: {p}" for p in lost(dashboard, returned)]
    problems += [f"{uid}: {p}" for p in type_errors(decoded, Dashboard)]
    return problems + unknown_plugins(dashboard)
