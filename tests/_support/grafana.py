"""Checks over Grafana dashboard JSON models (plain dicts), for the dashboard tests.

Each check returns the problems it finds, one readable line each, so that a test asserts
``== []`` and a failure names the dashboard, the panel and what is wrong:

>>> board = {"uid": "b", "panels": [
...     {"id": 1, "type": "stat", "title": "a", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 4}},
...     {"id": 1, "type": "stat", "title": "b", "gridPos": {"x": 6, "y": 2, "w": 12, "h": 4}}]}
>>> duplicate_ids(board)
["b: id 1 is used by panel 1 'a' and panel 1 'b'"]
>>> overlapping(board)
["b: panel 1 'a' overlaps panel 1 'b'"]
>>> substitute('rate(x{channel=~"$channel"}[$__rate_interval])', {"channel": ["app", "chat"]})
'rate(x{channel=~"(app|chat)"}[1m])'

How Grafana lays out panels (``public/app/features/dashboard/state/DashboardModel.ts``): the
grid is 24 columns wide, a row takes one grid unit of height, and the panels of an expanded
row follow it in the top-level ``panels`` list. A collapsed row keeps its panels inside it;
expanding it moves them, as one block, to just below the row (their ``y`` shifted so the first
one listed sits under the row) and pushes everything below down by the block's height. So the
top level must not overlap itself, neither must each collapsed row's panels among themselves,
and no panel of a collapsed row may sit above its first one; then the two never meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

Dashboard = Mapping[str, Any]
Panel = Mapping[str, Any]
Value = str | Sequence[str]

#: Columns of Grafana's grid.
GRID_COLUMNS: Final = 24
#: Grafana's variable syntaxes (``public/app/features/variables/utils.ts``, ``variableRegex``):
#: ``$name``, ``[[name]]`` or ``[[name:format]]``, and ``${name}``, ``${name.field}``,
#: ``${name:format}``.
VARIABLE: Final = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\[\[(?P<old>\w+?)(?::(?P<old_format>\w+))?\]\]"
    r"|\$\{(?P<braced>\w+)(?:\.(?P<field>[^:^}]+))?(?::(?P<format>[^}]+))?\}"
)
#: Realistic values of the built-ins the dashboards use (``$__rate_interval`` is at least four
#: scrape intervals; ``$__range`` is the default six hours).
BUILTINS: Final[Mapping[str, str]] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "21600s",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
#: Query parameters a dashboard URL may carry besides ``var-NAME``.
URL_PARAMETERS: Final = frozenset(
    {"from", "to", "time", "time.window", "orgId", "refresh", "kiosk", "viewPanel", "timezone"}
)
#: ``/d/<uid>/<slug>`` at the end of a URL's path (Grafana may be served under a sub path).
DASHBOARD_PATH: Final = re.compile(r"^(?:/[^/]+)*/d/(?P<uid>[^/]+)(?:/(?P<slug>[^/]+))?/?$")
#: Panel types that show no query results, and need no targets.
NO_QUERY_PANELS: Final = frozenset({"row", "text", "dashlist", "news", "annolist"})


# --- walking ------------------------------------------------------------------------------


def panels(dashboard: Dashboard) -> Iterator[Panel]:
    """Every panel: top-level ones, rows included, and the panels inside rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def query_panels(dashboard: Dashboard) -> Iterator[Panel]:
    """Every panel that is not a row."""
    return (panel for panel in panels(dashboard) if panel.get("type") != "row")


def targets(dashboard: Dashboard) -> Iterator[tuple[Panel, Mapping[str, Any]]]:
    """Every query target, with its panel."""
    for panel in query_panels(dashboard):
        for target in panel.get("targets") or []:
            yield panel, target


def name(panel: Panel) -> str:
    """How a problem names a panel: ``panel 3 'p95 journey duration'``."""
    kind = "row" if panel.get("type") == "row" else "panel"
    return f"{kind} {panel.get('id')} {panel.get('title', '')!r}"


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with its path (``panels[3].targets[0].expr``)."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")


