"""The SLO maths: each journey's two SLIs over Sloth's windows, and the multi-window,
multi-burn-rate alert policy of the Google SRE Workbook (as Sloth generates it).

An SLI here is an error ratio over a window, summed over every location that runs the journey:

* availability: failed runs / runs;
* latency: 1 - runs within ``latency_threshold`` / successful runs, read from the histogram's
  exact bucket at the threshold (``probes.metrics.duration_buckets`` adds it).

The denominator is kept only where it is above 0, so a window without runs (a closed channel)
has no value at all rather than 0/0 = NaN (see docs/alerts.md#closed-hours).

>>> [w.name for w in WINDOWS]
['5m', '30m', '1h', '2h', '6h', '1d', '3d']
>>> for p in BURN_RATES:
...     print(p.severity, p.long.name, p.short.name, number(p.factor(30)))
page 1h 5m 14.4
page 6h 30m 6
ticket 1d 2h 3
ticket 3d 6h 1
>>> number(BURN_RATES[0].factor(28))  # Sloth's figure for a 28-day period
'13.44'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alerts import names
from alerts.promql import number, selector, window
from probes import Journey, metrics

MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86400


@dataclass(frozen=True, slots=True)
class Window:
    """A range the SLI is recorded over, named as Prometheus prints durations."""

    seconds: int

    @property
    def name(self) -> str:
        return window(self.seconds)

    @property
    def record(self) -> str:
        """The SLI's recording rule over this window: ``slo:sli_error:ratio_rate5m``."""
        return f"{names.SLI_ERROR}{self.name}"


#: The windows recorded from the raw counters with ``rate()``: the burn-rate alerts' windows.
WINDOWS: Final = tuple(
    Window(s) for s in (5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, DAY, 3 * DAY)
)
SHORTEST: Final = WINDOWS[0]
#: Always recorded (Sloth's default period), as the mean of the 5m ratios like the period itself.
THIRTY_DAYS: Final = Window(30 * DAY)


@dataclass(frozen=True, slots=True)
class BurnRate:
    """One pair of windows of a multi-window alert: it fires when both the long and the short
    window burn the error budget at least ``factor`` times as fast as the period allows.

    ``budget_share`` is the share of the period's budget that such a burn spends over the long
    window: the factor is derived from it, so a 30-day period gives the Workbook's 14.4, 6, 3
    and 1, and another period gives what Sloth would.
    """

    severity: names.Severity
    long: Window
    short: Window
    budget_share: float

    def factor(self, period_days: int) -> float:
        return self.budget_share * period_days * DAY / self.long.seconds


_W = {w.name: w for w in WINDOWS}
BURN_RATES: Final = (
    BurnRate(names.PAGE, _W["1h"], _W["5m"], 0.02),
    BurnRate(names.PAGE, _W["6h"], _W["30m"], 0.05),
    BurnRate(names.TICKET, _W["1d"], _W["2h"], 0.1),
    BurnRate(names.TICKET, _W["3d"], _W["6h"], 0.1),
)


def period_window(period_days: int) -> Window:
    """The SLO period as a window: ``30d`` by default, ``4w`` for 28 days (as Sloth names it)."""
    return Window(period_days * DAY)


def averaged_windows(period_days: int) -> tuple[Window, ...]:
    """The windows recorded as the mean of the 5m ratios (Sloth's way for the period, which no
    ``rate()`` over raw counters should span): 30d, plus the period when it is another window."""
    period = period_window(period_days)
    if period == THIRTY_DAYS or period in WINDOWS:
        return (THIRTY_DAYS,)
    return (THIRTY_DAYS, period)


def objective(journey: Journey, sli: names.Sli) -> float:
    """The SLO as a ratio: 0.999 for 99.9 % availability, 0.95 for 95 % of runs in time."""
    return (
        journey.slo.availability_ratio if sli == names.AVAILABILITY else journey.slo.latency_ratio
    )


def error_budget(journey: Journey, sli: names.Sli) -> float:
    """1 - the objective, rounded as ``promql.number`` writes it (0.001, not 0.000999...)."""
    return float(number(1 - objective(journey, sli)))


def _journey(journey: Journey) -> dict[str, str]:
    return {"channel": journey.channel, "journey": journey.name}


def sli_error_ratio(journey: Journey, sli: names.Sli, over: Window) -> str:
    """The SLI's error ratio over ``over``, all locations together; no value without runs."""
    labels = _journey(journey)
    w = over.name
    if sli == names.AVAILABILITY:
        runs = metrics.JOURNEY_RUNS.name
        failed = selector(runs, **labels, result="failure")
        return f"sum(rate({failed}[{w}]))\n/\n(sum(rate({selector(runs, **labels)}[{w}])) > 0)\n"
    histogram = metrics.JOURNEY_DURATION.name
    le = metrics.format_le(journey.slo.latency_threshold)
    within = selector(f"{histogram}_bucket", **labels, le=le)
    successful = selector(f"{histogram}_count", **labels)
    return f"1 - (\n  sum(rate({within}[{w}]))\n  /\n  (sum(rate({successful}[{w}])) > 0)\n)\n"


def sli_labels(journey: Journey, team: str, sli: names.Sli) -> dict[str, str]:
    """The labels of every SLO series of ``journey``: channel, journey, team and slo."""
    return {**_journey(journey), "slo": sli, "team": team}


def sli_selector(metric: str, journey: Journey, sli: names.Sli) -> str:
    """A selector for one of the journey's SLO series."""
    return selector(metric, **_journey(journey), slo=sli)
