"""Every panel query of the generated dashboards is PromQL that Prometheus's parser accepts
(``promql-parser``, a port of it), once its template variables have the values an SRE picks:
one value, two (a regex alternation), and ``All``. The variables' own ``label_values`` and
``query_result`` queries parse too.

Beyond the grammar: a multi-value variable must sit after ``=~``, never ``=`` (``(a|b)`` after
``=`` matches nothing); ``rate``, ``irate`` and ``increase`` run over ``$__rate_interval``
(or ``$__range``), never a fixed window; and every metric a query selects is one carewatch
exports or records (``probes.metrics``, ``alerts.recording_groups``), or Prometheus's own. The
last tests (and ``tests._support.promql``'s examples) show the checks failing on bad queries.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import promql_parser
import pytest

import alerts
from probes import Config, load_config, metrics
from tests._support import grafana, promql
from tests._support.paths import FIXTURES, REPO

CONFIGS: Final = {
    "demo": REPO / "checks.yaml",
    "more-journeys": FIXTURES / "dashboards" / "more-journeys.yaml",
    "two-locations": FIXTURES / "alerts" / "two-locations.yaml",
}
Board = dict[str, Any]
#: Grafana's Prometheus variable functions, whose argument is PromQL.
VARIABLE_QUERY: Final = re.compile(
    r"^\s*(?:label_values\((?:(?P<selector>.+),\s*)?\w+\)|query_result\((?P<expr>.+)\)"
    r"|label_names\(\)|metrics\(.*\))\s*$",
    re.S,
)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> Config:
    return load_config(str(CONFIGS[request.param]))


@pytest.fixture(scope="module")
def boards(config: Config) -> list[Board]:
    import dashboards  # here, so that the checks' own tests run without the generator

    return dashboards.dashboards(config)


def picks(config: Config) -> dict[str, Sequence[str]]:
    """Values an SRE can pick for each variable, from the config."""
    locations = sorted(config.locations) or [config.defaults.location]
    return {
        "datasource": ["prometheus"],
        "channel": [c.name for c in config.channels],
        "journey": [j.name for j in config.journeys],
        "location": locations,
    }


def queries(board: Board, values: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, str]]:
    """Each target's query, under each selection: ``(where, query)``."""
    defined = grafana.variables(board)
    for panel, target in grafana.targets(board):
        for selection, query in promql.selections(target["expr"], defined, values):
            yield (
                f"{board['uid']}: {grafana.name(panel)} {target.get('refId')} ({selection})",
                query,
            )


def test_every_panel_query_parses(config: Config, boards: list[Board]) -> None:
    checked = 0
    problems = []
    for board in boards:
        for where, query in queries(board, picks(config)):
            checked += 1
            if error := promql.parse_error(query):
                problems.append(f"{where}: {error}\n    {query}")
    print(f"{checked} queries parsed")
    assert problems == []
    assert checked >= sum(1 for board in boards for _ in grafana.targets(board)) > 0


def test_multi_value_variables_sit_after_a_regex_matcher(
    config: Config, boards: list[Board]
) -> None:
    problems = [
        f"{where}: {matcher}"
        for board in boards
        for where, query in queries(board, picks(config))
        for matcher in promql.equality_on_multi(promql_parser.parse(query))
    ]
    assert problems == []


def test_rates_use_the_rate_interval(boards: list[Board]) -> None:
    fixed = [
        f"{board['uid']}: {grafana.name(panel)}: {window}"
        for board in boards
        for panel, target in grafana.targets(board)
        for window in promql.fixed_rate_windows(target["expr"])
    ]
    assert fixed == []


def known_metrics(config: Config) -> set[str]:
    """carewatch's series (``probes.metrics``) and recording rules (``alerts``)."""
    names = {v.name for v in vars(metrics).values() if isinstance(v, metrics.Family)}
    names |= {
        v for v in vars(metrics).values() if isinstance(v, str) and v.startswith("carewatch_")
    }
    rules = (r for g in alerts.recording_groups(config) for r in g["rules"])
    return names | {r["record"] for r in rules}


def test_every_metric_is_one_carewatch_exports_or_records(
    config: Config, boards: list[Board]
) -> None:
    known = known_metrics(config)
    unknown = {
        where: sorted(missing)
        for board in boards
        for where, query in queries(board, picks(config))
        if (
            missing := promql.unknown_metrics(
                promql.metric_names(promql_parser.parse(query)), known
            )
        )
    }
    assert unknown == {}


def variable_queries(board: Board) -> Iterator[tuple[str, str]]:
    for variable in grafana.variables(board).values():
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query") if isinstance(query, Mapping) else query
        yield f"{board['uid']}: ${variable['name']}", str(text or variable.get("definition", ""))


