"""Alert rules: a journey that is down or degraded, a channel that is down, SLO burn rates,
certificates, and the prober itself. docs/alerts.md lists each with what to do first.

Every alert has ``severity`` (``page`` or ``ticket``) and ``team``, and ``channel``,
``journey``, ``location`` and ``slo`` where they apply; the prober's own alerts have no channel
and no team, so they go to ``alerting.default_receiver``. Every alert of a channel is gated on
``carewatch_channel_open``, so a closed channel never alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from alerts import names, slo
from alerts import texts as a
from alerts.promql import number, selector, window
from alerts.recording import Group, Rule, group_id
from probes import Channel, Config, Journey, metrics
from probes.model import Alerting

#: Days of validity left under which a certificate raises a ticket, then a page.
CERTIFICATE_TICKET_DAYS: Final = 21
CERTIFICATE_PAGE_DAYS: Final = 7
#: A journey that has not run for this many intervals while its channel is open is stale.
STALE_INTERVALS: Final = 3
#: Rejected callbacks per window, at one agent, that count as a flood.
CALLBACK_FLOOD: Final = 10
CALLBACK_WINDOW: Final = 300
#: How far back a dead agent's location is looked up (in its last carewatch_build_info).
LOCATION_LOOKBACK: Final = 3600
#: How long the whole job must be missing before ProberDown fires: a Prometheus that has just
#: started has scraped nothing yet, and must not page for that.
ABSENT_FOR: Final = 300


def alert_groups(config: Config) -> list[Group]:
    """The burn-rate alerts of each journey, each channel's down and health alerts, and the
    agent's, in checks.yaml's order."""
    alerting = config.alerting
    groups = [
        burn_rate_group(channel, journey, alerting)
        for channel in config.channels
        for journey in channel.journeys
    ]
    groups += [channel_group(channel, alerting) for channel in config.channels]
    groups.append(agent_group(alerting))
    return groups


def severity(journey: Journey, wanted: names.Severity) -> names.Severity:
    """``wanted``, unless the journey's ``alert.page`` is false: then a ticket."""
    return wanted if journey.alert.page else names.TICKET


def channel_open(channel: str) -> str:
    """``and``-ed onto every alert of a channel: no alert while it is closed."""
    return f"and on (channel) {selector(metrics.CHANNEL_OPEN.name, channel=channel)} == 1"


def _journey(journey: Journey) -> dict[str, str]:
    return {"channel": journey.channel, "journey": journey.name}


def _alert(
    name: str,
    expr: str,
    labels: Mapping[str, str],
    annotations: dict[str, str],
    *,
    for_seconds: int = 0,
) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if for_seconds:
        rule["for"] = window(for_seconds)
    rule["labels"] = dict(sorted(labels.items()))
    rule["annotations"] = annotations
    return rule


def journey_links(channel: Channel, journey: Journey, alerting: Alerting) -> dict[str, str]:
    dashboard = a.dashboard_url(alerting.dashboard_url, journey.channel, journey.name)
    return a.links(channel, dashboard)


# --- burn rates -------------------------------------------------------------------------------

BURN_RATE_ALERTS: Final = {
    names.AVAILABILITY: names.AVAILABILITY_BURN_RATE,
    names.LATENCY: names.LATENCY_BURN_RATE,
}


def burn_rate_group(channel: Channel, journey: Journey, alerting: Alerting) -> Group:
    """Per SLI, a page and a ticket, each over two pairs of windows (``slo.BURN_RATES``)."""
    rules: list[Rule] = []
    slots = a.Slots(
        value=a.PERCENT,
        anywhere={journey.name: a.failed_step_anywhere(journey.channel, journey.name)},
    )
    for sli, alertname in BURN_RATE_ALERTS.items():
        for wanted, pairs in burn_rates(journey).items():
            text = a.burn_rate(journey, sli, paces(pairs, alerting.period_days), slots)
            rules.append(
                _alert(
                    alertname,
                    burn_rate_expr(journey, sli, pairs, alerting.period_days),
                    {**_journey(journey), "slo": sli, "severity": wanted, "team": channel.team},
                    a.annotate(text, journey_links(channel, journey, alerting)),
                )
            )
    return {"name": f"carewatch-slo-alerts-{group_id(journey)}", "rules": rules}


def burn_rates(journey: Journey) -> dict[names.Severity, tuple[slo.BurnRate, ...]]:
    """The pairs of windows of each severity the journey's burn-rate alerts have: a page and a
    ticket, or one ticket with all four pairs when it may not page."""
    found: dict[names.Severity, tuple[slo.BurnRate, ...]] = {}
    for pair in slo.BURN_RATES:
        wanted = severity(journey, pair.severity)
        found[wanted] = (*found.get(wanted, ()), pair)
    return found


def paces(pairs: tuple[slo.BurnRate, ...], period_days: int) -> str:
    """``at this pace 2 % of the 30-day error budget goes in 1h (14.4x), or 5 % in 6h (6x)``"""
    each = [
        f"{number(p.budget_share * 100)} % of the {period_days}-day error budget goes in "
        f"{p.long.name} ({number(p.factor(period_days))}x)"
        for p in pairs
    ]
    return "at this pace " + ", or ".join(each)


