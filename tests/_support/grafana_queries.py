"""What Grafana does to a dashboard's queries before Prometheus sees them, for the no-dead-panels
test (tests/dashboards/test_live.py).

``plan`` turns a dashboard into the queries Grafana would send when it is opened at its default
time range: the template variables resolved through Prometheus's own API, as Grafana resolves
``label_values(...)``, each set to All; repeated rows and panels repeated once per value; the
built-in variables worked out for each panel; and each target run as an instant query at the
end of the range, or a range query over it. ``run`` sends one and says whether it came back
with data.

Grafana's rules, followed here (Grafana 11, its Prometheus data source, whose *scrape interval*
setting is Prometheus's):

* ``$__interval``: the panel's time range over its max data points (its width in pixels when
  unset), rounded to a clear step (``roundInterval`` in Grafana's ``rangeutil.ts``), and never
  below the target's min step, or else the data source's scrape interval. Range queries step by
  it.
* ``$__rate_interval``: max(``$__interval`` + scrape interval, 4 x scrape interval).
* ``$__range``: the time range in whole seconds, such as ``21600s``.
* A variable with several values, or one that can be All, is written as a regex alternation
  ``(a|b)``, each value escaped as Grafana's ``prometheusSpecialRegexEscape`` does, and as
  ``allValue`` when that is set; one value of a repeated row is written alone. A name Grafana
  does not know (``$1`` in ``label_replace``, say) stays as it is.

>>> formatted(Selection(("app", "sms"), multi=True), None)
'(app|sms)'
>>> formatted(Selection(("v1.2",), multi=True), None)
'v1\\\\\\\\.2'
>>> [interval(6 * 3600, points, 1.0) for points in (1000, 1850, 10_000)]
[20.0, 10.0, 2.0]
>>> rate_interval(20.0, 1.0), rate_interval(0.5, 1.0)
(21.0, 4.0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from democare.stack import duration
from tests._support.stack import PrometheusError, api

#: Grafana sizes a panel's max data points by its width in pixels: on a full-HD screen the
#: dashboard grid's 24 columns share about 1,900 of them.
SCREEN_PIXELS: Final = 1900
GRID_COLUMNS: Final = 24
#: Grafana's clear steps (``roundInterval``): below the first bound, the step beside it.
ROUNDED: Final = (
    (0.015, 0.01),
    (0.035, 0.02),
    (0.075, 0.05),
    (0.15, 0.1),
    (0.35, 0.2),
    (0.75, 0.5),
    (1.5, 1.0),
    (3.5, 2.0),
    (7.5, 5.0),
    (12.5, 10.0),
    (17.5, 15.0),
    (25.0, 20.0),
    (45.0, 30.0),
    (90.0, 60.0),
    (210.0, 120.0),
    (450.0, 300.0),
    (750.0, 600.0),
    (1050.0, 900.0),
    (1500.0, 1200.0),
    (2700.0, 1800.0),
    (5400.0, 3600.0),
    (9000.0, 7200.0),
    (16200.0, 10800.0),
    (32400.0, 21600.0),
    (86400.0, 43200.0),
    (604800.0, 86400.0),
    (1814400.0, 604800.0),
    (3628800.0, 2592000.0),
)
YEAR_SECONDS: Final = 31_536_000.0
#: Grafana's units of time (``now-6h``, a panel's ``timeFrom: 30d``).
UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "M": 2_592_000.0,
    "y": YEAR_SECONDS,
}
GRAFANA_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)")
#: ``$name``, ``[[name]]``, ``[[name:format]]``, ``${name}``, ``${name:format}`` (Grafana's
#: ``variableRegex``).
REFERENCE: Final = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.[^:}]+)?(?::([^}]+))?\}"
)
LABEL_VALUES: Final = re.compile(r"^\s*label_values\s*\((.*)\)\s*$", re.DOTALL)
ALL: Final = "$__all"
#: How ``run`` begins its answer when Prometheus refused the query.
REFUSED: Final = "Prometheus refused it"
#: What Grafana's ``prometheusSpecialRegexEscape`` puts a double backslash before.
SPECIAL: Final = re.compile(r"[$^*{}\[\]'+?.()|]")


class GrafanaError(Exception):
    """A dashboard asks for something Grafana would not do, or this emulation does not (a
    variable query other than ``label_values``, an absolute time range)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The values a variable is set to, and how Grafana writes them into a query."""

    values: tuple[str, ...]
    multi: bool
    """Multi-value or include-All: written as a regex alternation."""
    all_value: str | None = None
    """The variable's ``allValue``, written instead of the values when All is chosen."""


