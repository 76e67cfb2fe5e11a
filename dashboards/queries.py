"""PromQL shared by the dashboards: selectors filtered by the dashboard's variables, and the
expressions more than one dashboard shows (a journey's state, Apdex, quantiles).

>>> by_variables("carewatch_journey_up", "channel", "location")
'carewatch_journey_up{channel=~"$channel",location=~"$location"}'
>>> by_variables("carewatch_journey_runs_total", "channel", result="success")
'carewatch_journey_runs_total{channel=~"$channel",result="success"}'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from alerts import names
from alerts.promql import quote
from probes import metrics

#: The Apdex score under which a channel reads as degraded ("slow"): below "good" on the
#: Apdex scale (0.94 excellent, 0.85 good, 0.70 fair, 0.50 poor).
APDEX_GOOD: Final = 0.85
APDEX_EXCELLENT: Final = 0.94
APDEX_FAIR: Final = 0.7
APDEX_POOR: Final = 0.5

#: The overview's channel states, as the value of ``channel_state`` and its text.
UP: Final = 0
DEGRADED: Final = 1
DOWN: Final = 2
CLOSED: Final = 3

#: The buckets every journey's histogram has (each adds its own thresholds on top): summing
#: journeys' buckets over these alone keeps a channel's quantiles exact.
SHARED_BUCKETS: Final = "|".join(
    [*(metrics.format_le(b).replace(".", "\\.") for b in metrics.DURATION_BUCKETS), "\\+Inf"]
)


def by_variables(
    metric: str, *variables: str, regex: Mapping[str, str] | None = None, **labels: str
) -> str:
    """``metric`` filtered by each named dashboard variable (``=~"$name"``, so All's ``.*``
    and multi-value alternations both work), then by ``regex`` matchers and exact ``labels``."""
    matchers = [f'{name}=~"${name}"' for name in variables]
    matchers += [f"{name}=~{quote(value)}" for name, value in (regex or {}).items()]
    matchers += [f"{name}={quote(value)}" for name, value in labels.items()]
    return f"{metric}{{{','.join(matchers)}}}"


def rate(selector: str) -> str:
    return f"rate({selector}[$__rate_interval])"


def apdex(by: str, *variables: str) -> str:
    """The Apdex score over ``$__rate_interval``, summed ``by`` the labels given: (satisfied +
    tolerating / 2) / runs, failed runs counting as frustrated (as the exporter counts them)."""
    name = metrics.JOURNEY_APDEX.name

    def zone(zone: str) -> str:
        return f"sum by ({by}) ({rate(by_variables(name, *variables, zone=zone))})"

    return (
        f"(\n  {zone('satisfied')}\n  +\n  {zone('tolerating')} / 2\n)\n/\n"
        f"(sum by ({by}) ({rate(by_variables(name, *variables))}) > 0)"
    )


def duration_quantile(quantile: float, by: str, *variables: str, shared: bool = False) -> str:
    """A quantile of successful journey runs' duration, from the histogram, ``by`` the labels
    given (``le`` added); ``shared`` keeps to SHARED_BUCKETS, for sums over journeys."""
    bucket = f"{metrics.JOURNEY_DURATION.name}_bucket"
    matchers = by_variables(bucket, *variables, regex={"le": SHARED_BUCKETS} if shared else None)
    return f"histogram_quantile({quantile}, sum by ({by}, le) ({rate(matchers)}))"


def channel_state(channel: str) -> str:
    """The channel's state at the locations chosen, as UP, DEGRADED, DOWN or CLOSED.

    Open: DOWN when every journey fails everywhere, DEGRADED when some fail (or fail at some
    locations only), or when a journey's Apdex over the last hour is below APDEX_GOOD (slow),
    else UP. Closed (by its opening hours): CLOSED, whatever the last runs said.
    """
    up = f'{metrics.JOURNEY_UP.name}{{channel={quote(channel)},location=~"$location"}}'
    apdex1h = f'{names.APDEX}1h{{channel={quote(channel)},location=~"$location"}}'
    opened = f"max({metrics.CHANNEL_OPEN.name}{{channel={quote(channel)}}})"
    return (
        "(\n"
        "  max(\n"
        f'    label_replace({DOWN} - max({up}) - min({up}), "of", "runs", "", "")\n'
        "    or\n"
        f'    label_replace(min({apdex1h}) < bool {APDEX_GOOD}, "of", "speed", "", "")\n'
        "  )\n"
        f"  and on () ({opened} > 0)\n"
        ")\n"
        f"or on ()\n(vector({CLOSED}) and on () ({opened} == 0))"
    )
