"""The overview, "Mobile care channels": the page an SRE opens first.

From the top: a tile per channel (up, degraded, down or closed, in words and colour), every
journey's state at each location over time, each journey's uptime and error budget, Apdex and
p95 duration per channel, and the steps failing now with their reason and message. Alerts about
a channel link here (``alerts.names.OVERVIEW_DASHBOARD``). docs/dashboards.md#overview.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote as url_quote

from alerts import names, slo
from alerts.promql import number
from dashboards import grafana as gf
from dashboards import queries as q
from dashboards.grafana import Json, Query, Threshold
from probes import Channel, Config, metrics

UID: Final = "carewatch-overview"
TITLE: Final = "Mobile care channels"
#: The drill-down, with the variables a data link sets from the clicked series.
JOURNEY_LINK: Final = (
    f"{names.JOURNEY_DASHBOARD}?var-channel=${{__field.labels.channel}}"
    "&var-journey=${__field.labels.journey}&${__url_time_range}"
)

STATE_TEXT: Final = {
    q.UP: ("✔ Up", gf.GREEN),
    q.DEGRADED: ("⚠ Degraded", gf.ORANGE),
    q.DOWN: ("✖ Down", gf.RED),
    q.CLOSED: ("☾ Closed", gf.BLUE),
}
MIN_TILE_WIDTH: Final = 3
#: A journey's lane in the state timeline: its last result, or closed.
LANE_TEXT: Final = {1: ("up", gf.GREEN), 0: ("down", gf.RED), 2: ("closed", gf.BLUE)}
APDEX_STEPS: Final = gf.thresholds(
    Threshold(gf.RED),
    Threshold(gf.ORANGE, q.APDEX_POOR),
    Threshold(gf.YELLOW, q.APDEX_FAIR),
    Threshold(gf.GREEN, q.APDEX_GOOD),
)


def overview(config: Config) -> Json:
    """The overview dashboard of ``config``'s channels."""
    return gf.dashboard(
        uid=UID,
        title=TITLE,
        description=(
            "Can customers get help from their phones right now? Every care channel's state, "
            "its journeys at each location, uptime, error budget, Apdex and what is failing."
        ),
        items=[
            *(
                status_tile(channel, width)
                for channel, width in zip(
                    config.channels, tile_widths(len(config.channels)), strict=True
                )
            ),
            journey_states(),
            journeys_table(config),
            apdex_per_channel(),
            p95_per_channel(config),
            failing_steps(),
        ],
        variables=[
            gf.datasource_variable(),
            gf.query_variable(
                "channel", "Channel", f"label_values({metrics.JOURNEY_INFO.name}, channel)"
            ),
            gf.query_variable(
                "location",
                "Location",
                f'label_values({metrics.JOURNEY_UP.name}{{channel=~"$channel"}}, location)',
            ),
        ],
        time_from="6h",
    )


