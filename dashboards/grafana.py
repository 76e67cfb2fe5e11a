"""Grafana's building blocks, modernised: grafanalib builds every panel, variable, link and
dashboard, and this module brings its output up to date.

grafanalib 0.7.1 writes ``schemaVersion: 12``, legacy target fields (``query``, ``target``,
``intervalFactor``, ``step``), panel fields from the Angular era (``span``, ``height``,
``error``, ``minSpan``) and, for tables and bar gauges, options that Grafana has since moved into
``fieldConfig``. Each builder here has grafanalib build the panel, sets the options and field
defaults of Grafana's current model, and keeps only that model's fields (``_PANEL_KEYS``...),
so that what comes out loads without migration (``SCHEMA_VERSION``; docs/dashboards.md).

Datasources are ``{type, uid}`` objects driven by the ``${datasource}`` variable, never names;
rates use ``$__rate_interval``; units and thresholds are set on every panel that shows a number.

>>> panel = timeseries("Runs", [Query("sum(rate(x[$__rate_interval]))", "runs")], unit="reqps")
>>> panel.json["type"], panel.json["targets"][0]["datasource"], panel.json["targets"][0]["refId"]
('timeseries', {'type': 'prometheus', 'uid': '${datasource}'}, 'A')
>>> sorted(panel.json["targets"][0])
['datasource', 'editorMode', 'expr', 'legendFormat', 'range', 'refId']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import grafanalib.core as g
from grafanalib._gen import DashboardEncoder

Json = dict[str, Any]

#: The dashboard JSON schema version written: Grafana 11.6 to 12.1 load it as it is; 12.2 and
#: later migrate it on load (to 42, which changes only series hidden by overrides; we hide
#: none); see docs/dashboards.md.
SCHEMA_VERSION: Final = 41
DATASOURCE_VARIABLE: Final = "datasource"
#: Every panel and query reads the datasource the ``datasource`` variable names.
DATASOURCE: Final = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
#: The tag every generated dashboard carries: the dashboards' links list them by it.
TAG: Final = "carewatch"
WIDTH: Final = 24  # Grafana's grid is 24 columns wide

# Colours by meaning, from Grafana's palette, so every dashboard says "bad" alike.
GREEN: Final = "green"
YELLOW: Final = "yellow"
ORANGE: Final = "orange"
RED: Final = "red"
BLUE: Final = "blue"
GREY: Final = "text"

#: The legend under a graph: one line of series names.
LEGEND: Final = {"displayMode": "list", "placement": "bottom", "showLegend": True}

#: The fields of Grafana's current panel model (dashboard.Panel and RowPanel) that we write.
_PANEL_KEYS: Final = frozenset(
    {
        "type",
        "id",
        "title",
        "description",
        "datasource",
        "gridPos",
        "targets",
        "fieldConfig",
        "options",
        "transformations",
        "links",
        "repeat",
        "repeatDirection",
        "maxPerRow",
        "collapsed",
        "panels",
        "interval",
        "timeFrom",
    }
)
_DEFAULTS_KEYS: Final = frozenset(
    {"unit", "min", "max", "decimals", "thresholds", "mappings", "color", "custom", "noValue"}
)
_DASHBOARD_KEYS: Final = frozenset(
    {
        "uid",
        "title",
        "description",
        "tags",
        "timezone",
        "editable",
        "graphTooltip",
        "time",
        "timepicker",
        "refresh",
        "schemaVersion",
        "version",
        "panels",
        "templating",
        "annotations",
        "links",
    }
)
_VARIABLE_KEYS: Final = frozenset(
    {
        "type",
        "name",
        "label",
        "description",
        "query",
        "datasource",
        "current",
        "multi",
        "includeAll",
        "allValue",
        "options",
        "refresh",
        "sort",
        "regex",
        "hide",
    }
)
_LINK_KEYS: Final = frozenset(
    {"title", "type", "icon", "tooltip", "url", "tags", "asDropdown", "targetBlank", "includeVars"}
)


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a panel: ``instant`` asks for the value now (stats, tables, bar
    gauges), otherwise a range over the dashboard's time; ``table`` returns labelled rows."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass(frozen=True, slots=True)
class Threshold:
    """A colour from ``value`` up (``None``: from minus infinity, the base colour)."""

    color: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel's JSON with its size on the 24-column grid; ``layout`` places it."""

    json: Json
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Row:
    """A row of panels under a title; ``repeat`` names the variable it repeats for."""

    title: str
    panels: Sequence[Panel]
    repeat: str | None = None
    collapsed: bool = False


