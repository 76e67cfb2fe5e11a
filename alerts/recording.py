"""Recording rules: each journey's SLIs over Sloth's windows, the SLO's metadata and budget,
and carewatch's per-location uptime and Apdex ratios.

Three groups per journey, like Sloth's ``sli-recordings``, ``meta-recordings`` (the alerts are
``alerts.rules``): every series carries ``channel``, ``journey``, ``team`` and ``slo``
(``availability`` or ``latency``); the uptime and Apdex ratios carry ``location`` instead of
``slo``. docs/alerts.md#recording-rules lists them.
"""

from __future__ import annotations

from typing import Any, Final

from alerts import names, slo
from alerts.promql import number, selector
from probes import Channel, Config, Journey, metrics

Rule = dict[str, Any]
Group = dict[str, Any]

#: The windows of the per-location uptime and Apdex ratios.
RATIO_WINDOWS: Final = (slo.Window(slo.HOUR), slo.Window(slo.DAY))
_BY_LOCATION: Final = "channel, journey, location"


def recording_groups(config: Config) -> list[Group]:
    """Every recording group, journey by journey in checks.yaml's order."""
    groups: list[Group] = []
    for channel in config.channels:
        for journey in channel.journeys:
            groups.append(sli_group(channel, journey, config.alerting.period_days))
            groups.append(meta_group(channel, journey, config.alerting.period_days))
    return groups


def group_id(journey: Journey) -> str:
    """``channel-journey``: the suffix of the journey's group names."""
    return f"{journey.channel}-{journey.name}"


def sli_group(channel: Channel, journey: Journey, period_days: int) -> Group:
    """The SLIs over every window, then uptime and Apdex per location."""
    rules: list[Rule] = []
    for sli in names.SLIS:
        labels = slo.sli_labels(journey, channel.team, sli)
        for over in slo.WINDOWS:
            rules.append(
                {
                    "record": over.record,
                    "expr": slo.sli_error_ratio(journey, sli, over),
                    "labels": labels,
                }
            )
        shortest = slo.sli_selector(slo.SHORTEST.record, journey, sli)
        for over in slo.averaged_windows(period_days):
            rules.append(
                {
                    "record": over.record,
                    "expr": (
                        f"sum_over_time({shortest}[{over.name}])\n/\n"
                        f"count_over_time({shortest}[{over.name}])\n"
                    ),
                    "labels": labels,
                }
            )
    labels = {"channel": journey.channel, "journey": journey.name, "team": channel.team}
    for kind, ratio in ((names.UPTIME, uptime), (names.APDEX, apdex)):
        rules += [
            {"record": f"{kind}{over.name}", "expr": ratio(journey, over), "labels": labels}
            for over in RATIO_WINDOWS
        ]
    return {"name": f"carewatch-slo-sli-recordings-{group_id(journey)}", "rules": rules}


def meta_group(channel: Channel, journey: Journey, period_days: int) -> Group:
    """Objective, budget and burn rates, as Sloth records them."""
    period = slo.period_window(period_days)
    rules: list[Rule] = []
    for sli in names.SLIS:
        labels = slo.sli_labels(journey, channel.team, sli)
        budget = slo.sli_selector(names.ERROR_BUDGET, journey, sli)
        on = "on (channel, journey, slo) group_left"
        for record, expr in (
            (names.OBJECTIVE, f"vector({number(slo.objective(journey, sli))})"),
            (names.ERROR_BUDGET, f"vector({number(slo.error_budget(journey, sli))})"),
            (names.TIME_PERIOD, f"vector({period_days})"),
            (
                names.CURRENT_BURN_RATE,
                f"{slo.sli_selector(slo.SHORTEST.record, journey, sli)}\n/ {on}\n{budget}\n",
            ),
            (
                names.PERIOD_BURN_RATE,
                f"{slo.sli_selector(period.record, journey, sli)}\n/ {on}\n{budget}\n",
            ),
            (
                names.PERIOD_BUDGET_REMAINING,
                f"1 - {slo.sli_selector(names.PERIOD_BURN_RATE, journey, sli)}",
            ),
        ):
            rules.append({"record": record, "expr": expr, "labels": labels})
    return {"name": f"carewatch-slo-meta-recordings-{group_id(journey)}", "rules": rules}


def uptime(journey: Journey, over: slo.Window) -> str:
    """Successful runs / runs at each location over ``over``; no value without runs."""
    runs = metrics.JOURNEY_RUNS.name
    labels = {"channel": journey.channel, "journey": journey.name}
    ok = selector(runs, **labels, result="success")
    w = over.name
    return (
        f"sum by ({_BY_LOCATION}) (rate({ok}[{w}]))\n/\n"
        f"(sum by ({_BY_LOCATION}) (rate({selector(runs, **labels)}[{w}])) > 0)\n"
    )


def apdex(journey: Journey, over: slo.Window) -> str:
    """The Apdex score at each location over ``over``: (satisfied + tolerating / 2) / runs,
    failed runs counting as frustrated (as the exporter counts them)."""
    total = metrics.JOURNEY_APDEX.name
    labels = {"channel": journey.channel, "journey": journey.name}
    w = over.name

    def zone(name: str) -> str:
        return f"sum by ({_BY_LOCATION}) (rate({selector(total, **labels, zone=name)}[{w}]))"

    return (
        f"(\n  {zone('satisfied')}\n  +\n  {zone('tolerating')} / 2\n)\n/\n"
        f"(sum by ({_BY_LOCATION}) (rate({selector(total, **labels)}[{w}])) > 0)\n"
    )