Target = tuple[str, int | None, str, str, bool]
"""A panel's target: dashboard uid, panel id and title, refId, and instant (or range)."""


@dataclass(frozen=True, slots=True)
class Query:
    """One query a panel sends, with its variables substituted, and when it is run."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool
    start: float
    end: float
    step: float
    empty_by_design: bool
    """The panel shows a text instead of "No data" (``fieldConfig.defaults.noValue``): it may
    be empty on a healthy system, or where it does not apply."""
    copy: str = ""
    """Which copy of a repeated panel: ``journey=login``; empty if it is not repeated."""
    row: str = ""
    """The title of the panel's row, as written (``$channel / $journey``)."""
    panel_id: int | None = None

    @property
    def target(self) -> Target:
        """The panel target the query comes from, the same for every copy of the panel."""
        return self.dashboard, self.panel_id, self.panel, self.ref_id, self.instant

    @property
    def identity(self) -> tuple[Target, str]:
        """This copy of the panel target."""
        return self.target, self.copy

    def describe(self) -> str:
        """Where the query comes from, and what was sent."""
        how = "instant" if self.instant else f"range, step {duration(self.step)}"
        row = f" / row {self.row!r}" if self.row else ""
        copy = f" [{self.copy}]" if self.copy else ""
        return f"{self.dashboard}{row} / {self.panel!r}{copy} / {self.ref_id} ({how}): {self.expr}"

    def params(self) -> list[tuple[str, str]]:
        if self.instant:
            return [("query", self.expr), ("time", f"{self.end:.3f}")]
        return [
            ("query", self.expr),
            ("start", f"{self.start:.3f}"),
            ("end", f"{self.end:.3f}"),
            ("step", f"{self.step:g}"),
        ]


@dataclass(frozen=True, slots=True)
class Plan:
    """A dashboard's queries, and what stopped some panels before any query was sent (a
    variable with no values, say)."""

    queries: list[Query] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


LabelValues = Callable[[str, str | None, float, float], list[str]]
"""``(label, selector or None, start, end)``: the values of ``label`` on the series that match
``selector`` within the range, as Prometheus's API gives them."""


def plan(
    dashboard: Mapping[str, Any], *, prometheus: str, now: float, scrape_seconds: float
) -> Plan:
    """The queries Grafana sends for ``dashboard`` when it is opened at ``now`` with every
    variable set to All, against ``prometheus`` (whose API resolves the variables)."""
    return plan_with(
        dashboard,
        label_values=lambda *args: label_values(prometheus, *args),
        now=now,
        scrape_seconds=scrape_seconds,
    )


def plan_with(
    dashboard: Mapping[str, Any],
    *,
    label_values: LabelValues,
    now: float,
    scrape_seconds: float,
) -> Plan:
    """``plan``, the variables resolved by ``label_values``."""
    uid = str(dashboard.get("uid") or dashboard.get("title"))
    start, end = time_range(dashboard.get("time", {}), now)
    out = Plan()
    scope = resolve(dashboard, label_values, start, end, out.problems)
    for panel, repeats, row in panels(dashboard):
        for values in _repetitions(repeats, scope, out.problems, panel):
            copy = ", ".join(f"{name}={value.values[0]}" for name, value in values.items())
            where = _Where(uid, row, panel, copy)
            _panel_queries(where, {**scope, **values}, now, (start, end), scrape_seconds, out)
    return out


@dataclass(frozen=True, slots=True)
class _Where:
    """A copy of a panel: its dashboard, its row's title, and its repeated values."""

    dashboard: str
    row: str
    panel: Mapping[str, Any]
    copy: str