def variable_query_problem(text: str, values: Mapping[str, str]) -> str | None:
    """Why a query variable's query is not one Prometheus answers, or None."""
    match = VARIABLE_QUERY.match(text)
    if match is None:
        return f"not label_values(...), query_result(...), label_names() nor metrics(...): {text!r}"
    promql_text = match.group("selector") or match.group("expr")
    if promql_text is None:  # label_values(label), label_names(), metrics(regex)
        return None
    inner = grafana.substitute(promql_text, values)
    error = promql.parse_error(inner)
    return f"{error}\n    {inner}" if error else None


def test_every_variable_query_parses(config: Config, boards: list[Board]) -> None:
    values = {name: picked[0] for name, picked in picks(config).items()}
    found = [(where, text) for board in boards for where, text in variable_queries(board)]
    problems = [
        f"{where}: {problem}"
        for where, text in found
        if (problem := variable_query_problem(text, values))
    ]
    assert problems == []
    assert found


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ('label_values(carewatch_journey_up{channel=~"$channel"}, journey)', False),
        ("label_values(channel)", False),
        ('query_result(count by (channel) (carewatch_journey_up{channel=~"$channel"}))', False),
        ('label_values(carewatch_journey_up{channel=~"$channel", journey)', True),
        ("query_result(sum(carewatch_journey_up)", True),
        ("carewatch_journey_up", True),
    ],
)
def test_a_broken_variable_query_is_found(text: str, bad: bool) -> None:
    assert (variable_query_problem(text, {"channel": "app"}) is not None) == bad


# --- the checks bite ---------------------------------------------------------------------

MULTI: Final[dict[str, dict[str, Any]]] = {
    "channel": {"name": "channel", "multi": True, "includeAll": True, "allValue": ".*"},
    "journey": {"name": "journey"},
}
VALUES: Final = {"channel": ["app", "chat"], "journey": ["login"]}


def test_selections_give_one_some_and_all() -> None:
    expr = (
        "sum by (location) (rate(carewatch_journey_runs_total"
        '{channel=~"$channel",journey="$journey"}[$__rate_interval]))'
    )
    got = dict(promql.selections(expr, MULTI, VALUES))
    selector = 'carewatch_journey_runs_total{channel=~"%s",journey="login"}[1m]'
    assert got == {
        "one": f"sum by (location) (rate({selector % 'app'}))",
        "some": f"sum by (location) (rate({selector % '(app|chat)'}))",
        "all": f"sum by (location) (rate({selector % '.*'}))",
    }
    assert all(promql.parse_error(q) is None for q in got.values())


@pytest.mark.parametrize(
    "expr",
    [
        'sum(rate(carewatch_journey_runs_total{channel=~"$channel"}[$__rate_interval])',
        'carewatch_journey_up{channel=~"$channel"',
        "histogram_quantile(0.95, sum by (le) (rate(carewatch_step_duration_seconds[5x])))",
        'carewatch_journey_up{channel=~"$channel"} > > 1',
        "rate(carewatch_journey_runs_total[$__rate_interval]) by (channel)",
    ],
)
def test_a_broken_query_fails_to_parse(expr: str) -> None:
    for _, query in promql.selections(expr, MULTI, VALUES):
        assert promql.parse_error(query) is not None, query


def test_a_multi_value_variable_after_equals_is_found() -> None:
    expr = 'carewatch_journey_up{channel="$channel"} and carewatch_journey_up{channel!="$channel"}'
    some = dict(promql.selections(expr, MULTI, VALUES))["some"]
    assert promql.parse_error(some) is None  # it parses, and matches nothing
    assert promql.equality_on_multi(promql_parser.parse(some)) == [
        'channel="(app|chat)"',
        'channel!="(app|chat)"',
    ]
    fine = dict(promql.selections(expr.replace('="', '=~"').replace('!=~"', '!~"'), MULTI, VALUES))
    assert promql.equality_on_multi(promql_parser.parse(fine["some"])) == []


def test_a_metric_nobody_exports_is_found() -> None:
    config = load_config(str(CONFIGS["more-journeys"]))
    expr = (
        "sum(carewatch_journey_upp) + sum(rate(carewatch_journey_duration_seconds_bucket[5m]))"
        " + sum(slo:sli_error:ratio_rate5m) + up + process_resident_memory_bytes"
        ' + {__name__="nope"}'
    )
    names = promql.metric_names(promql_parser.parse(expr))
    assert promql.unknown_metrics(names, known_metrics(config)) == {
        "carewatch_journey_upp",
        "nope",
    } | ({"slo:sli_error:ratio_rate5m"} - known_metrics(config))


def test_the_checks_examples_hold() -> None:
    failed, tried = doctest.testmod(promql, optionflags=doctest.ELLIPSIS)
    assert (failed, tried > 0) == (0, True)
