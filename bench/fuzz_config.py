"""Fuzzing checks.yaml (B8, issue 12): structure-aware documents, never a traceback.

    python -m bench.fuzz_config [--cases 20000]

Each case starts from a valid document (one journey of the repository's checks.yaml with the
sections it uses, or the reference fixture ``tests/fixtures/config/good/full.yaml``, or a minimal
one) and changes it in one to four places: a value becomes one of the wrong type, a huge or NaN
number, an absurd duration, odd unicode or a 10,000-character string; a key is added (unknown, a
near miss, not text) or removed; raw YAML is written in place of a value (deep flow nesting,
aliases, a billion laughs, merge keys, tags that do not fit). Then the whole text may be changed
too (a byte-order mark, CRLF, a second document).

Each case is judged through ``probes.model.parse_config``. It must either give a ``Config`` or
raise ``ConfigError`` whose every problem has a line, a column and a bounded length: anything
else is counted, and the first few are printed. The goal is 0 of each. ``make test`` runs 2,000
cases (``tests/bench/test_fuzz_config.py``); ``make bench`` runs 20,000.

Hypothesis draws the cases, derandomized (the same cases every run) and without shrinking,
since a case that fails is printed whole and judged, not raised.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench._table import Row, print_table
from probes import ConfigError, parse_config

REPO: Final = Path(__file__).resolve().parent.parent
#: The valid documents cases start from, besides each journey of checks.yaml.
FULL_FIXTURE: Final = REPO / "tests" / "fixtures" / "config" / "good" / "full.yaml"
MINIMAL: Final = {
    "channels": [
        {
            "name": "app",
            "kind": "app",
            "team": "mobile",
            "journeys": [{"name": "login", "steps": [{"name": "home", "url": "http://x/"}]}],
        }
    ]
}
#: What the base documents read from the environment (full.yaml's secret), and what cases do.
#: NOT_UTF8 is what os.environ holds for bytes that are not UTF-8.
ENVIRON: Final = {"CAREWATCH_FULL_PASSWORD": "s3cret", "X": "1", "NOT_UTF8": "caf\udce9"}
FILE: Final = "fuzz.yaml"
DEFAULT_CASES: Final = 20_000
#: A located problem prints as ``file:line:col: path: message``; path and message are bounded
#: by probes.errors (200 and 500 characters): anything much longer escaped the bounds.
MAX_PROBLEM_CHARS: Final = 800
#: Failures printed whole; the rest are only counted.
SHOWN_FAILURES: Final = 5

#: Kinds of outcome. The goal is none but VALID and LOCATED.
VALID: Final = "valid config"
LOCATED: Final = "refused, every problem located"
UNLOCATED: Final = "refused, a problem without line or column"
OVERLONG: Final = "refused, a problem over 800 characters"
TRACEBACK: Final = "traceback (any other exception)"
FAILURES: Final = (UNLOCATED, OVERLONG, TRACEBACK)

NUMBERS: Final[list[Any]] = [
    math.nan,
    math.inf,
    -math.inf,
    0,
    0.0,
    -1,
    -0.5,
    10**400,
    -(10**400),
    1e308,
    5e-324,
    2**63,
    2**64 + 1,
    1.5,
    86401,
    3601,
]
TEXTS: Final[list[str]] = [
    "",
    " ",
    "0s",
    "0ms",
    "-5s",
    "1e9s",
    "99999999h",
    "25h",
    "nan",
    "inf",
    ".nan",
    "1d",
    "${",
    "${env:NOPE}",
    "${env:X}",
    "${env:NOT_UTF8}",
    "${undefined}",
    "$${x}",
    "2xx",
    "6xx",
    "http://",
    "ftp://x/",
    "$.a[",
    "(",
    "\u202e\u202d",
    "\ufeff",
    "\x85",
    "\u2028",
    "\U0001d518\U0001d52b\U0001d526",
    "e\u0301",
    "\U0010ffff",
    "a" * 10_000,
    "9" * 5_000 + "s",
]
#: Raw YAML written where a value was: what a dumper never writes.
LAUGHS: Final = (
    "[&l0 [x, x, x, x, x, x, x, x, x], "
    + ", ".join(f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10))
    + "]"
)
RAW: Final[list[str]] = [
    "[" * 100 + "]" * 100,
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 70 + "1" + "}" * 70,
    "{a: " * 5_000 + "1" + "}" * 5_000,
    "[{a: " * 3_000 + "1" + "}]" * 3_000,
    LAUGHS,
    "&r [*r]",
    "&m {a: *m}",
    "*undefined",
    "{<<: {name: x}}",
    "{<<: [1, 2]}",
    "{<<: *undefined}",
    "!!int 12x",
    "!!float abc",
    "!!timestamp 2024-13-45",
    "2024-13-45",
    "2024-01-02",
    "12:30:00",
    "!!binary ===",
    "!!python/object:os.system ls",
    "!custom x",
    "!!set {a, b}",
    "!!omap [a: 1, a: 2]",
    "!!str",
    "!!null x",
    "!!bool maybe",
    ".NaN",
    "-.Inf",
    "0x1F",
    "0o17",
    "1_000",
    "0b101",
    "9" * 5_000,
    "9" * 100_000,
    "~",
    "{a: 1, a: 2}",
    "{? [a, b]: 1}",
    "{[1]: x}",
    "|\n  block",
    "'unterminated",
    '"\\ud800"',
    '"\\x00"',
]
SCHEMA_WORDS: Final[list[str]] = [
    "defaults", "variables", "devices", "locations", "networks", "callbacks", "loadtest",
    "alerting", "channels", "name", "kind", "team", "journeys", "steps", "finally", "url",
    "method", "expect", "status", "json", "path", "capture", "headers", "body", "interval",
    "timeout", "retries", "apdex_t", "slo", "within", "await", "max_duration", "regex",
    "equals", "exists", "tcp", "dns", "smtp", "websocket", "send", "receive", "hours", "tls",
    "alert", "wait", "stages", "duration", "rtt", "group_wait", "repeat_interval",
]  # fmt: skip

small = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
values = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(TEXTS),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(small, max_size=3),
    st.dictionaries(st.sampled_from(SCHEMA_WORDS) | st.text(max_size=6), small, max_size=3),
)
odd_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(SCHEMA_WORDS),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(),
)


@dataclass(frozen=True)
class Base:
    name: str
    data: dict[str, Any]


def bases() -> list[Base]:
    """The valid documents: each journey of checks.yaml alone, full.yaml, a minimal one."""
    found = [Base("minimal", MINIMAL)]
    checks = yaml.safe_load((REPO / "checks.yaml").read_text(encoding="utf-8"))
    for channel in checks["channels"]:
        for journey in channel["journeys"]:
            one = {**checks, "channels": [{**channel, "journeys": [journey]}]}
            found.append(Base(f"checks.yaml {channel['name']}/{journey['name']}", one))
    if FULL_FIXTURE.is_file():  # absent from an installed copy of bench/
        found.append(Base("full.yaml", yaml.safe_load(FULL_FIXTURE.read_text(encoding="utf-8"))))
    return found


BASES: Final = bases()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    node = document
    for part in path[:-1]:
        node = node[part]
    return node


def _typo(key: str, at: int) -> str:
    """A near miss: one character dropped, or two swapped."""
    if len(key) < 2:
        return key + "x"
    at %= len(key) - 1
    return key[:at] + key[at + 1] + key[at] + key[at + 2 :] if at % 2 else key[:at] + key[at + 1 :]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A checks.yaml text: a valid base changed in one to four places (see the module doc)."""
    base = draw(st.sampled_from(BASES))
    document = copy.deepcopy(base.data)
    raws: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(document))
        if not paths:  # everything was dropped
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        change = draw(st.sampled_from(["value", "value", "raw", "alias", "add", "typo", "drop"]))
        if change == "value":
            parent[path[-1]] = draw(values)
        elif change == "raw":
            parent[path[-1]] = _sentinel(raws, draw(st.sampled_from(RAW)))
        elif change == "alias":  # an anchor here, an alias there (maybe before it: undefined)
            other = draw(st.sampled_from(paths))
            anchor = f"a{len(raws)}"
            flow = _flow(parent[path[-1]])
            parent[path[-1]] = _sentinel(raws, f"&{anchor} {flow}")
            if other[: len(path)] != path:  # not inside the value just replaced
                with_alias = _parent(document, other)
                with_alias[other[-1]] = _sentinel(raws, f"*{anchor}")
        elif change == "add" and isinstance(parent, dict):
            parent[draw(odd_keys)] = draw(values)
        elif change == "typo" and isinstance(parent, dict) and isinstance(path[-1], str):
            parent[_typo(path[-1], draw(st.integers(0, 99)))] = parent.pop(path[-1])
        elif change == "drop" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif isinstance(parent, list) and change in ("add", "drop"):
            parent.append(draw(values)) if change == "add" else parent.pop()
    text = _dump(document)
    for sentinel, raw in raws.items():
        text = text.replace(sentinel, raw, 1)
    whole = draw(st.sampled_from(["", "", "", "bom", "crlf", "second", "tabs", "nel"]))
    return _whole(text, whole)