def tile_widths(tiles: int) -> list[int]:
    """Widths that fill the grid's lines evenly with ``tiles`` tiles, none narrower than
    MIN_TILE_WIDTH:

    >>> tile_widths(7), tile_widths(10)
    ([4, 4, 4, 3, 3, 3, 3], [5, 5, 5, 5, 4, 5, 5, 5, 5, 4])
    """
    lines = -(-tiles // (gf.WIDTH // MIN_TILE_WIDTH))
    per_line = -(-tiles // max(lines, 1))
    widths: list[int] = []
    while len(widths) < tiles:
        line = min(per_line, tiles - len(widths))
        base, extra = divmod(gf.WIDTH, line)
        widths += [base + 1] * extra + [base] * (line - extra)
    return widths


def status_tile(channel: Channel, width: int) -> gf.Panel:
    """The channel's state now, in words (with an icon) as well as colour."""
    journeys = ", ".join(j.name for j in channel.journeys)
    return gf.stat(
        channel.name,
        [Query(q.channel_state(channel.name), channel.name, instant=True)],
        unit="none",
        description=(
            f"{channel.kind.value} channel of team {channel.team}; journeys: {journeys}. "
            "Down: every journey fails everywhere. Degraded: some fail, or fail at some "
            f"locations only, or are slow (Apdex over the last hour below {q.APDEX_GOOD}). "
            "Closed: outside its opening hours."
        ),
        mappings=gf.mapping_values(STATE_TEXT),
        steps=gf.thresholds(Threshold(gf.GREY)),
        no_value="no data",
        width=width,
        height=4,
        links=[
            gf.link(
                f"{channel.name}: journeys",
                f"{names.JOURNEY_DASHBOARD}?var-channel={url_quote(channel.name)}"
                "&${__url_time_range}",
            )
        ],
    )


def journey_states() -> gf.Panel:
    """Every journey at each location over time: up, down or closed."""
    up = q.by_variables(metrics.JOURNEY_UP.name, "channel", "location")
    opened = f"{metrics.CHANNEL_OPEN.name} == 1"
    return gf.state_timeline(
        "Journeys at each location",
        [
            Query(
                "max by (channel, journey, location) (\n"
                f"  ({up} and on (channel) ({opened}))\n  or\n  ({up} * 0 + 2)\n)",
                "{{channel}} / {{journey}} @ {{location}}",
            )
        ],
        mappings=gf.mapping_values(LANE_TEXT),
        description="Each journey's last result at each location (after retries), and closed "
        "while its channel is outside its opening hours. Click a lane for the journey.",
        height=8,
        links=[gf.link("Journey drill-down", JOURNEY_LINK)],
    )


def journeys_table(config: Config) -> gf.Panel:
    """Per journey: uptime over the range and over 30 days, error budget left, burn rate now."""
    runs = metrics.JOURNEY_RUNS.name
    by = "channel, journey"
    ok = q.by_variables(runs, "channel", "location", result="success")
    every = q.by_variables(runs, "channel", "location")
    availability = f'{{channel=~"$channel",slo="{names.AVAILABILITY}"}}'
    thirty = slo.THIRTY_DAYS.record
    columns = {
        "Value #A": "Uptime (range)",
        "Value #B": "Uptime (30 d)",
        "Value #C": f"Error budget left ({config.alerting.period_days} d)",
        "Value #D": "Burn rate now",
    }
    budget = gf.thresholds(
        Threshold(gf.RED),
        Threshold(gf.ORANGE, 0),
        Threshold(gf.YELLOW, 0.25),
        Threshold(gf.GREEN, 0.5),
    )
    fastest = max(p.factor(config.alerting.period_days) for p in slo.BURN_RATES)
    burn = gf.thresholds(Threshold(gf.GREEN), Threshold(gf.ORANGE, 1), Threshold(gf.RED, fastest))
    return gf.table(
        "Journeys: uptime, error budget and burn rate",
        [
            Query(
                f"sum by ({by}) (increase({ok}[$__range]))\n/\n"
                f"(sum by ({by}) (increase({every}[$__range])) > 0)",
                instant=True,
                table=True,
            ),
            Query(f"1 - max by ({by}) ({thirty}{availability})", instant=True, table=True),
            Query(
                f"max by ({by}) ({names.PERIOD_BUDGET_REMAINING}{availability})",
                instant=True,
                table=True,
            ),
            Query(
                f"max by ({by}) ({names.CURRENT_BURN_RATE}{availability})",
                instant=True,
                table=True,
            ),
        ],
        transformations=gf.merged({"channel": "Channel", "journey": "Journey", **columns}),
        overrides=[
            _column(columns["Value #A"], "percentunit", None),
            _column(columns["Value #B"], "percentunit", None),
            _column(columns["Value #C"], "percentunit", budget),
            _column(columns["Value #D"], "none", burn),
        ],
        description=(
            "Uptime: successful runs / runs at the locations chosen, over the dashboard's range "
            "and over 30 days (every location). Error budget left over the SLO period, and the "
            "availability burn rate over the last 5 minutes: 1 spends the budget exactly over "
            f"the period; {number(fastest)} pages."
        ),
        sort_by=columns["Value #C"],
        height=9,
    )


def _column(name: str, unit: str, steps: Json | None) -> Json:
    properties: dict[str, object] = {"unit": unit, "decimals": 2 if unit == "none" else 3}
    if steps is not None:
        properties["thresholds"] = steps
        properties["custom.cellOptions"] = {"type": "color-background", "mode": "basic"}
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def apdex_per_channel() -> gf.Panel:
    """Each channel's Apdex score: satisfied + tolerating / 2, over runs."""
    return gf.timeseries(
        "Apdex per channel",
        [Query(q.apdex("channel", "channel", "location"), "{{channel}}")],
        unit="none",
        steps=APDEX_STEPS,
        threshold_style="line+area",
        min=0,
        max=1,
        description=(
            "Apdex over the runs of every journey of the channel at the locations chosen; each "
            "journey judged by its own apdex_t (satisfied <= T, tolerating <= 4T, failed runs "
            f"frustrated). {q.APDEX_GOOD} and above is good, under {q.APDEX_POOR} poor."
        ),
    )


def p95_per_channel(config: Config) -> gf.Panel:
    """Each channel's p95 journey duration, with its strictest latency threshold drawn."""
    overrides = []
    for channel in config.channels:
        limit = min(j.slo.latency_threshold for j in channel.journeys)
        overrides.append(
            gf.override(
                f"^{_regex(channel.name)}$",
                thresholds=gf.thresholds(Threshold(gf.GREEN), Threshold(gf.RED, limit)),
                **{"custom.thresholdsStyle": {"mode": "dashed"}},
            )
        )
    return gf.timeseries(
        "p95 journey duration per channel",
        [
            Query(
                q.duration_quantile(0.95, "channel", "channel", "location", shared=True),
                "{{channel}}",
            )
        ],
        unit="s",
        overrides=overrides,
        description=(
            "95 % of the successful runs of the channel's journeys at the locations chosen "
            "finished within this time. The dashed line is the strictest latency_threshold of "
            "the channel's journeys in checks.yaml."
        ),
    )


def _regex(text: str) -> str:
    return "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in text)


def failing_steps() -> gf.Panel:
    """The steps failing now: where, why, the message, and for how long."""
    info = q.by_variables(metrics.STEP_FAILURE_INFO.name, "channel", "location")
    failures = q.by_variables(metrics.JOURNEY_CONSECUTIVE_FAILURES.name, "channel", "location")
    interval = metrics.JOURNEY_INTERVAL.name
    by = "channel, journey, location"
    return gf.table(
        "Steps failing now",
        [
            Query(f"max by ({by}, step, reason, message) ({info})", instant=True, table=True),
            Query(f"max by ({by}) ({failures} > 0)", instant=True, table=True),
            Query(
                f"max by ({by}) ({failures} > 0)\n"
                f"* on (channel, journey) group_left ()\nmax by (channel, journey) ({interval})",
                instant=True,
                table=True,
            ),
        ],
        transformations=gf.merged(
            {
                "channel": "Channel",
                "journey": "Journey",
                "step": "Step",
                "location": "Location",
                "reason": "Reason",
                "message": "Message",
                "Value #C": "Failing for (about)",
                "Value #B": "Failed runs in a row",
            },
            hidden=["Value #A"],
        ),
        overrides=[
            {
                "matcher": {"id": "byName", "options": "Failing for (about)"},
                "properties": [{"id": "unit", "value": "dtdurations"}],
            }
        ],
        description=(
            "The step that failed each journey's last run at each location, with its reason "
            "(docs/results.md) and message; failing for about its failed runs in a row times "
            "its interval."
        ),
        no_value="Nothing is failing",
        sort_by="Failed runs in a row",
        height=8,
    )