def _panel_queries(
    where: _Where,
    scope: Mapping[str, Selection],
    now: float,
    dashboard_range: tuple[float, float],
    scrape_seconds: float,
    out: Plan,
) -> None:
    uid, panel = where.dashboard, where.panel
    title = str(panel.get("title", f"panel {panel.get('id')}"))
    try:
        start, end = panel_range(panel, now, *dashboard_range)
    except GrafanaError as exc:
        out.problems.append(f"{uid} / {title!r}: {exc}")
        return
    empty_by_design = "noValue" in panel.get("fieldConfig", {}).get("defaults", {})
    points = panel.get("maxDataPoints") or _pixels(panel)
    for target in panel.get("targets", []):
        if target.get("hide"):
            continue
        ref_id = str(target.get("refId", "?"))
        if not target.get("expr"):
            out.problems.append(f"{uid} / {title!r} / {ref_id}: a target without expr")
            continue
        low = _min_interval(panel, target) or scrape_seconds
        step = interval(end - start, points, low)
        builtins = {
            "__interval": duration(step),
            "__interval_ms": str(round(step * 1000)),
            "__rate_interval": duration(rate_interval(step, scrape_seconds)),
            "__rate_interval_ms": str(round(rate_interval(step, scrape_seconds) * 1000)),
            "__range": f"{round(end - start)}s",
            "__range_s": str(round(end - start)),
            "__range_ms": str(round((end - start) * 1000)),
        }
        expr = substitute(str(target["expr"]), scope, builtins)
        for instant in _kinds(target):
            out.queries.append(
                Query(
                    dashboard=uid,
                    panel=title,
                    ref_id=ref_id,
                    expr=expr,
                    instant=instant,
                    start=start,
                    end=end,
                    step=step,
                    empty_by_design=empty_by_design,
                    copy=where.copy,
                    row=where.row,
                    panel_id=panel.get("id"),
                )
            )


def _kinds(target: Mapping[str, Any]) -> list[bool]:
    """Whether each query of ``target`` is instant: Grafana runs an instant query, a range
    query, or both (*Both* in its query editor); a target that says neither is a range query."""
    asked = [instant for instant, key in ((True, "instant"), (False, "range")) if target.get(key)]
    return asked or [False]


def panels(
    dashboard: Mapping[str, Any],
) -> Iterator[tuple[Mapping[str, Any], tuple[str, ...], str]]:
    """Each panel that is not a row, with the variables it is repeated by (its row's
    ``repeat``, then its own) and its row's title. A row's panels are inside it when it is
    collapsed, and the panels that follow it up to the next row when it is not."""
    row_repeat: tuple[str, ...] = ()
    row = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row_repeat, row = _own_repeat(panel), str(panel.get("title", ""))
            for inner in panel.get("panels", []):
                yield inner, (*row_repeat, *_own_repeat(inner)), row
        else:
            yield panel, (*row_repeat, *_own_repeat(panel)), row


def _own_repeat(panel: Mapping[str, Any]) -> tuple[str, ...]:
    return (panel["repeat"],) if panel.get("repeat") else ()


def _repetitions(
    repeats: Sequence[str],
    scope: Mapping[str, Selection],
    problems: list[str],
    panel: Mapping[str, Any],
) -> Iterator[dict[str, Selection]]:
    """One scope per copy Grafana makes of a repeated panel: each variable repeated by set to
    one of its values."""
    if not repeats:
        yield {}
        return
    name, rest = repeats[0], repeats[1:]
    if name not in scope:
        problems.append(f"{panel.get('title')!r} repeats by {name}, which is not a variable")
        return
    for value in scope[name].values:
        for others in _repetitions(rest, scope, problems, panel):
            yield {name: Selection((value,), multi=scope[name].multi), **others}


def resolve(
    dashboard: Mapping[str, Any],
    label_values: LabelValues,
    start: float,
    end: float,
    problems: list[str],
) -> dict[str, Selection]:
    """Every template variable's selection: All, or its only value. A variable whose query
    uses others waits until they are resolved, as in Grafana; one with no values is a
    problem, kept out of the scope."""
    waiting = list(dashboard.get("templating", {}).get("list", []))
    scope: dict[str, Selection] = {}
    names = {str(v.get("name")) for v in waiting}
    done: set[str] = set()
    while waiting:
        ready = [v for v in waiting if not (_uses(v) & names) - done]
        if not ready:
            problems.append(
                "variables that wait on each other or on a failed one: "
                + ", ".join(str(v.get("name")) for v in waiting)
            )
            break
        for variable in ready:
            waiting.remove(variable)
            name = str(variable["name"])
            try:
                selection = select(variable, scope, label_values, start, end)
            except GrafanaError as exc:
                problems.append(f"variable {name}: {exc}")
                continue
            if selection is not None and not selection.values:
                unknown = sorted(_uses(variable) - names)
                why = f" (it uses {', '.join(unknown)}, not variables)" if unknown else ""
                problems.append(f"variable {name} has no values{why}: {_query_text(variable)}")
                continue
            done.add(name)
            if selection is not None:
                scope[name] = selection
    return scope