def _sentinel(raws: dict[str, str], raw: str) -> str:
    sentinel = f"zqraw{len(raws)}qz"
    raws[sentinel] = raw
    return sentinel


def _flow(value: Any) -> str:
    """``value`` as one line of flow YAML."""
    try:
        line = yaml.dump([value], Dumper=_Dumper, default_flow_style=True, width=10**6)
    except yaml.YAMLError:
        return "x"
    return line.strip()[1:-1] or "x"


class _Dumper(yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper):  # type: ignore[misc]
    """Never writes anchors of its own: the cases choose where aliases go."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(document: Any) -> str:
    try:
        text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError, ValueError):
        text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=False)
    return text


def _whole(text: str, change: str) -> str:
    if change == "bom":
        return "\ufeff" + text
    if change == "crlf":
        return text.replace("\n", "\r\n")
    if change == "second":
        return text + "---\n" + text
    if change == "tabs":
        return text.replace("\n  ", "\n\t", 3)
    if change == "nel":
        return text.replace("\n", "\x85", 3)
    return text


def judge(text: str) -> tuple[str, str]:
    """The kind of outcome of ``text``, and for a failure, what to print."""
    try:
        parse_config(text, file=FILE, environ=ENVIRON)
    except ConfigError as exc:
        problems = exc.problems
    except Exception:  # the failure being counted: any other exception escaping
        return TRACEBACK, traceback.format_exc(limit=-4)
    else:
        return VALID, ""
    if not problems:
        return UNLOCATED, "ConfigError without problems"
    for problem in problems:
        if problem.file != FILE or problem.line is None or problem.column is None:
            return UNLOCATED, str(problem)[:MAX_PROBLEM_CHARS]
        if len(str(problem)) > MAX_PROBLEM_CHARS:
            return OVERLONG, str(problem)[:MAX_PROBLEM_CHARS]
    return LOCATED, ""


@dataclass
class Figures:
    """What a run found: outcomes by kind, and the first failures with their cases."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # kind, detail, case
    seconds: float = 0.0

    @property
    def cases(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return sum(self.outcomes[kind] for kind in FAILURES)


def run(cases: int) -> Figures:
    """Judge ``cases`` derandomized cases (the same ones every run)."""
    figures = Figures()

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(documents())
    def case(text: str) -> None:
        kind, detail = judge(text)
        figures.outcomes[kind] += 1
        if kind in FAILURES and len(figures.failures) < SHOWN_FAILURES:
            figures.failures.append((kind, detail, text[:2000]))

    started = time.perf_counter()
    case()
    figures.seconds = time.perf_counter() - started
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_config", description=__doc__)
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES)
    args = parser.parse_args(argv)
    figures = run(args.cases)
    rows = [Row(kind, f"{figures.outcomes[kind]:,}") for kind in (VALID, LOCATED)]
    rows += [
        Row(kind, f"{figures.outcomes[kind]:,}", goal="0", met=figures.outcomes[kind] == 0)
        for kind in FAILURES
    ]
    rows.append(Row("cases per second", figures.cases / figures.seconds, digits=0))
    print_table(
        f"B8 checks.yaml fuzzing: {figures.cases:,} structure-aware cases from "
        f"{len(BASES)} valid documents, {figures.seconds:.0f} s",
        rows,
    )
    for kind, detail, text in figures.failures:
        print(f"\n--- {kind}\n{detail}\n--- the case (first 2,000 characters):\n{text}")
    return 0 if figures.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