def burn_threshold(journey: Journey, sli: names.Sli, pair: slo.BurnRate, period_days: int) -> str:
    """``(14.4 * 0.001)``: the error ratio above which a window burns too fast."""
    return f"({number(pair.factor(period_days))} * {number(slo.error_budget(journey, sli))})"


def burn_rate_expr(
    journey: Journey, sli: names.Sli, pairs: tuple[slo.BurnRate, ...], period_days: int
) -> str:
    """Both windows of a pair over the threshold, for either pair; the channel open."""
    alternatives = []
    for pair in pairs:
        threshold = burn_threshold(journey, sli, pair, period_days)
        short = slo.sli_selector(pair.short.record, journey, sli)
        long = slo.sli_selector(pair.long.record, journey, sli)
        alternatives.append(f"(\n  {short} > {threshold}\n  and\n  {long} > {threshold}\n)")
    either = "\nor\n".join(alternatives)
    return f"(\n{either}\n)\n{channel_open(journey.channel)}\n"


# --- down, degraded, stale, certificates: per channel -----------------------------------------


def channel_group(channel: Channel, alerting: Alerting) -> Group:
    """Whether each journey is down, then each journey's alerts, then the channel's own."""
    rules: list[Rule] = [journey_down_record(channel, j) for j in channel.journeys]
    for journey in channel.journeys:
        rules += journey_alerts(channel, journey, alerting)
    rules.append(channel_down(channel, alerting))
    return {"name": f"carewatch-journeys-{channel.name}", "rules": rules}


def failing(journey: Journey, op: str = ">=") -> str:
    """The journey's locations whose last failed_runs runs all failed (``op``: ``>=`` keeps
    those series, ``>= bool`` gives 1 or 0 for every location)."""
    failures = selector(names.CONSECUTIVE_FAILURES, **_journey(journey))
    return f"{failures} {op} {journey.alert.failed_runs}"


def journey_down_record(channel: Channel, journey: Journey) -> Rule:
    """1 while the journey fails at min_failed_locations locations or more, else 0."""
    return {
        "record": names.JOURNEY_DOWN_RECORD,
        "expr": (
            f"sum by (channel, journey) ({failing(journey, '>= bool')})\n"
            f">= bool {journey.alert.min_failed_locations}\n"
        ),
        "labels": {**_journey(journey), "team": channel.team},
    }


def journey_alerts(channel: Channel, journey: Journey, alerting: Alerting) -> list[Rule]:
    """JourneyDown, JourneyDegraded (when it can fire), JourneyStale and the certificates."""
    labels = {**_journey(journey), "team": channel.team}
    links = journey_links(channel, journey, alerting)
    down = selector(names.JOURNEY_DOWN_RECORD, **_journey(journey))
    is_open = channel_open(journey.channel)
    located = a.Slots(step=a.failed_step_at_location(journey.channel, journey.name))
    rules = [
        _alert(
            names.JOURNEY_DOWN,
            f"{failing(journey)}\nand on (channel, journey) {down} == 1\n{is_open}\n",
            {"severity": severity(journey, names.PAGE), **labels},
            a.annotate(a.journey_down(journey, located), links),
        )
    ]
    if journey.alert.min_failed_locations > 1:  # else failing anywhere is down
        rules.append(
            _alert(
                names.JOURNEY_DEGRADED,
                f"{failing(journey)}\nand on (channel, journey) {down} == 0\n{is_open}\n",
                {"severity": names.TICKET, **labels},
                a.annotate(a.journey_degraded(journey, located), links),
            )
        )
    last_run = selector(metrics.JOURNEY_LAST_RUN.name, **_journey(journey))
    stale_after = STALE_INTERVALS * journey.interval
    open_gauge = selector(metrics.CHANNEL_OPEN.name, channel=journey.channel)
    rules.append(
        _alert(
            names.JOURNEY_STALE,
            (
                f"time() - {last_run} > {number(stale_after)}\n"
                f"and on (channel) min_over_time({open_gauge}[{window(math.ceil(stale_after))}])"
                " == 1\n"
            ),
            {"severity": severity(journey, names.PAGE), **labels},
            a.annotate(
                a.journey_stale(journey, STALE_INTERVALS, replace(a.TEMPLATE, value=a.DURATION)),
                links,
            ),
        )
    )
    expiry = selector(metrics.STEP_TLS_EXPIRY.name, **_journey(journey))
    left = f"{expiry} - time()"
    in_days = a.Slots(value=a.DURATION)
    for below, at_least, wanted in certificate_bands(journey):
        floor = f">= {number(at_least * slo.DAY)}" if at_least else "> 0"
        rules.append(
            _alert(
                names.CERTIFICATE_EXPIRES_SOON,
                f"{left} < {number(below * slo.DAY)}\nand\n{left} {floor}\n{is_open}\n",
                {"severity": severity(journey, wanted), **labels},
                a.annotate(a.certificate_soon(journey, below, in_days), links),
            )
        )
    rules.append(
        _alert(
            names.CERTIFICATE_EXPIRED,
            f"time() - {expiry} >= 0\n{is_open}\n",
            {"severity": severity(journey, names.PAGE), **labels},
            a.annotate(a.certificate_expired(journey, in_days), links),
        )
    )
    return rules


