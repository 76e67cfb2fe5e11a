"""The SLO dashboard, "Care journey SLOs": per journey and SLI (availability, latency), the
objective, the SLI over the SLO period, the error budget left, and the burn rate over each
window the alerts watch, with the alerts' burn-rate thresholds drawn.

Unlike the drill-down, its rows are written from checks.yaml journey by journey, so each row's
thresholds are that journey's own numbers. It reads the recording rules ``carewatch alerts``
generates (``slo:*``, Sloth's names). docs/dashboards.md#slos.
"""

from __future__ import annotations

from typing import Final

from alerts import names, slo
from alerts.promql import number, selector
from dashboards import grafana as gf
from dashboards.grafana import Json, Query, Threshold
from probes import Config, Journey

UID: Final = "carewatch-slos"
TITLE: Final = "Care journey SLOs"
SLI_TITLE: Final = {names.AVAILABILITY: "availability", names.LATENCY: "latency"}


def slos(config: Config) -> Json:
    """The SLO dashboard: two lines of panels per journey of ``config``."""
    period = config.alerting.period_days
    items: list[gf.Panel | gf.Row] = []
    for channel in config.channels:
        for journey in channel.journeys:
            panels: list[gf.Panel] = []
            for sli in names.SLIS:
                panels += sli_panels(journey, sli, period)
            items.append(gf.Row(f"{channel.name} / {journey.name}", panels))
    return gf.dashboard(
        uid=UID,
        title=TITLE,
        description=(
            "Each journey's objectives, how much of the error budget is left, and how fast it "
            f"burns over the windows the alerts watch ({period}-day SLO period)."
        ),
        items=items,
        variables=[gf.datasource_variable()],
        time_from="7d",
        refresh="1m",
    )


def sli_panels(journey: Journey, sli: names.Sli, period_days: int) -> list[gf.Panel]:
    """Objective, SLI over the period, budget left and burn rates of one SLI of ``journey``."""
    labels = {"channel": journey.channel, "journey": journey.name, "slo": sli}
    objective = slo.objective(journey, sli)
    budget = slo.error_budget(journey, sli)
    period = slo.period_window(period_days)
    what = SLI_TITLE[sli]
    if sli == names.AVAILABILITY:
        meaning = "share of runs that succeed"
    else:
        meaning = (
            f"share of successful runs within {number(journey.slo.latency_threshold)}s "
            "(its latency_threshold)"
        )
    burn = gf.thresholds(
        Threshold(gf.GREEN),
        *(
            Threshold(gf.YELLOW if p.severity == names.TICKET else gf.RED, p.factor(period_days))
            for p in sorted(slo.BURN_RATES, key=lambda p: p.factor(period_days))
        ),
    )
    windows = sorted(
        {w for p in slo.BURN_RATES for w in (p.long, p.short)}, key=lambda w: w.seconds
    )
    return [
        gf.stat(
            f"{what}: objective",
            [Query(f"max({selector(names.OBJECTIVE, **labels)})", instant=True)],
            unit="percentunit",
            decimals=3,
            steps=gf.thresholds(Threshold(gf.BLUE)),
            description=f"The {what} objective in checks.yaml: the {meaning}.",
            width=3,
            height=5,
        ),
        gf.stat(
            f"{what}: SLI over {period.name}",
            [Query(f"1 - max({selector(period.record, **labels)})", instant=True)],
            unit="percentunit",
            decimals=3,
            steps=gf.thresholds(Threshold(gf.RED), Threshold(gf.GREEN, objective)),
            description=(
                f"The {meaning}, over the SLO period (every location): green at or above the "
                f"objective, {number(objective * 100)} %."
            ),
            width=4,
            height=5,
        ),
        gf.gauge(
            f"{what}: error budget left",
            [Query(f"max({selector(names.PERIOD_BUDGET_REMAINING, **labels)})", instant=True)],
            unit="percentunit",
            steps=gf.thresholds(
                Threshold(gf.RED), Threshold(gf.ORANGE, 0.25), Threshold(gf.GREEN, 0.5)
            ),
            min=0,
            max=1,
            description=(
                f"Share of the {period.name} error budget ({number(budget * 100)} % of runs) "
                "not yet spent; 0 or less: the objective is missed."
            ),
            width=4,
            height=5,
        ),
        gf.timeseries(
            f"{what}: burn rate",
            [
                Query(
                    f"max({selector(w.record, **labels)}) / {number(budget)}",
                    w.name,
                )
                for w in windows
            ],
            unit="none",
            steps=burn,
            threshold_style="line",
            min=0,
            description=(
                "How fast the error budget burns over each window the alerts watch: 1 spends it "
                "exactly over the period. The lines are the alerts' thresholds: "
                + "; ".join(
                    f"{p.severity} when {p.long.name} and {p.short.name} are both above "
                    f"{number(p.factor(period_days))}"
                    for p in slo.BURN_RATES
                )
                + "."
            ),
            width=13,
            height=5,
        ),
    ]