def thresholds(*steps: Threshold) -> Json:
    """``fieldConfig.defaults.thresholds``: absolute steps, the first one the base."""
    return {
        "mode": "absolute",
        "steps": [{"color": s.color, "value": s.value} for s in steps],
    }


def value_text(value: int, text: str, color: str) -> Json:
    """A value mapping: ``value`` shown as ``text`` in ``color``."""
    return {
        "type": "value",
        "options": {str(value): {"text": text, "color": color, "index": 0}},
    }


def range_color(low: float, high: float, color: str, index: int = 0) -> Json:
    """A range mapping: values in ``[low, high]`` shown in ``color``, as they are."""
    return {
        "type": "range",
        "options": {"from": low, "to": high, "result": {"color": color, "index": index}},
    }


def override(name_regex: str, **properties: Any) -> Json:
    """A field override: the series whose display name matches ``name_regex`` get
    ``properties`` (``custom.lineStyle``, ``thresholds``, ``color``...)."""
    return {
        "matcher": {"id": "byRegexp", "options": name_regex},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def merged(columns: Mapping[str, str], *, hidden: Sequence[str] = ()) -> list[Json]:
    """Transformations that join instant table queries into one table (rows whose labels
    agree become one), then keep ``columns`` in their order, under their new names; each
    query's value column is ``Value #<refId>``.

    >>> [t["id"] for t in merged({"channel": "Channel", "Value #A": "Uptime"})]
    ['merge', 'organize']
    """
    return [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(("Time", *hidden), True),
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": dict(columns),
            },
        },
    ]


def link(title: str, url: str) -> Json:
    """A panel or data link; ``url`` may use ``${__field.labels.X}`` and ``${__url_time_range}``."""
    return {"title": title, "url": url}


def targets(queries: Sequence[Query]) -> list[g.Target]:
    """grafanalib targets, lettered A, B, C... in order."""
    return [
        g.Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + i),
            instant=q.instant,
            format="table" if q.table else "time_series",
            datasource=DATASOURCE,
        )
        for i, q in enumerate(queries)
    ]


def _target(raw: Json) -> Json:
    """A grafanalib target in Grafana's current Prometheus query model: ``instant`` or
    ``range``, ``editorMode: code``, no legacy ``query``/``target``/``step`` fields."""
    target: Json = {
        "datasource": raw["datasource"],
        "editorMode": "code",
        "expr": raw["expr"],
        "legendFormat": raw["legendFormat"] or "__auto",
        "refId": raw["refId"],
    }
    if raw["instant"]:
        target["instant"] = True
    else:
        target["range"] = True
    if raw["format"] == "table":
        target["format"] = "table"
    return target


def _defaults(raw: Json) -> Json:
    return {k: v for k, v in raw.items() if k in _DEFAULTS_KEYS and v is not None}


def _modern(raw: Json) -> Json:
    """A grafanalib panel's JSON with only Grafana's current fields."""
    panel = {k: v for k, v in raw.items() if k in _PANEL_KEYS and v not in (None, [])}
    if "targets" in panel:
        panel["targets"] = [_target(t) for t in panel["targets"]]
    if panel["type"] == "row":  # a row has no fieldConfig in Grafana's model
        panel.pop("fieldConfig", None)
        panel["panels"] = [_modern(p) for p in raw.get("panels", [])]
        panel.setdefault("collapsed", False)
        return panel
    config = panel.setdefault("fieldConfig", {})
    panel["fieldConfig"] = {
        "defaults": _defaults(config.get("defaults", {})),
        "overrides": config.get("overrides", []),
    }
    return panel