#: (days left under which, days left at or above which, severity) of CertificateExpiresSoon.
CERTIFICATE_BANDS: Final[tuple[tuple[int, int, names.Severity], ...]] = (
    (CERTIFICATE_TICKET_DAYS, CERTIFICATE_PAGE_DAYS, names.TICKET),
    (CERTIFICATE_PAGE_DAYS, 0, names.PAGE),
)


def certificate_bands(journey: Journey) -> list[tuple[int, int, names.Severity]]:
    """CERTIFICATE_BANDS with the journey's severities, neighbours of one severity merged (a
    journey that may not page has one ticket under 21 days)."""
    bands: list[tuple[int, int, names.Severity]] = []
    for below, at_least, wanted in CERTIFICATE_BANDS:
        wanted = severity(journey, wanted)
        if bands and bands[-1][2] == wanted:
            below = bands.pop()[0]
        bands.append((below, at_least, wanted))
    return bands


def channel_down(channel: Channel, alerting: Alerting) -> Rule:
    """Every journey of the channel down at once: one page instead of one per journey."""
    down = selector(names.JOURNEY_DOWN_RECORD, channel=channel.name)
    may_page = any(j.alert.page for j in channel.journeys)
    slots = a.Slots(
        anywhere={j.name: a.failed_step_anywhere(channel.name, j.name) for j in channel.journeys}
    )
    dashboard = a.dashboard_url(alerting.dashboard_url, channel.name)
    failing = selector(names.CONSECUTIVE_FAILURES, channel=channel.name)
    firing = selector(
        "ALERTS", alertname=names.CHANNEL_DOWN, alertstate="firing", channel=channel.name
    )
    # Once firing, it holds until every journey has recovered everywhere: resolving when the
    # first journey recovers would lift its inhibition while the others still fire, and page.
    return _alert(
        names.CHANNEL_DOWN,
        f"(\n  count by (channel) ({down} == 1) >= {len(channel.journeys)}\n"
        f"  or\n  (count by (channel) ({failing} > 0)\n   and on (channel) {firing})\n)\n"
        f"{channel_open(channel.name)}\n",
        {
            "channel": channel.name,
            "severity": names.PAGE if may_page else names.TICKET,
            "team": channel.team,
        },
        a.annotate(a.channel_down(channel, slots), a.links(channel, dashboard)),
    )


# --- the agent ----------------------------------------------------------------------------------


def with_location(expr: str, job: str) -> str:
    """``expr``, a series per agent, with the agent's ``location`` from carewatch_build_info."""
    info = selector(metrics.BUILD_INFO, job=job)
    return (
        f"(\n  {expr}\n)\n* on (instance, job) group_left (location)\n"
        f"max by (instance, job, location) ({info})\n"
    )


def agent_group(alerting: Alerting) -> Group:
    """ProberDown, ConfigReloadFailed and CallbackRejections, for every agent of the job."""
    job = alerting.job
    up = selector("up", job=job)
    info = selector(metrics.BUILD_INFO, job=job)
    overview = {"dashboard_url": a.dashboard_url(alerting.dashboard_url)}
    # The location of a dead agent is in its last build_info; without one (unseen for an
    # hour), it still pages, without a location.
    dead = (
        f"(\n  {up} == 0\n)\n* on (instance, job) group_left (location)\n"
        f"max by (instance, job, location) (last_over_time({info}[{window(LOCATION_LOOKBACK)}]))\n"
        f"or on (instance, job)\n{up} == 0\n"
    )
    reload = selector(metrics.CONFIG_RELOAD_SUCCESSFUL, job=job)
    rejected = selector(metrics.CALLBACK_EVENTS.name, job=job, result="rejected")
    over = window(CALLBACK_WINDOW)
    flood = f"sum by (instance, job, callback) (increase({rejected}[{over}])) > {CALLBACK_FLOOD}"
    page, ticket = {"severity": names.PAGE}, {"severity": names.TICKET}
    return {
        "name": "carewatch-agent",
        "rules": [
            _alert(
                names.PROBER_DOWN, dead, page, a.annotate(a.prober_down(job, a.TEMPLATE), overview)
            ),
            _alert(
                names.PROBER_DOWN,
                f"absent({up})\n",
                {**page, "targets": "none"},
                a.annotate(a.prober_absent(job), overview),
                for_seconds=ABSENT_FOR,
            ),
            _alert(
                names.CONFIG_RELOAD_FAILED,
                with_location(f"{reload} == 0", job),
                ticket,
                a.annotate(a.config_reload_failed(a.TEMPLATE), overview),
            ),
            _alert(
                names.CALLBACK_REJECTIONS,
                with_location(flood, job),
                ticket,
                a.annotate(a.callback_rejections(CALLBACK_FLOOD, over, a.TEMPLATE), overview),
            ),
        ],
    }