# --- layout and identity ------------------------------------------------------------------


def _box(panel: Panel) -> tuple[int, int, int, int] | None:
    grid = panel.get("gridPos")
    if not isinstance(grid, Mapping) or not all(k in grid for k in "xywh"):
        return None
    return grid["x"], grid["y"], grid["w"], grid["h"]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _overlaps_among(uid: str, group: Sequence[Panel], where: str) -> list[str]:
    problems = []
    boxes = [(panel, _box(panel)) for panel in group]
    for i, (first, a) in enumerate(boxes):
        for second, b in boxes[i + 1 :]:
            if a is not None and b is not None and _overlap(a, b):
                problems.append(f"{uid}: {where}{name(first)} overlaps {name(second)}")
    return problems


def overlapping(dashboard: Dashboard) -> list[str]:
    """Panels whose ``gridPos`` overlap: among the top-level panels (rows included), and among
    the panels of each collapsed row (laid out when it is expanded; see the module's text)."""
    uid = dashboard.get("uid", "?")
    top = list(dashboard.get("panels", []))
    problems = _overlaps_among(uid, top, "")
    for row in top:
        if row.get("type") == "row" and row.get("panels"):
            problems += _overlaps_among(uid, row["panels"], f"in {name(row)}: ")
            problems += _above_first(uid, row)
    return problems


def _above_first(uid: str, row: Panel) -> list[str]:
    """Grafana shifts a collapsed row's panels by the offset of the first one listed, so one
    listed later but higher up would open above the row, over the panels there."""
    inner = [(panel, _box(panel)) for panel in row["panels"]]
    first = inner[0][1]
    if first is None:
        return []
    return [
        f"{uid}: in {name(row)}: {name(panel)} sits above the first one, and opens above the row"
        for panel, box in inner[1:]
        if box is not None and box[1] < first[1]
    ]


def off_grid(dashboard: Dashboard) -> list[str]:
    """Panels without a whole ``gridPos`` or outside the 24 columns, and rows that are not one
    full-width line."""
    uid = dashboard.get("uid", "?")
    problems = []
    for panel in panels(dashboard):
        box = _box(panel)
        if box is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
            problems.append(f"{uid}: {name(panel)} has no whole gridPos: {panel.get('gridPos')}")
            continue
        x, y, w, h = box
        if x < 0 or y < 0 or w < 1 or h < 1 or x + w > GRID_COLUMNS:
            problems.append(f"{uid}: {name(panel)} is off the grid: {panel['gridPos']}")
        if panel.get("type") == "row" and (x, w, h) != (0, GRID_COLUMNS, 1):
            problems.append(f"{uid}: {name(panel)} is not one full-width line: {panel['gridPos']}")
    return problems


def hidden_panels(dashboard: Dashboard) -> list[str]:
    """Panels Grafana never shows: inside an expanded row (an expanded row's panels follow it
    at the top level; Grafana reads ``panels`` only from a collapsed row), or inside a panel
    that is not a row."""
    uid = dashboard.get("uid", "?")
    problems = []
    for panel in dashboard.get("panels", []):
        if panel.get("panels") and (panel.get("type") != "row" or not panel.get("collapsed")):
            kind = "an expanded row" if panel.get("type") == "row" else "a panel"
            problems.append(f"{uid}: {name(panel)} is {kind} that holds panels")
    return problems


def duplicate_ids(dashboard: Dashboard) -> list[str]:
    """Panel ids used twice anywhere in the dashboard (rows and their panels included), and
    panels without an integer id."""
    uid = dashboard.get("uid", "?")
    seen: dict[int, Panel] = {}
    problems = []
    for panel in panels(dashboard):
        number = panel.get("id")
        if not isinstance(number, int) or isinstance(number, bool):
            problems.append(f"{uid}: {name(panel)} has no integer id")
        elif number in seen:
            problems.append(f"{uid}: id {number} is used by {name(seen[number])} and {name(panel)}")
        else:
            seen[number] = panel
    return problems


# --- targets ------------------------------------------------------------------------------


