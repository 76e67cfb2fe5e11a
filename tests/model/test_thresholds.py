"""probes.model.thresholds: the expression grammar, checking one entry, SLO defaults, and the
``loadtest:`` sections of checks.yaml."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import probes.model.thresholds
from probes.errors import ConfigError
from probes.model.load import parse_config
from probes.model.thresholds import (
    PERCENTILE_RESOLUTION,
    EntryStats,
    JourneyLoadTest,
    LoadTest,
    Op,
    Stage,
    Threshold,
    Unit,
    Wait,
    default_thresholds,
    parse_threshold,
    percentile_bucket,
)
from probes.model.types import Frozen
from tests._support.paths import REPO

# --- the grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "canonical"),
    [
        ("p95 < 800ms", "p95", Op.LT, 0.8, "p95 < 800ms"),
        ("p99 < 2s", "p99", Op.LT, 2.0, "p99 < 2s"),
        ("p50 <= 300ms", "p50", Op.LE, 0.3, "p50 <= 300ms"),
        ("avg < 1s", "avg", Op.LT, 1.0, "avg < 1s"),
        ("max < 5s", "max", Op.LT, 5.0, "max < 5s"),
        ("min > 10ms", "min", Op.GT, 0.01, "min > 10ms"),
        ("med < 250ms", "med", Op.LT, 0.25, "med < 250ms"),
        ("fail_ratio < 1%", "fail_ratio", Op.LT, 0.01, "fail_ratio < 1%"),
        ("fail_ratio < 0.01", "fail_ratio", Op.LT, 0.01, "fail_ratio < 1%"),
        ("fail_ratio <= 0.5 %", "fail_ratio", Op.LE, 0.005, "fail_ratio <= 0.5%"),
        ("fail_ratio < 0", "fail_ratio", Op.LT, 0.0, "fail_ratio < 0%"),
        ("rps > 50", "rps", Op.GT, 50.0, "rps > 50"),
        ("rps >= 10", "rps", Op.GE, 10.0, "rps >= 10"),
        ("rps >= 2.5", "rps", Op.GE, 2.5, "rps >= 2.5"),
        ("p99.9 < 1.5s", "p99.9", Op.LT, 1.5, "p99.9 < 1.5s"),
        ("p75<1s", "p75", Op.LT, 1.0, "p75 < 1s"),
        ("  p90   >=   2 s  ", "p90", Op.GE, 2.0, "p90 >= 2s"),
        ("p95 < 1m", "p95", Op.LT, 60.0, "p95 < 60s"),
        ("p1 < 5ms", "p1", Op.LT, 0.005, "p1 < 5ms"),
    ],
)
def test_good_expressions(text: str, metric: str, op: Op, value: float, canonical: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.expression, threshold.metric, threshold.op) == (text, metric, op)
    assert threshold.value == pytest.approx(value)
    assert str(threshold) == canonical


EXPECTED_METRICS = "expected p50..p99.9, avg, min, max, med, fail_ratio or rps"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95x < 1s", f"unknown metric 'p95x'; {EXPECTED_METRICS}"),
        ("P95 < 1s", f"unknown metric 'P95'; {EXPECTED_METRICS}"),
        ("p(95) < 800ms", f"unknown metric 'p(95)'; {EXPECTED_METRICS} (write p95 for k6's p(95))"),
        ("p100 < 1s", f"unknown metric 'p100'; {EXPECTED_METRICS} (write max for p100)"),
        ("p0 < 1s", f"unknown metric 'p0'; {EXPECTED_METRICS} (write min for p0)"),
        ("http_req_duration < 1s", f"unknown metric 'http_req_duration'; {EXPECTED_METRICS}"),
        ("p95 < 50%", "p95 needs a duration such as 800ms; got '50%'"),
        ("avg < fast", "avg needs a duration such as 800ms; got 'fast'"),
        ("p95 < -1s", "p95 needs a duration such as 800ms; got '-1s'"),
        ("p95 <", "p95 needs a duration such as 800ms; got ''"),
        (
            "p95 < 800",
            "p95 needs a duration such as 800ms; got '800' (write the unit: 800ms or 800s)",
        ),
        (
            "max < 2.5",
            "max needs a duration such as 800ms; got '2.5' (write the unit: 2.5ms or 2.5s)",
        ),
        (
            "fail_ratio < 2s",
            "fail_ratio needs a percentage such as 1% or a ratio such as 0.01; got '2s'",
        ),
        (
            "fail_ratio < 5",
            "fail_ratio needs a percentage such as 1% or a ratio such as 0.01; got '5' "
            "(a ratio is at most 1; for per cent, write 5%)",
        ),
        (
            "fail_ratio < 150%",
            "fail_ratio needs a percentage such as 1% or a ratio such as 0.01; got '150%' "
            "(at most 100%)",
        ),
        ("rps > 50ms", "rps needs a number of requests per second such as 50; got '50ms'"),
        ("rps > -1", "rps needs a number of requests per second such as 50; got '-1'"),
        ("p95 == 1s", "unknown operator '=='; expected <, <=, > or >="),
        ("p95 =< 1s", "unknown operator '=<'; expected <, <=, > or >="),
        ("p95 != 1s", "unknown operator '!='; expected <, <=, > or >="),
        ("p95", "expected <metric> <op> <value> such as 'p95 < 800ms'; got 'p95'"),
        ("< 1s", "expected <metric> <op> <value> such as 'p95 < 800ms'; got '< 1s'"),
        ("", "expected <metric> <op> <value> such as 'p95 < 800ms'; got ''"),
    ],
)
def test_bad_expressions(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        parse_threshold(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "quantile", "unit"),
    [
        ("p95 < 1s", 0.95, Unit.SECONDS),
        ("p99.9 < 1s", 0.999, Unit.SECONDS),
        ("p99.99 < 1s", 0.9999, Unit.SECONDS),
        ("med < 1s", 0.5, Unit.SECONDS),
        ("avg < 1s", None, Unit.SECONDS),
        ("fail_ratio < 1%", None, Unit.RATIO),
        ("rps > 1", None, Unit.RPS),
    ],
)
def test_quantile_and_unit(text: str, quantile: float | None, unit: Unit) -> None:
    threshold = parse_threshold(text)
    assert (threshold.quantile, threshold.unit) == (quantile, unit)


_NUMBERS = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.integers(0, 99_999),
    st.one_of(st.none(), st.from_regex(r"\A[0-9]{1,3}\Z")),
)
_PERCENTILES = st.builds(
    lambda whole, frac: f"p{whole}.{frac}" if frac else f"p{whole}",
    st.integers(1, 99),
    st.one_of(st.none(), st.from_regex(r"\A[0-9]{1,2}\Z")),
)
_DIGITS = st.from_regex(r"\A[0-9]{1,4}\Z")
_LATENCY = st.one_of(_PERCENTILES, st.sampled_from(["avg", "min", "max", "med"]))


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["<", "<=", ">", ">="]))
    kind = draw(st.sampled_from(["latency", "percent", "ratio", "rps"]))
    space = draw(st.sampled_from(["", " ", "  "]))
    if kind == "latency":
        value = draw(_NUMBERS) + draw(st.sampled_from(["ms", "s", "m", "h"]))
        metric = draw(_LATENCY)
    elif kind == "percent":
        metric, value = "fail_ratio", f"{draw(st.integers(0, 99))}.{draw(st.integers(0, 9))}%"
    elif kind == "ratio":
        metric, value = "fail_ratio", f"0.{draw(_DIGITS)}"
    else:
        metric, value = "rps", draw(_NUMBERS)
    return f"{metric}{space}{op}{space}{value}"


@given(_expressions())
def test_round_trip(text: str) -> None:
    """text -> Threshold -> str -> Threshold keeps the meaning, and str() is a fixed point."""
    first = parse_threshold(text)
    second = parse_threshold(str(first))
    assert (second.metric, second.op) == (first.metric, first.op)
    assert math.isclose(second.value, first.value, rel_tol=1e-9, abs_tol=1e-15)
    assert str(second) == str(first)


# --- checking one entry -----------------------------------------------------------------------


def stats(**overrides: Any) -> EntryStats:
    values: dict[str, Any] = {
        "requests": 200,
        "failures": 0,
        "rps": 10.0,
        "percentiles": {0.5: 0.3, 0.95: 0.8, 0.99: 1.2, 0.999: 2.0},
        "avg": 0.35,
        "min": 0.12,
        "max": 2.345,
    }
    return EntryStats("app/login", **{**values, **overrides})


@pytest.mark.parametrize(
    ("op", "below", "at", "above"),
    [
        ("<", True, False, False),
        ("<=", True, True, False),
        (">", False, False, True),
        (">=", False, True, True),
    ],
)
@pytest.mark.parametrize(
    ("metric", "limit", "field"),
    [
        ("p95", "800ms", "percentiles"),
        ("avg", "800ms", "avg"),
        ("min", "800ms", "min"),
        ("max", "800ms", "max"),
        ("med", "800ms", "median"),
        ("rps", "0.8", "rps"),
        ("fail_ratio", "80%", "failures"),
    ],
)
def test_pass_and_fail_at_the_boundary(
    op: str, below: bool, at: bool, above: bool, metric: str, limit: str, field: str
) -> None:
    threshold = parse_threshold(f"{metric} {op} {limit}")

    def entry(observed: float) -> EntryStats:
        if field == "percentiles":
            return stats(percentiles={0.95: observed})
        if field == "median":
            return stats(percentiles={0.5: observed})
        if field == "failures":
            return stats(requests=1000, failures=round(observed * 1000))
        return stats(**{field: observed})

    for observed, expected in ((0.79, below), (0.8, at), (0.81, above)):
        verdict = threshold.check(entry(observed))
        assert verdict.passed is expected, (observed, verdict.message)
        assert verdict.observed == pytest.approx(observed)
        assert verdict.margin == pytest.approx(observed - 0.8)
        assert (verdict.entry, verdict.threshold) == ("app/login", threshold)


@pytest.mark.parametrize(
    ("text", "entry", "message"),
    [
        (
            "p95 < 800ms",
            stats(percentiles={0.95: 1.31}),
            "p95 was 1.31 s, limit < 800 ms: 510 ms over",
        ),
        (
            "p95 < 800ms",
            stats(percentiles={0.95: 0.62}),
            "p95 was 620 ms, limit < 800 ms: 180 ms under",
        ),
        (
            "p95 < 800ms",
            stats(percentiles={0.95: 0.8}),
            "p95 was 800 ms, limit < 800 ms: at the limit (within Locust's 10 ms rounding)",
        ),
        (
            "p99 <= 2s",
            stats(percentiles={0.99: 2.1}),
            "p99 was 2.1 s, limit <= 2 s: 100 ms over",
        ),
        (
            "p50 < 100ms",
            stats(percentiles={0.5: 0.1}),
            "p50 was 100 ms, limit < 100 ms: at the limit (within Locust's 10 ms rounding)",
        ),
        ("p50 < 50ms", stats(percentiles={0.5: 0.051}), "p50 was 51 ms, limit < 50 ms: 1 ms over"),
        ("max < 2s", stats(max=2.345), "max was 2.35 s, limit < 2 s: 345 ms over"),
        ("avg < 1s", stats(avg=0.8), "avg was 800 ms, limit < 1 s: 200 ms under"),
        ("max < 10s", stats(max=12.5), "max was 12.5 s, limit < 10 s: 2.5 s over"),
        (
            "fail_ratio < 1%",
            stats(requests=200, failures=5),
            "fail_ratio was 2.5 %, limit < 1 %: 1.5 percentage points over",
        ),
        (
            "fail_ratio <= 0.5%",
            stats(failures=0),
            "fail_ratio was 0 %, limit <= 0.5 %: 0.5 percentage points under",
        ),
        ("rps > 50", stats(rps=42.3), "rps was 42.3, limit > 50: 7.7 under"),
        ("rps >= 1000", stats(rps=1234.5), "rps was 1,234, limit >= 1,000: 234 over"),
        ("rps > 1", stats(requests=0), "no JOURNEY entry for app/login: did it run?"),
        (
            "p97 < 1s",
            stats(),
            "no p97 in the statistics for app/login (the load-test engine did not compute it)",
        ),
    ],
)
def test_messages_say_by_how_much(text: str, entry: EntryStats, message: str) -> None:
    assert parse_threshold(text).check(entry).message == message


def test_no_observation_never_passes() -> None:
    verdict = parse_threshold("fail_ratio < 1%").check(stats(requests=0))
    assert (verdict.passed, verdict.observed, verdict.margin) == (False, None, None)


def test_percentiles_are_looked_up_by_quantile() -> None:
    entry = stats(percentiles={round(99.9 / 100, 10): 1.5})
    assert parse_threshold("p99.9 < 2s").check(entry).observed == 1.5
    assert entry.percentile(99.9 / 100) == 1.5  # 0.9990000000000001: float noise tolerated


# --- Locust's percentile resolution -----------------------------------------------------------


def locust_bucket_response_time(response_time: float) -> int:
    """``bucket_response_time`` from locust/stats.py (Locust 2.47.0), milliseconds in and out.

    Copied rather than imported: importing locust here would monkey-patch this test process."""
    if response_time < 100:
        return round(response_time)
    elif response_time < 1000:
        return int(round(response_time, -1))
    elif response_time < 10000:
        return int(round(response_time, -2))
    else:
        return int(round(response_time, -3))


@pytest.mark.parametrize(
    ("seconds", "width"),
    [(0.0, 0.001), (0.099, 0.001), (0.1, 0.01), (0.999, 0.01), (1.0, 0.1), (9.99, 0.1), (10, 1)],
)
def test_percentile_bucket_widths(seconds: float, width: float) -> None:
    assert percentile_bucket(seconds) == width


@given(st.floats(0, 100_000, allow_nan=False))
def test_the_stated_resolution_bounds_locusts_rounding(ms: float) -> None:
    """A percentile Locust reports is within half a bucket of the response time it came from."""
    reported = locust_bucket_response_time(ms)
    assert abs(reported - ms) <= percentile_bucket(reported / 1000) * 1000 / 2 + 1e-9


def test_the_resolution_is_stated() -> None:
    for part in ("2 significant digits", "1 ms below 100 ms", "10 ms", "100 ms", "1 s above"):
        assert part in PERCENTILE_RESOLUTION


# --- defaults from the SLO --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "target", "availability", "expected"),
    [
        (2.0, 95, 99.5, ["p95 <= 2s", "fail_ratio <= 0.5%"]),
        (4.0, 95, 99.9, ["p95 <= 4s", "fail_ratio <= 0.1%"]),
        (0.3, 99.9, 99.95, ["p99.9 <= 300ms", "fail_ratio <= 0.05%"]),
        (1.5, 90, 100, ["p90 <= 1.5s", "fail_ratio <= 0%"]),
        (0.25, 97.5, 99, ["p97.5 <= 250ms", "fail_ratio <= 1%"]),
    ],
)
def test_default_thresholds_from_the_slo(
    threshold: float, target: float, availability: float, expected: list[str]
) -> None:
    defaults = default_thresholds(threshold, target, availability)
    assert [str(t) for t in defaults] == expected
    assert [t.expression for t in defaults] == expected
    assert defaults[0].value == threshold
    assert defaults[1].value == pytest.approx(1 - availability / 100)


# --- the loadtest: sections -------------------------------------------------------------------


def test_a_full_top_level_section() -> None:
    section = LoadTest.model_validate(
        {"users": 20, "spawn_rate": 5, "run_time": "30s", "thresholds": ["fail_ratio < 1%"]}
    )
    assert (section.users, section.spawn_rate, section.run_time) == (20, 5.0, 30.0)
    assert section.thresholds == (parse_threshold("fail_ratio < 1%"),)
    assert section.stages == ()


def test_stages_make_a_shape() -> None:
    section = LoadTest.model_validate(
        {
            "thresholds": ["p95 < 2s", "rps > 5"],
            "stages": [
                {"duration": "30s", "users": 50, "spawn_rate": 10},
                {"duration": "1m", "users": 50},
                {"duration": 10, "users": 0},
            ],
        }
    )
    assert section.stages == (
        Stage(duration=30.0, users=50, spawn_rate=10),
        Stage(duration=60.0, users=50),
        Stage(duration=10.0, users=0),
    )
    assert [s.rate() for s in section.stages] == [10.0, 50.0, 1.0]
    assert section.stages[2].rate(50) == 50.0  # all at once: stops every user of the change
    assert section.users is None


def test_an_empty_section_leaves_the_load_to_locust() -> None:
    assert LoadTest() == LoadTest.model_validate({})


@pytest.mark.parametrize(
    ("data", "wait"),
    [
        ({}, Wait(min=1.0, max=3.0)),
        ({"wait": "2s"}, Wait(min=2.0, max=2.0)),
        ({"wait": 0}, Wait(min=0.0, max=0.0)),
        ({"wait": {"min": "500ms", "max": "1.5s"}}, Wait(min=0.5, max=1.5)),
    ],
)
def test_journey_sections_wait(data: dict[str, Any], wait: Wait) -> None:
    assert JourneyLoadTest.model_validate(data).wait == wait


def test_a_full_journey_section() -> None:
    section = JourneyLoadTest.model_validate(
        {
            "weight": 3,
            "wait": {"min": "1s", "max": "3s"},
            "tags": ["login", "smoke"],
            "thresholds": ["p95 < 800ms", "fail_ratio < 1%"],
            "skip": True,
        }
    )
    assert (section.weight, section.tags, section.skip) == (3, ("login", "smoke"), True)
    assert [str(t) for t in section.thresholds or ()] == ["p95 < 800ms", "fail_ratio < 1%"]


def test_journey_thresholds_left_out_are_none_and_an_empty_list_is_kept() -> None:
    assert JourneyLoadTest().thresholds is None  # the SLO's defaults apply
    assert JourneyLoadTest.model_validate({"thresholds": []}).thresholds == ()


def error_of(model: type[Frozen], data: dict[str, Any]) -> tuple[tuple[int | str, ...], str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors(include_url=False)
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"].removeprefix("Value error, ")


@pytest.mark.parametrize(
    ("model", "data", "loc", "message"),
    [
        (LoadTest, {"user": 5}, ("user",), "Extra inputs are not permitted"),
        (
            LoadTest,
            {"thresholds": ["p95x < 1s"]},
            ("thresholds", 0),
            f"unknown metric 'p95x'; {EXPECTED_METRICS}",
        ),
        (
            LoadTest,
            {"thresholds": ["p95 < 2s", "p95 < 800"]},
            ("thresholds", 1),
            "p95 needs a duration such as 800ms; got '800' (write the unit: 800ms or 800s)",
        ),
        (
            LoadTest,
            {"thresholds": [800]},
            ("thresholds", 0),
            "expected a threshold such as 'p95 < 800ms'; got 800",
        ),
        (LoadTest, {"users": -5}, ("users",), "Input should be greater than or equal to 1"),
        (LoadTest, {"users": "20"}, ("users",), "Input should be a valid integer"),
        (LoadTest, {"spawn_rate": 0}, ("spawn_rate",), "Input should be greater than 0"),
        (
            LoadTest,
            {"run_time": "soon"},
            ("run_time",),
            "expected a duration such as 500ms, 2s, 1.5s, 1m or 1h; got 'soon'",
        ),
        (
            LoadTest,
            {"users": 5, "run_time": "1m", "stages": [{"duration": "1m", "users": 5}]},
            (),
            "stages set the users and the run time; remove users, run_time, or the stages",
        ),
        (
            LoadTest,
            {"stages": [{"duration": "0s", "users": 5}]},
            ("stages", 0, "duration"),
            "expected a duration longer than 0s; got 0s",
        ),
        (
            LoadTest,
            {"stages": [{"duration": "1m", "users": -1}]},
            ("stages", 0, "users"),
            "Input should be greater than or equal to 0",
        ),
        (
            LoadTest,
            {"stages": [{"duration": "1m", "users": 5, "ramp": "linear"}]},
            ("stages", 0, "ramp"),
            "Extra inputs are not permitted",
        ),
        (JourneyLoadTest, {"wieght": 2}, ("wieght",), "Extra inputs are not permitted"),
        (JourneyLoadTest, {"weight": 0}, ("weight",), "Input should be greater than or equal to 1"),
        (
            JourneyLoadTest,
            {"wait": {"min": "3s", "max": "1s"}},
            ("wait",),
            "min 3s is longer than max 1s",
        ),
        (
            JourneyLoadTest,
            {"wait": "often"},
            ("wait",),
            "expected a duration such as 500ms, 2s, 1.5s, 1m or 1h; got 'often'",
        ),
        (
            JourneyLoadTest,
            {"thresholds": ["rps > fast"]},
            ("thresholds", 0),
            "rps needs a number of requests per second such as 50; got 'fast'",
        ),
        (
            JourneyLoadTest,
            {"tags": ["no spaces"]},
            ("tags", 0),
            "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'",
        ),
    ],
)
def test_bad_sections(
    model: type[Frozen], data: dict[str, Any], loc: tuple[int | str, ...], message: str
) -> None:
    assert error_of(model, data) == (loc, message)


def test_sections_dump_back_to_what_validates() -> None:
    section = LoadTest.model_validate(
        {"thresholds": ["p95<1s", "fail_ratio < 0.01"], "stages": [{"duration": 5, "users": 1}]}
    )
    dumped = section.model_dump(mode="json")
    assert dumped["thresholds"] == ["p95<1s", "fail_ratio < 0.01"]
    assert LoadTest.model_validate(dumped) == section
    journey = JourneyLoadTest.model_validate({"wait": "2s", "thresholds": ["rps > 1"]})
    assert JourneyLoadTest.model_validate(journey.model_dump()) == journey


def test_sections_are_frozen() -> None:
    section = JourneyLoadTest()
    with pytest.raises(ValidationError):
        section.weight = 2  # type: ignore[misc]


def test_a_bad_threshold_becomes_a_located_problem() -> None:
    text = (
        "loadtest:\n  users: 5\n  thresholds:\n    - p95 < 2s\n    - p95x < 1s\n"
        "channels:\n  - {name: a, kind: app, team: t,\n"
        "     journeys: [{name: j, steps: [{name: s, url: 'http://x/'}]}]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="checks.yaml", environ={})
    [problem] = caught.value.problems
    assert str(problem) == (
        f"checks.yaml:5:7: loadtest.thresholds[1]: unknown metric 'p95x'; {EXPECTED_METRICS}"
    )


def test_threshold_objects_pass_through_validation() -> None:
    threshold = parse_threshold("p95 < 1s")
    assert LoadTest(thresholds=(threshold,)).thresholds == (threshold,)
    assert isinstance(LoadTest(thresholds=(threshold,)).thresholds[0], Threshold)


def test_the_pure_modules_import_no_engine() -> None:
    """The config loader and the report import these; gevent must never come with them."""
    code = (
        "import sys, probes.model.thresholds, loadtests.report\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()).isdisjoint({"locust", "gevent", "aiohttp"})


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(probes.model.thresholds).failed == 0
