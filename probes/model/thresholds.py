"""Load-test thresholds, k6-like, and the ``loadtest:`` sections of checks.yaml that hold them.

A threshold is ``<metric> <op> <value>``, checked once, at the end of a run, against one entry
of Locust's statistics (a journey's ``JOURNEY`` entry, or the total of every step,
``TOTAL_ENTRY``)::

    p95 < 800ms          p99.9 <= 2s          avg < 1s          max < 5s
    fail_ratio < 1%      fail_ratio < 0.01    rps > 50          rps >= 10

* metric: a percentile ``pNN`` or ``pNN.N`` (``p50``, ``p95``, ``p99.9``: any number strictly
  between 0 and 100), ``avg``, ``min``, ``max``, ``med`` (the median, same as ``p50``),
  ``fail_ratio`` or ``rps``;
* op: ``<``, ``<=``, ``>`` or ``>=``;
* value: for a latency metric, a duration **with its unit** (``800ms``, ``2s``, ``1.5s``, ``1m``);
  a bare number is an error, because k6 reads ``p95 < 800`` as milliseconds while checks.yaml
  durations read a bare number as seconds, and a gate off by 1000x passes silently. For
  ``fail_ratio``, a percentage (``1%``) or a ratio from 0 to 1 (``0.01``). For ``rps``, a plain
  number of requests per second.

>>> t = parse_threshold("p95<800ms")
>>> t.metric, t.op, t.value, str(t)
('p95', <Op.LT: '<'>, 0.8, 'p95 < 800ms')

Journeys without thresholds of their own get them from their SLO (``default_thresholds``).
This module imports neither locust nor gevent: the config loader and the report use it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, TypeAlias

from pydantic import Field, PlainSerializer, PlainValidator, field_validator, model_validator

from probes.model.durations import format_duration, parse_duration
from probes.model.types import Frozen, Name, Seconds, SecondsOrZero

#: What the metric part of an expression may be, for messages.
METRICS_EXPECTED: Final = "expected p50..p99.9, avg, min, max, med, fail_ratio or rps"
#: An example of the whole form, for messages.
EXAMPLE: Final = "p95 < 800ms"
#: The entry global thresholds are checked against: every step request together. Locust's own
#: ``Aggregated`` row also counts the ``JOURNEY`` entries, so a journey run would count as a
#: request (``rps``) and a failed step would fail twice (``fail_ratio``); this total does not.
TOTAL_ENTRY: Final = "steps (all)"
#: What ``TOTAL_ENTRY`` holds, for the reports.
TOTAL_MEANING: Final = (
    "every step's requests together (each channel/journey/step entry); the JOURNEY entries are "
    "left out, unlike Locust's Aggregated row, so a journey run is not a request and a failed "
    "step is not counted twice"
)
#: The resolution of Locust's percentiles, as ``locust/stats.py`` (``bucket_response_time``,
#: Locust 2.x) computes them: each response time is rounded into a bucket when it is logged, and
#: percentiles are read from those buckets.
PERCENTILE_RESOLUTION: Final = (
    "Locust rounds every response time to 2 significant digits before computing percentiles "
    "(and the median): to 1 ms below 100 ms, 10 ms from 100 ms to 1 s, 100 ms from 1 s to 10 s, "
    "1 s above 10 s; avg, min and max are exact"
)

_LATENCY: Final = frozenset({"avg", "min", "max", "med"})
_PERCENTILE: Final = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
_K6_PERCENTILE: Final = re.compile(r"^p\((\d+(?:\.\d+)?)\)$")
_OPERATOR: Final = re.compile(r"[<>=!]+")
_NUMBER: Final = re.compile(r"^\d+(?:\.\d+)?$")
_PERCENT: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_DURATION: Final = re.compile(r"^\d+(?:\.\d+)?\s*(?:ms|s|m|h)$")
#: Locust's bucket widths, in seconds, by the response time they start at (see above).
_BUCKETS: Final = ((10.0, 1.0), (1.0, 0.1), (0.1, 0.01))
_MS_BUCKET: Final = 0.001


class Op(StrEnum):
    """A threshold's comparison: the observed value must satisfy ``observed <op> limit``."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    def holds(self, observed: float, limit: float) -> bool:
        """Whether ``observed <op> limit``: ``Op.LT.holds(0.7, 0.8)`` is True."""
        return _COMPARE[self](observed, limit)