def _datasource_problem(datasource: Any) -> str | None:
    if datasource is None:
        return "has no datasource"
    if not isinstance(datasource, Mapping):
        return f"names its datasource bare ({datasource!r}), not as {{type, uid}}"
    if not datasource.get("type") or not datasource.get("uid"):
        return f"has a datasource without type and uid: {dict(datasource)}"
    return None


def bad_targets(dashboard: Dashboard) -> list[str]:
    """Query panels without targets, and targets without a ``refId`` (or with one used twice
    in their panel), an ``expr``, or a ``{type, uid}`` datasource (their own or the panel's)."""
    uid = dashboard.get("uid", "?")
    problems = []
    for panel in query_panels(dashboard):
        where = f"{uid}: {name(panel)}"
        panel_targets = panel.get("targets") or []
        if not panel_targets and panel.get("type") not in NO_QUERY_PANELS:
            problems.append(f"{where} has no targets")
        if "datasource" in panel and (problem := _datasource_problem(panel["datasource"])):
            problems.append(f"{where} {problem}")
        ref_ids: set[str] = set()
        for index, target in enumerate(panel_targets):
            ref_id = target.get("refId")
            label = f"{where} target {ref_id or index}"
            if not isinstance(ref_id, str) or not ref_id:
                problems.append(f"{label} has no refId")
            elif ref_id in ref_ids:
                problems.append(f"{label}: refId used twice")
            else:
                ref_ids.add(ref_id)
            datasource = target.get("datasource", panel.get("datasource"))
            if problem := _datasource_problem(datasource):
                problems.append(f"{label} {problem}")
            if not isinstance(target.get("expr"), str) or not target["expr"].strip():
                problems.append(f"{label} has no expr")
    return problems


# --- variables ----------------------------------------------------------------------------


def variables(dashboard: Dashboard) -> dict[str, Mapping[str, Any]]:
    """The template variables, by name."""
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def used(text: str) -> set[str]:
    """The variables a string refers to, built-ins (``__*``) left out, and ``$1``-style
    capture-group references (which Grafana leaves alone) too."""
    names = set()
    for match in VARIABLE.finditer(text):
        found = match.group("plain") or match.group("old") or match.group("braced")
        if not found.startswith("__") and not found[0].isdigit():
            names.add(found)
    return names


def undefined_variables(dashboard: Dashboard) -> list[str]:
    """Every use of a variable the dashboard does not define, in any string of it: queries,
    titles, legends, links, and the variables' own queries."""
    uid = dashboard.get("uid", "?")
    defined = set(variables(dashboard))
    return [
        f"{uid}: {path} uses ${missing}: {text!r}"
        for path, text in strings(dashboard)
        for missing in sorted(used(text) - defined)
    ]


def legacy_variable_syntax(dashboard: Dashboard) -> list[str]:
    """Uses of the deprecated ``[[name]]`` syntax."""
    uid = dashboard.get("uid", "?")
    return [
        f"{uid}: {path} uses the deprecated [[{match.group('old')}]]"
        for path, text in strings(dashboard)
        for match in VARIABLE.finditer(text)
        if match.group("old")
    ]


