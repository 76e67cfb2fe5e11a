"""Panel queries as Prometheus reads them: template variables given realistic values, then
parsed by ``promql-parser`` (a port of Prometheus's own parser).

Grafana sends a multi-value (or ``All``) variable as a regex alternation ``(a|b)``, which only
means "a or b" after ``=~``; after ``=`` it matches no series. ``selections`` gives each
variable the values an SRE picks; ``equality_on_multi`` finds such a variable after ``=``:

>>> from promql_parser import parse
>>> multi = {"channel": {"name": "channel", "multi": True}}
>>> picks = {"channel": ["app", "chat"]}
>>> for selection, query in selections('up{channel="$channel"}', multi, picks):
...     print(selection, query)
one up{channel="app"}
some up{channel="(app|chat)"}
>>> equality_on_multi(parse('up{channel="(app|chat)"}'))
['channel="(app|chat)"']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import promql_parser

from tests._support.grafana import VARIABLE, Value, substitute

#: Names of series that are not carewatch's own: Prometheus's scrape series and the process
#: metrics of prometheus_client.
FOREIGN: Final = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"})
FOREIGN_PREFIXES: Final = ("process_", "python_")


def selections(
    expr: str,
    defined: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, Sequence[str]],
) -> Iterator[tuple[str, str]]:
    """``expr`` substituted as each selection an SRE can make: ``one`` value of each variable;
    for multi-value variables, ``some`` (two values) and, with ``includeAll``, ``all`` (its
    ``allValue`` when it has one, every value otherwise). Yields ``(selection, query)``."""
    multi = {n for n, v in defined.items() if v.get("multi") or v.get("includeAll")}
    one: dict[str, Value] = {n: values[n][0] for n in values}
    yield "one", substitute(expr, one)
    if not multi & _names(expr):
        return
    yield "some", substitute(expr, {**one, **{n: list(values[n][:2]) for n in multi}})
    everything: dict[str, Value] = dict(one)
    for variable in multi & _names(expr):
        if defined[variable].get("includeAll"):
            everything[variable] = defined[variable].get("allValue") or list(values[variable])
    if everything != one:
        yield "all", _raw_all(expr, everything, defined)


def _names(expr: str) -> set[str]:
    found = (
        m.group("plain") or m.group("old") or m.group("braced") for m in VARIABLE.finditer(expr)
    )
    return {n for n in found if n}


def _raw_all(expr: str, values: Mapping[str, Value], defined: Mapping[str, Any]) -> str:
    """Grafana puts a custom ``allValue`` (``.*``) in unescaped."""
    raw = {n for n in values if isinstance(values[n], str) and defined.get(n, {}).get("allValue")}
    placeholders = {n: f"\x00{n}\x00" for n in raw}
    query = substitute(expr, {**values, **placeholders})
    for variable, placeholder in placeholders.items():
        value = values[variable]
        assert isinstance(value, str)
        query = query.replace(placeholder, value)
    return query


#: A counter function and the range of its first selector (``rate(x{...}[5m])``).
COUNTER_RANGE: Final = re.compile(r"\b(?:rate|irate|increase)\(\s*[^\[\]()]*\[(?P<range>[^\]]+)\]")


def fixed_rate_windows(expr: str) -> list[str]:
    """``rate``, ``irate`` and ``increase`` over a fixed window rather than Grafana's
    ``$__rate_interval`` (or ``$__range``, ``$__interval``): a fixed window is too short for a
    long scrape interval, or hides detail when zoomed in.

    >>> fixed_rate_windows('rate(x{a="b"}[5m]) + rate(y[$__rate_interval]) + increase(z[$__range])')
    ['rate(x{a="b"}[5m]']
    """
    return [m.group(0) for m in COUNTER_RANGE.finditer(expr) if "$__" not in m.group("range")]


def parse_error(query: str) -> str | None:
    """Why Prometheus's parser rejects ``query``, or None."""
    try:
        promql_parser.parse(query)
    except ValueError as error:
        return str(error)
    return None


def _walk(expr: Any, visit: Callable[[Any], None]) -> None:
    def pre(node: Any) -> bool:
        visit(node)
        return True

    promql_parser.walk(expr, pre)


def _selectors(expr: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            found.append(node.vector_selector)

    _walk(expr, visit)
    return found


def equality_on_multi(expr: Any) -> list[str]:
    """Matchers ``=`` or ``!=`` whose value is a regex alternation ``(a|b)``: a multi-value
    variable that needed ``=~``."""
    exact = (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual)
    return [
        str(m)
        for selector in _selectors(expr)
        for m in selector.matchers.matchers
        if m.op in exact and m.value.startswith("(") and "|" in m.value
    ]


def metric_names(expr: Any) -> set[str]:
    """The metric names an expression selects (``__name__`` matchers included)."""
    names = set()
    for selector in _selectors(expr):
        if selector.name:
            names.add(selector.name)
        names |= {m.value for m in selector.matchers.matchers if m.name == "__name__"}
    return names


def unknown_metrics(names: set[str], known: set[str]) -> set[str]:
    """``names`` that are neither ``known`` (carewatch's series and recording rules, histogram
    suffixes included) nor Prometheus's or the process's own."""
    suffixes = ("", "_bucket", "_sum", "_count")
    return {
        n
        for n in names
        if not any(n.removesuffix(s) in known for s in suffixes if n.endswith(s))
        and n not in FOREIGN
        and not n.startswith(FOREIGN_PREFIXES)
    }