_COMPARE: Final[Mapping[Op, Callable[[float, float], bool]]] = {
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


class Unit(StrEnum):
    """What a threshold's value measures: seconds, a ratio of requests, or requests per second."""

    SECONDS = "s"
    RATIO = "ratio"
    RPS = "rps"


def percentile_bucket(seconds: float) -> float:
    """The width, in seconds, of the Locust bucket a response time of ``seconds`` falls in.

    >>> percentile_bucket(0.05), percentile_bucket(0.8), percentile_bucket(1.3)
    (0.001, 0.01, 0.1)
    """
    for start, width in _BUCKETS:
        if seconds >= start:
            return width
    return _MS_BUCKET


@dataclass(frozen=True, slots=True)
class EntryStats:
    """One entry of a load test's statistics, in seconds: what thresholds are checked against.

    The Locust side fills it from a ``locust.stats.StatsEntry`` (whose times are milliseconds)::

        EntryStats("app/login", requests=e.num_requests, failures=e.num_failures,
                   rps=e.total_rps, avg=e.avg_response_time / 1000,
                   min=(e.min_response_time or 0) / 1000, max=e.max_response_time / 1000,
                   percentiles={q: e.get_response_time_percentile(q) / 1000 for q in quantiles})

    ``percentiles`` maps a quantile (0.95 for p95; see ``Threshold.quantile``) to seconds, and
    must hold every quantile the entry's thresholds name.
    """

    name: str
    _: KW_ONLY
    requests: int
    failures: int
    rps: float
    percentiles: Mapping[float, float]
    avg: float
    min: float
    max: float

    @property
    def fail_ratio(self) -> float:
        """Failed requests over all requests; 0 when there were none."""
        return self.failures / self.requests if self.requests else 0.0

    def percentile(self, quantile: float) -> float | None:
        """Seconds at ``quantile`` (0.95), or None if it was not computed."""
        for key, seconds in self.percentiles.items():
            if math.isclose(key, quantile, abs_tol=1e-9):
                return seconds
        return None


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold. ``expression`` is the text as written; ``str()`` is canonical.

    ``value`` is seconds for latency metrics, a ratio (0.01 for 1 %) for ``fail_ratio``, and
    requests per second for ``rps``. Build one with ``parse_threshold``.
    """

    expression: str
    _: KW_ONLY
    metric: str
    op: Op
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {_spell(self.unit, self.value)}"

    @property
    def unit(self) -> Unit:
        """What ``value`` (and the observed value) measures."""
        if self.metric == "fail_ratio":
            return Unit.RATIO
        if self.metric == "rps":
            return Unit.RPS
        return Unit.SECONDS

    @property
    def quantile(self) -> float | None:
        """The quantile a percentile metric reads (``p99.9`` -> 0.999, ``med`` -> 0.5), else
        None."""
        if self.metric == "med":
            return 0.5
        match = _PERCENTILE.match(self.metric)
        return round(float(match.group(1)) / 100, 10) if match else None

    def observe(self, stats: EntryStats) -> float | None:
        """The value of this threshold's metric in ``stats``; None if it was not computed."""
        if self.quantile is not None:
            return stats.percentile(self.quantile)
        observed: float = {
            "avg": stats.avg,
            "min": stats.min,
            "max": stats.max,
            "fail_ratio": stats.fail_ratio,
            "rps": stats.rps,
        }[self.metric]
        return observed

    def check(self, stats: EntryStats) -> Verdict:
        """This threshold's verdict on ``stats``, with a message saying by how much.

        >>> stats = EntryStats("app/login", requests=10, failures=0, rps=2.0, avg=0.6,
        ...                    min=0.2, max=1.4, percentiles={0.95: 1.31})
        >>> parse_threshold("p95 < 800ms").check(stats).message
        'p95 was 1.31 s, limit < 800 ms: 510 ms over'
        """
        if stats.requests == 0:
            return Verdict(self, stats.name, None, passed=False, message=_no_requests(stats.name))
        observed = self.observe(stats)
        if observed is None:
            message = (
                f"no {self.metric} in the statistics for {stats.name} "
                "(the load-test engine did not compute it)"
            )
            return Verdict(self, stats.name, None, passed=False, message=message)
        passed = self.op.holds(observed, self.value)
        return Verdict(self, stats.name, observed, passed=passed, message=self._say(observed))

    def _say(self, observed: float) -> str:
        unit, margin = self.unit, observed - self.value
        head = (
            f"{self.metric} was {_human(unit, observed)}, limit {self.op} "
            f"{_human(unit, self.value)}: "
        )
        if margin == 0:
            head += "at the limit"
        else:
            how = "over" if margin > 0 else "under"
            head += f"{_human(unit, abs(margin), difference=True)} {how}"
        if self.quantile is not None:
            width = percentile_bucket(observed)
            if abs(margin) <= width / 2:
                head += f" (within Locust's {_human(Unit.SECONDS, width)} rounding)"
        return head


@dataclass(frozen=True, slots=True)
class Verdict:
    """A threshold checked against one entry: passed or not, and by how much.

    ``observed`` is None when there was nothing to observe (the entry is missing or has no
    requests); such a verdict never passes. ``margin`` is ``observed - limit`` in the metric's
    unit: positive above the limit, negative below it.
    """

    threshold: Threshold
    entry: str
    observed: float | None
    _: KW_ONLY
    passed: bool
    message: str

    @property
    def margin(self) -> float | None:
        """``observed - limit``; None without an observation."""
        return None if self.observed is None else self.observed - self.threshold.value


def missing_entry(threshold: Threshold, entry: str) -> Verdict:
    """The failed verdict for a threshold whose entry is not in the statistics at all."""
    return Verdict(threshold, entry, None, passed=False, message=_no_requests(entry))


def _no_requests(entry: str) -> str:
    if entry == TOTAL_ENTRY:
        return "no step requests at all: did the load test run?"
    return f"no JOURNEY entry for {entry}: did it run?"


def parse_threshold(text: str) -> Threshold:
    """The threshold written as ``text``; ValueError says what is wrong and what would do.

    >>> parse_threshold("fail_ratio < 0.5%").value
    0.005
    >>> parse_threshold("p95 < 50%")
    Traceback (most recent call last):
    ...
    ValueError: p95 needs a duration such as 800ms; got '50%'
    """
    match = _OPERATOR.search(text)
    metric = text[: match.start()].strip() if match else ""
    if match is None or not metric:
        raise ValueError(f"expected <metric> <op> <value> such as {EXAMPLE!r}; got {text!r}")
    _check_metric(metric)
    try:
        op = Op(match.group())
    except ValueError:
        raise ValueError(f"unknown operator {match.group()!r}; expected <, <=, > or >=") from None
    written = text[match.end() :].strip()
    return Threshold(text, metric=metric, op=op, value=_value(metric, written))


def _check_metric(metric: str) -> None:
    if metric in _LATENCY or metric in ("fail_ratio", "rps"):
        return
    match = _PERCENTILE.match(metric)
    if match and 0 < float(match.group(1)) < 100:
        return
    hint = ""
    if k6 := _K6_PERCENTILE.match(metric):
        hint = f" (write p{k6.group(1)} for k6's {metric})"
    elif metric in ("p0", "p100"):
        hint = f" (write {'min' if metric == 'p0' else 'max'} for {metric})"
    raise ValueError(f"unknown metric {metric!r}; {METRICS_EXPECTED}{hint}")


def _value(metric: str, written: str) -> float:
    if metric == "fail_ratio":
        return _ratio(written)
    if metric == "rps":
        if not _NUMBER.match(written):
            raise ValueError(
                f"rps needs a number of requests per second such as 50; got {written!r}"
            )
        return float(written)
    if _DURATION.match(written):
        # A threshold is only compared with: no ceiling but a finite value.
        return parse_duration(written.replace(" ", ""), at_most=math.inf)
    hint = f" (write the unit: {written}ms or {written}s)" if _NUMBER.match(written) else ""
    raise ValueError(f"{metric} needs a duration such as 800ms; got {written!r}{hint}")


def _ratio(written: str) -> float:
    expected = "fail_ratio needs a percentage such as 1% or a ratio such as 0.01"
    if percent := _PERCENT.match(written):
        value = float(percent.group(1))
        if value > 100:
            raise ValueError(f"{expected}; got {written!r} (at most 100%)")
        return round(value / 100, 12)
    if not _NUMBER.match(written):
        raise ValueError(f"{expected}; got {written!r}")
    value = float(written)
    if value > 1:
        hint = f"a ratio is at most 1; for per cent, write {written}%"
        raise ValueError(f"{expected}; got {written!r} ({hint})")
    return value


def _spell(unit: Unit, value: float) -> str:
    """How checks.yaml writes ``value``: ``800ms``, ``2s``, ``0.5%``, ``50``."""
    if unit is Unit.SECONDS:
        return f"{_plain(value * 1000)}ms" if value < 1 else f"{_plain(value)}s"
    if unit is Unit.RATIO:
        return f"{_plain(value * 100)}%"
    return _plain(value)


def _plain(value: float) -> str:
    """``value`` in positional notation, never ``1e-05``, without float noise (``700.0000001``
    from ``0.7 * 1000``): the shortest text that parses back to it at 12 significant digits."""
    text = format(Decimal(repr(float(f"{value:.12g}"))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _human(unit: Unit, value: float, *, difference: bool = False) -> str:
    """How a report writes ``value`` for people: ``1.31 s``, ``800 ms``, ``2.5 %``, ``42.3``.

    A difference of ratios is in percentage points, not per cent of the limit."""
    if unit is Unit.SECONDS:
        ms = _rounded(value * 1000)
        return f"{ms} ms" if float(ms.replace(",", "")) < 1000 else f"{_rounded(value)} s"
    if unit is Unit.RATIO:
        points = _rounded(value * 100)
        if difference:
            return f"{points} percentage point{'' if points == '1' else 's'}"
        return f"{points} %"
    return _rounded(value)


def _rounded(value: float) -> str:
    """3 significant digits, or whole numbers with separators from 1,000 on."""
    text = f"{value:.3g}"
    return f"{value:,.0f}" if "e" in text or abs(value) >= 1000 else text


def default_thresholds(
    slo_latency_threshold_s: float, slo_latency_target_pct: float, availability_pct: float
) -> list[Threshold]:
    """The thresholds a journey's SLO implies, for a journey with none of its own.

    The SLO says "``latency_target`` % of runs within ``latency_threshold``" and "``availability``
    % of runs succeed", so both become ``<=``:

    >>> [str(t) for t in default_thresholds(2.0, 95, 99.5)]
    ['p95 <= 2s', 'fail_ratio <= 0.5%']
    """
    limit = _spell(Unit.SECONDS, slo_latency_threshold_s)
    latency = f"p{_plain(slo_latency_target_pct)} <= {limit}"
    failures = f"fail_ratio <= {_spell(Unit.RATIO, (100 - availability_pct) / 100)}"
    return [parse_threshold(latency), parse_threshold(failures)]


# --- the loadtest: sections of checks.yaml ----------------------------------------------------

DEFAULT_WEIGHT: Final = 1


def _threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a threshold such as {EXAMPLE!r}; got {value!r}")
    return parse_threshold(value)


#: A threshold as written in checks.yaml: text, validated when the file is loaded, and dumped
#: back as the text it was written as.
ThresholdText: TypeAlias = Annotated[
    Threshold, PlainValidator(_threshold), PlainSerializer(lambda t: t.expression)
]
_Users = Annotated[int, Field(ge=0, strict=True)]
_Rate = Annotated[float, Field(gt=0, strict=True)]


class Wait(Frozen):
    """How long a simulated customer waits between two runs of a journey: uniformly between
    ``min`` and ``max`` (Locust's ``between``). ``wait: 2s`` is ``{min: 2s, max: 2s}``."""

    min: SecondsOrZero
    max: SecondsOrZero

    @model_validator(mode="before")
    @classmethod
    def _one_duration(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        seconds = parse_duration(data)  # ValueError: "expected a duration such as ..."
        return {"min": seconds, "max": seconds}

    @model_validator(mode="after")
    def _ordered(self) -> Wait:
        if self.min > self.max:
            raise ValueError(
                f"min {format_duration(self.min)} is longer than max {format_duration(self.max)}"
            )
        return self


#: Between two runs of a journey, a simulated customer waits 1 to 3 s (Locust's wait_time).
DEFAULT_WAIT: Final = Wait(min=1.0, max=3.0)


class Stage(Frozen):
    """One stage of a load shape: reach ``users`` at ``spawn_rate`` users a second, then hold
    until ``duration`` has passed since the stage began. Ramps, holds and spikes are consecutive
    stages:

    ``[{duration: 30s, users: 50, spawn_rate: 5}, {duration: 1m, users: 50},
    {duration: 10s, users: 200, spawn_rate: 100}, {duration: 30s, users: 0}]``

    Without ``spawn_rate``, every user of the change starts (or stops) at once.
    """

    duration: Seconds
    users: _Users
    spawn_rate: _Rate | None = None

    @field_validator("duration")
    @classmethod
    def _lasts(cls, duration: float) -> float:
        if duration <= 0:
            raise ValueError("expected a duration longer than 0s; got 0s")
        return duration

    def rate(self, previous_users: int = 0) -> float:
        """The spawn rate to give Locust after a stage that ended at ``previous_users``:
        ``spawn_rate``, or one that starts (or stops) the whole change at once.

        Locust starts and stops users at the spawn rate, so "at once" needs a rate at least as
        large as the change: ``Stage(duration=10, users=0).rate(200)`` is 200, not 1.
        """
        if self.spawn_rate is not None:
            return self.spawn_rate
        return float(max(self.users, previous_users, 1))


class LoadTest(Frozen):
    """The top-level ``loadtest:`` section: the load, and thresholds on the total of every step
    request (``TOTAL_ENTRY``).

    ``users``, ``spawn_rate`` and ``run_time`` are the defaults of Locust's ``-u``, ``-r`` and
    ``-t``: the command line (and Locust's environment variables and config file) still win.
    ``stages`` replace all three with a load shape that ends the test after its last stage.

    Example: ``{users: 20, spawn_rate: 5, run_time: 30s, thresholds: ["fail_ratio < 1%"]}``.
    """

    users: Annotated[int, Field(ge=1, strict=True)] | None = None
    spawn_rate: _Rate | None = None
    run_time: Seconds | None = None
    thresholds: tuple[ThresholdText, ...] = ()
    stages: tuple[Stage, ...] = ()

    @model_validator(mode="after")
    def _stages_or_load(self) -> LoadTest:
        given = [k for k in ("users", "spawn_rate", "run_time") if getattr(self, k) is not None]
        if self.stages and given:
            raise ValueError(
                f"stages set the users and the run time; remove {', '.join(given)}, or the stages"
            )
        return self


class JourneyLoadTest(Frozen):
    """A journey's ``loadtest:`` section: how it takes part in a load test.

    ``thresholds`` left out come from the journey's SLO (``default_thresholds``); ``[]`` means
    none. They are checked against the journey's ``JOURNEY`` entry (``channel/journey``).

    Example: ``{weight: 3, wait: {min: 1s, max: 3s}, tags: [login], thresholds: ["p95 < 2s"]}``.
    """

    weight: Annotated[int, Field(ge=1, strict=True)] = DEFAULT_WEIGHT
    wait: Wait = DEFAULT_WAIT
    tags: tuple[Name, ...] = ()
    thresholds: tuple[ThresholdText, ...] | None = None
    skip: bool = False