def _escape(value: str) -> str:
    """Grafana's Prometheus datasource escapes regex characters of multi values
    (``prometheusRegularEscape``)."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)


def _format(value: Value, form: str | None) -> str:
    if isinstance(value, str):
        return _escape(value) if form == "regex" else value
    values = list(value)
    match form:
        case None | "regex":
            return "(" + "|".join(_escape(v) for v in values) + ")"
        case "pipe":
            return "|".join(values)
        case "csv" | "raw":
            return ",".join(values)
        case "glob":
            return "{" + ",".join(values) + "}"
        case _:
            raise ValueError(f"no substitution for the format :{form}")


def substitute(
    text: str, values: Mapping[str, Value], *, builtins: Mapping[str, str] = BUILTINS
) -> str:
    """``text`` with every variable replaced as Grafana's Prometheus datasource does: a single
    value as it is, several as a regex alternation ``(a|b)`` (``${v:pipe}``: ``a|b``,
    ``${v:csv}``: ``a,b``, ``${v:regex}`` escapes). Built-ins take ``builtins``' values.

    Raises ``KeyError`` for a variable with no value, ``ValueError`` for an unknown format.

    >>> substitute("$channel/${journey:regex}/[[location]]",
    ...            {"channel": "app", "journey": "a.b", "location": ["paris", "lyon"]})
    'app/a\\\\.b/(paris|lyon)'
    """

    def replace(match: re.Match[str]) -> str:
        found = match.group("plain") or match.group("old") or match.group("braced")
        if found[0].isdigit():
            return match.group(0)
        if found.startswith("__"):
            if found not in builtins:
                raise KeyError(f"no value for the built-in ${found} in {text!r}")
            return builtins[found]
        if found not in values:
            raise KeyError(f"no value for ${found} in {text!r}")
        return _format(values[found], match.group("format") or match.group("old_format"))

    return VARIABLE.sub(replace, text)


# --- links --------------------------------------------------------------------------------


def _builtin_parameters(key: str) -> bool:
    """Whether a query "parameter" is a built-in that expands to parameters of its own
    (``${__url_time_range}``: ``from=...&to=...``; ``${__all_variables}``)."""
    match = VARIABLE.fullmatch(key)
    return match is not None and (match.group("plain") or match.group("braced") or "").startswith(
        "__"
    )


def link_problems(
    url: str,
    dashboards: Mapping[str, Dashboard],
    *,
    known: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """What is wrong with a URL to a dashboard: ``/d/<uid>/<slug>`` must name one of
    ``dashboards`` (by uid), and each ``var-NAME`` must be a variable of that dashboard; with
    ``known``, a literal value (no ``$``) of a variable must be one of ``known[NAME]``.
    A URL that is not a dashboard's (a runbook) has no problems."""
    parts = urlsplit(url)
    match = DASHBOARD_PATH.match(parts.path)
    if match is None:
        return []
    uid = match.group("uid")
    if uid not in dashboards:
        return [f"{url}: no dashboard has uid {uid!r} (there are {sorted(dashboards)})"]
    defined = variables(dashboards[uid])
    problems = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.startswith("var-"):
            variable = key.removeprefix("var-")
            if variable not in defined:
                problems.append(f"{url}: {uid} has no variable {variable!r}")
            elif known and variable in known and "$" not in value and value not in known[variable]:
                problems.append(f"{url}: {variable}={value!r} is none of {sorted(known[variable])}")
        elif key not in URL_PARAMETERS and not _builtin_parameters(key):
            problems.append(f"{url}: unknown parameter {key!r}")
    return problems


def links(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every link object in a JSON value (the dashboard's, panels', and data links in field
    configs and their overrides): the items of any ``links`` list, or of the ``value`` of an
    override property ``{"id": "links"}``, with their paths."""
    if isinstance(node, Mapping):
        override = node.get("id") == "links"
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if (key == "links" or (override and key == "value")) and isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, Mapping):
                        yield f"{here}[{index}]", item
            yield from links(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from links(value, f"{path}[{index}]")


def broken_links(
    dashboard: Dashboard,
    dashboards: Mapping[str, Dashboard],
    *,
    known: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Links of ``dashboard`` that do not resolve among ``dashboards`` (by uid): URLs as in
    ``link_problems``, and ``dashboards`` links whose tags no dashboard carries all of."""
    uid = dashboard.get("uid", "?")
    problems = []
    for path, link in links(dashboard):
        if link.get("type") == "dashboards":
            tags = set(link.get("tags") or [])
            if not any(tags <= set(d.get("tags", [])) for d in dashboards.values()):
                problems.append(f"{uid}: {path}: no dashboard has all the tags {sorted(tags)}")
        elif isinstance(link.get("url"), str):
            problems += [
                f"{uid}: {path}: {p}" for p in link_problems(link["url"], dashboards, known=known)
            ]
        else:
            problems.append(f"{uid}: {path} has neither a url nor type dashboards: {dict(link)}")
    return problems