def _json(obj: Any) -> Json:
    """Any grafanalib object as plain JSON data."""
    data: Json = json.loads(json.dumps(obj, cls=DashboardEncoder))
    return data


def _build(
    kind: type[g.Panel],
    title: str,
    queries: Sequence[Query],
    *,
    width: int,
    height: int,
    description: str,
    defaults: Json,
    options: Json,
    overrides: Sequence[Json] = (),
    transformations: Sequence[Json] = (),
    links: Sequence[Json] = (),
    **attributes: Any,
) -> Panel:
    extra: Json = {
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": options,
    }
    built = kind(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries),
        transformations=list(transformations),
        links=list(links),
        extraJson=extra,
        **attributes,
    )
    raw = _json(built)
    # extraJson merges into what grafanalib wrote; options and defaults are ours alone
    raw["options"] = options
    raw["fieldConfig"] = {"defaults": defaults, "overrides": list(overrides)}
    return Panel(_modern(raw), width, height)


def _field_defaults(
    *,
    unit: str,
    steps: Json | None,
    mappings: Sequence[Json] = (),
    no_value: str | None = None,
    min: float | None = None,
    max: float | None = None,
    decimals: int | None = None,
    color: Json | None = None,
    custom: Json | None = None,
) -> Json:
    defaults: Json = {
        "unit": unit,
        "thresholds": steps or thresholds(Threshold(GREEN)),
        "mappings": list(mappings),
        "color": color or {"mode": "thresholds"},
    }
    for key, value in (
        ("noValue", no_value),
        ("min", min),
        ("max", max),
        ("decimals", decimals),
        ("custom", custom),
    ):
        if value is not None:
            defaults[key] = value
    return defaults


def timeseries(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    description: str = "",
    steps: Json | None = None,
    threshold_style: str = "off",
    stacked: bool = False,
    bars: bool = False,
    overrides: Sequence[Json] = (),
    no_value: str | None = None,
    min: float | None = None,
    max: float | None = None,
    width: int = 12,
    height: int = 8,
    links: Sequence[Json] = (),
) -> Panel:
    """A time series; ``threshold_style`` ``line`` draws the thresholds on the graph."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if (stacked or bars) else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    return _build(
        g.TimeSeries,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(
            unit=unit,
            steps=steps,
            no_value=no_value,
            min=min,
            max=max,
            color={"mode": "palette-classic"},
            custom=custom,
        ),
        options={
            "legend": LEGEND,
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        overrides=overrides,
        links=links,
    )


def stat(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    description: str = "",
    steps: Json | None = None,
    mappings: Sequence[Json] = (),
    no_value: str | None = None,
    decimals: int | None = None,
    width: int = 6,
    height: int = 4,
    links: Sequence[Json] = (),
    text_mode: str = "value",
) -> Panel:
    """A big number (or text, through ``mappings``) on a background of its threshold colour."""
    return _build(
        g.Stat,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(
            unit=unit, steps=steps, mappings=mappings, no_value=no_value, decimals=decimals
        ),
        options={
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "center",
            "orientation": "auto",
            "textMode": text_mode,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        links=links,
    )


def state_timeline(
    title: str,
    queries: Sequence[Query],
    *,
    mappings: Sequence[Json],
    steps: Json | None = None,
    description: str = "",
    no_value: str | None = None,
    width: int = WIDTH,
    height: int = 8,
    links: Sequence[Json] = (),
    show_value: bool = False,
) -> Panel:
    """One lane per series, coloured by state; ``mappings`` name the states (``show_value``
    writes each state's value or text on its lane)."""
    return _build(
        g.StateTimeline,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(
            unit="none",
            steps=steps,
            mappings=mappings,
            no_value=no_value,
            custom={"lineWidth": 0, "fillOpacity": 80},
        ),
        options={
            "mergeValues": True,
            "showValue": "auto" if show_value else "never",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": LEGEND,
            "tooltip": {"mode": "single", "sort": "none"},
        },
        links=links,
    )


def table(
    title: str,
    queries: Sequence[Query],
    *,
    transformations: Sequence[Json],
    overrides: Sequence[Json] = (),
    description: str = "",
    no_value: str | None = None,
    sort_by: str | None = None,
    width: int = WIDTH,
    height: int = 8,
) -> Panel:
    """Labelled rows from instant table queries, joined and arranged by ``transformations``."""
    return _build(
        g.Table,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(
            unit="none",
            steps=None,
            no_value=no_value,
            custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
        ),
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [] if sort_by is None else [{"displayName": sort_by, "desc": True}],
        },
        overrides=overrides,
        transformations=transformations,
    )