def _uses(variable: Mapping[str, Any]) -> set[str]:
    return {name for name, _ in references(_query_text(variable))}


def _query_text(variable: Mapping[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, Mapping):
        query = query.get("query", "")
    return str(query or variable.get("definition", ""))


def select(
    variable: Mapping[str, Any],
    scope: Mapping[str, Selection],
    label_values: LabelValues,
    start: float,
    end: float,
) -> Selection | None:
    """What Grafana sets ``variable`` to when every one that can be All is All: None for a
    data source variable, which no query expression names."""
    kind = variable.get("type", "query")
    text = _query_text(variable)
    if kind == "datasource":
        return None
    if kind == "query":
        values = _filtered(
            variable, _query_values(substitute(text, scope), label_values, start, end)
        )
    elif kind == "custom":
        values = [part.strip() for part in re.split(r"(?<!\\),", text) if part.strip()]
    elif kind in ("constant", "textbox"):
        current = variable.get("current", {}).get("value")
        return Selection((str(current if kind == "textbox" and current else text),), multi=False)
    elif kind == "interval":
        options = [part.strip() for part in text.split(",") if part.strip()]
        current = variable.get("current", {}).get("value")
        return Selection((str(current) if current in options else options[0],), multi=False)
    else:
        raise GrafanaError(f"variables of type {kind} are not emulated")
    multi = bool(variable.get("multi") or variable.get("includeAll"))
    if multi or not values:
        all_value = variable.get("allValue") if variable.get("includeAll") else None
        return Selection(tuple(values), multi=multi, all_value=all_value or None)
    current = variable.get("current", {}).get("value")
    return Selection((current if current in values else values[0],), multi=False)


def _query_values(text: str, label_values: LabelValues, start: float, end: float) -> list[str]:
    found = LABEL_VALUES.match(text)
    if found is None:
        raise GrafanaError(f"only label_values(...) queries are emulated, not {text!r}")
    selector, _, label = found.group(1).rpartition(",")
    return label_values(label.strip(), selector.strip() or None, start, end)


def _filtered(variable: Mapping[str, Any], values: list[str]) -> list[str]:
    """The values kept by the variable's ``regex``, as its first group when it has one."""
    pattern = str(variable.get("regex") or "")
    if not pattern:
        return values
    body = pattern[1 : pattern.rindex("/")] if pattern.startswith("/") else pattern
    compiled = re.compile(body)
    kept = []
    for value in values:
        match = compiled.search(value)
        if match:
            kept.append(match.group(1) if compiled.groups else value)
    return list(dict.fromkeys(kept))


def references(text: str) -> Iterator[tuple[str, str | None]]:
    """Each variable ``text`` names, with the format it asks for (None: the data source's)."""
    for match in REFERENCE.finditer(text):
        simple, bracket, bracket_format, braced, braced_format = match.groups()
        yield (simple or bracket or braced), (bracket_format or braced_format)


def substitute(
    text: str, scope: Mapping[str, Selection], builtins: Mapping[str, str] | None = None
) -> str:
    """``text`` with the variables of ``scope`` and the ``builtins`` written in, as Grafana
    writes them into a Prometheus query; a name it does not know stays as it is.

    >>> substitute('rate(x{channel=~"$channel"}[$__rate_interval])',
    ...     {"channel": Selection(("app", "sms"), multi=True)}, {"__rate_interval": "21s"})
    'rate(x{channel=~"(app|sms)"}[21s])'
    >>> substitute('label_replace(x, "a", "$1", "b", "(.*)")', {})
    'label_replace(x, "a", "$1", "b", "(.*)")'
    """
    builtins = builtins or {}

    def written(match: re.Match[str]) -> str:
        simple, bracket, bracket_format, braced, braced_format = match.groups()
        name = simple or bracket or braced
        if name in builtins:
            return builtins[name]
        if name not in scope:
            return match.group(0)
        return formatted(scope[name], bracket_format or braced_format)

    return REFERENCE.sub(written, text)


def formatted(selection: Selection, form: str | None) -> str:
    """``selection`` written as Grafana's Prometheus data source writes it (``form`` None), or
    in one of Grafana's formats (``regex``, ``pipe``, ``csv``, ``raw``)."""
    values = selection.values
    if form is None:
        if selection.all_value is not None:
            return selection.all_value
        if not selection.multi:
            return values[0].replace("\\", "\\\\").replace("'", "\\\\'")
        escaped = [
            SPECIAL.sub(lambda m: "\\\\" + m.group(0), v.replace("\\", "\\\\\\\\")) for v in values
        ]
        return escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"
    if form == "regex":
        escaped = [re.sub(r"[\\^$*+?.()|\[\]{}/]", r"\\\g<0>", v) for v in values]
        return escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"
    if form == "pipe":
        return "|".join(values)
    if form in ("csv", "raw"):
        return ",".join(values)
    raise GrafanaError(f"the variable format {form} is not emulated")


def time_range(time: Mapping[str, Any], now: float) -> tuple[float, float]:
    """A dashboard's ``time`` (``{"from": "now-6h", "to": "now"}``) as Unix times."""
    return _relative(str(time.get("from", "now-6h")), now), _relative(
        str(time.get("to", "now")), now
    )


def panel_range(
    panel: Mapping[str, Any], now: float, start: float, end: float
) -> tuple[float, float]:
    """The panel's own time range: its ``timeFrom`` (``30d``: the last 30 days) replaces the
    dashboard's start, and its ``timeShift`` moves both ends back."""
    if panel.get("timeFrom"):
        start = end - seconds(str(panel["timeFrom"]).removeprefix("now-"))
    if panel.get("timeShift"):
        shift = seconds(str(panel["timeShift"]))
        start, end = start - shift, end - shift
    return start, end


def _relative(text: str, now: float) -> float:
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - seconds(text.removeprefix("now-"))
    raise GrafanaError(f"only times relative to now are emulated, not {text!r}")


def seconds(text: str) -> float:
    """A Grafana duration (``6h``, ``30d``, ``1w``) in seconds.

    >>> seconds("6h"), seconds("30d"), seconds("1m30s")
    (21600.0, 2592000.0, 90.0)
    """
    parts = GRAFANA_DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise GrafanaError(f"not a duration: {text!r}")
    return sum(int(n) * UNITS[u] for n, u in parts)


def interval(range_seconds: float, max_data_points: int, low_limit: float) -> float:
    """``$__interval``: the range over the data points, rounded as Grafana rounds it, and no
    shorter than ``low_limit``."""
    raw = range_seconds / max_data_points
    rounded = next((step for bound, step in ROUNDED if raw < bound), YEAR_SECONDS)
    return max(rounded, low_limit)


def rate_interval(step: float, scrape_seconds: float) -> float:
    """``$__rate_interval`` for a query stepping by ``step``."""
    return max(step + scrape_seconds, 4 * scrape_seconds)


def _pixels(panel: Mapping[str, Any]) -> int:
    width = panel.get("gridPos", {}).get("w", GRID_COLUMNS)
    return max(1, round(int(width) * SCREEN_PIXELS / GRID_COLUMNS))


def _min_interval(panel: Mapping[str, Any], target: Mapping[str, Any]) -> float | None:
    """The longest min interval the panel and the target set (``1m``, ``>1m``), if any; a
    variable there is left to the data source, as Grafana does."""
    found = [
        seconds(str(text).lstrip(">"))
        for text in (panel.get("interval"), target.get("interval"))
        if text and "$" not in str(text)
    ]
    return max(found, default=None)


def label_values(
    prometheus: str, label: str, selector: str | None, start: float, end: float
) -> list[str]:
    """The values of ``label`` on the series matching ``selector`` between ``start`` and
    ``end``, from Prometheus's ``/api/v1/label/<label>/values``: Grafana's ``label_values``."""
    params = [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
    if selector is not None:
        params.append(("match[]", selector))
    values: list[str] = api(prometheus, f"/api/v1/label/{label}/values", params)
    return sorted(values)


def run(prometheus: str, query: Query) -> str | None:
    """Why ``query`` shows nothing (Prometheus refused it, it has no series, or only NaN), or
    None when it returns data."""
    path = "/api/v1/query" if query.instant else "/api/v1/query_range"
    try:
        data = api(prometheus, path, query.params())
    except PrometheusError as exc:
        return f"{REFUSED}: {exc}"
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        numbers = [result[1]]
    elif kind == "vector":
        numbers = [series["value"][1] for series in result]
    else:
        numbers = [value for series in result for _, value in series["values"]]
    if not numbers:
        return "no series"
    if kind != "string" and all(math.isnan(float(number)) for number in numbers):
        return f"{len(result) if kind != 'scalar' else 1} series, every value NaN"
    return None