def bar_gauge(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    steps: Json,
    description: str = "",
    overrides: Sequence[Json] = (),
    no_value: str | None = None,
    min: float | None = None,
    max: float | None = None,
    width: int = 12,
    height: int = 8,
) -> Panel:
    """One bar per series, coloured by its thresholds (``overrides`` give a series its own)."""
    return _build(
        g.BarGauge,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(unit=unit, steps=steps, no_value=no_value, min=min, max=max),
        options={
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        overrides=overrides,
    )


def gauge(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    steps: Json,
    description: str = "",
    min: float | None = None,
    max: float | None = None,
    width: int = 6,
    height: int = 6,
) -> Panel:
    """A dial with its thresholds marked."""
    return _build(
        g.GaugePanel,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(unit=unit, steps=steps, min=min, max=max),
        options={
            "orientation": "auto",
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
            "sizing": "auto",
            "minVizHeight": 75,
            "minVizWidth": 75,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    )


def bar_chart(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    x_field: str,
    transformations: Sequence[Json],
    description: str = "",
    no_value: str | None = None,
    width: int = 12,
    height: int = 8,
) -> Panel:
    """Horizontal bars stacked by series: one bar per ``x_field`` value (a step, say)."""
    return _build(
        g.BarChart,
        title,
        queries,
        width=width,
        height=height,
        description=description,
        defaults=_field_defaults(
            unit=unit,
            steps=None,
            no_value=no_value,
            color={"mode": "palette-classic"},
            custom={"lineWidth": 1, "fillOpacity": 80, "axisPlacement": "auto"},
        ),
        options={
            "orientation": "horizontal",
            "stacking": "normal",
            "showValue": "never",
            "groupWidth": 0.7,
            "barWidth": 0.9,
            "xField": x_field,
            "xTickLabelRotation": 0,
            "legend": LEGEND,
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        transformations=transformations,
    )


# --- layout -----------------------------------------------------------------------------------


@dataclass
class _Grid:
    """Places panels left to right, wrapping at 24 columns, each line as tall as its tallest."""

    y: int = 0
    x: int = 0
    line_height: int = 0
    next_id: int = 1
    placed: list[Json] = field(default_factory=list)

    def newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def place(self, panel: Panel) -> Json:
        if self.x + panel.width > WIDTH:
            self.newline()
        placed = {
            **panel.json,
            "id": self.id(),
            "gridPos": {"h": panel.height, "w": panel.width, "x": self.x, "y": self.y},
        }
        self.x += panel.width
        self.line_height = max(self.line_height, panel.height)
        return placed

    def row(self, row: Row) -> tuple[Json, list[Json]]:
        """The row panel and its panels, placed under it. A collapsed row takes one grid line:
        its panels are kept inside it, where Grafana lays them out when it is expanded."""
        self.newline()
        raw = _json(g.RowPanel(title=row.title, collapsed=row.collapsed))
        if row.repeat is not None:
            raw["repeat"] = row.repeat
        placed = {**_modern(raw), "id": self.id()}
        placed["gridPos"] = {"h": 1, "w": WIDTH, "x": 0, "y": self.y}
        self.y += 1
        top = self.y
        inner = [self.place(panel) for panel in row.panels]
        self.newline()
        if row.collapsed:
            self.y = top
        return placed, inner


def layout(items: Iterable[Panel | Row]) -> list[Json]:
    """Every panel with its ``id`` (1, 2, 3... in reading order) and ``gridPos``; a row's panels
    follow it, or sit inside it when it is collapsed (as Grafana keeps them)."""
    grid = _Grid()
    panels: list[Json] = []
    for item in items:
        if isinstance(item, Panel):
            panels.append(grid.place(item))
            continue
        row, inner = grid.row(item)
        if item.collapsed:
            panels.append({**row, "panels": inner})
        else:
            panels.append({**row, "panels": []})
            panels.extend(inner)
    return panels


# --- variables, links, the dashboard ------------------------------------------------------------


def datasource_variable() -> Json:
    """``${datasource}``: any Prometheus datasource, picked from a list."""
    raw = _json(
        g.Template(
            name=DATASOURCE_VARIABLE,
            query="prometheus",
            type="datasource",
            label="Data source",
            default="default",
        )
    )
    variable = {k: v for k, v in raw.items() if k in _VARIABLE_KEYS and v is not None}
    variable["current"] = {}
    variable.pop("sort", None)
    return variable


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> Json:
    """A variable whose values are a label's values in Prometheus (``label_values(...)``),
    refreshed when the time range changes; multi-value with All (``.*``) by default."""
    raw = _json(
        g.Template(
            name=name,
            label=label,
            query=query,
            dataSource=DATASOURCE,
            multi=multi,
            includeAll=multi,
            allValue=".*" if multi else None,
            refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
            sort=g.SORT_ALPHA_ASC,
        )
    )
    variable = {k: v for k, v in raw.items() if k in _VARIABLE_KEYS and v is not None}
    variable["query"] = {"query": query, "refId": f"{name}-query", "qryType": 1}
    variable["current"] = {}
    return variable


def dashboards_link() -> Json:
    """The dropdown of every generated dashboard, carrying the variables and time over."""
    raw = _json(
        g.DashboardLink(
            title="carewatch",
            type="dashboards",
            tags=[TAG],
            asDropdown=True,
            includeVars=True,
            keepTime=True,
        )
    )
    kept = {k: v for k, v in raw.items() if k in _LINK_KEYS}
    kept.pop("url", None)
    return {**kept, "keepTime": True}


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    items: Iterable[Panel | Row],
    variables: Sequence[Json],
    time_from: str,
    refresh: str = "30s",
    links: Sequence[Json] = (),
) -> Json:
    """A whole dashboard, in Grafana's current model, ``uid`` stable across regenerations."""
    raw = _json(
        g.Dashboard(
            title=title,
            uid=uid,
            description=description,
            tags=[TAG],
            timezone="browser",
            editable=True,
            graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
            refresh=refresh,
            time=g.Time(f"now-{time_from}", "now"),
            schemaVersion=SCHEMA_VERSION,
            version=1,
        )
    )
    board = {k: v for k, v in raw.items() if k in _DASHBOARD_KEYS}
    board["panels"] = layout(items)
    board["templating"] = {"list": list(variables)}
    board["links"] = [dashboards_link(), *links]
    board["timepicker"] = {}
    board["annotations"] = {"list": []}
    return board


def url_link(title: str, url: str, tooltip: str = "") -> Json:
    """A dashboard link to ``url`` (another dashboard with its variables, say)."""
    return {
        "title": title,
        "type": "link",
        "icon": "dashboard",
        "tooltip": tooltip,
        "url": url,
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": True,
        "tags": [],
    }


def mapping_values(pairs: Mapping[int, tuple[str, str]]) -> list[Json]:
    """Value mappings from ``{value: (text, colour)}``."""
    return [value_text(value, text, color) for value, (text, color) in pairs.items()]
