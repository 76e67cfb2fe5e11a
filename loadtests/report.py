"""The end of a load test: thresholds checked once, on the master, and reported for CI.

``evaluate`` checks each journey's thresholds against its ``JOURNEY`` entry (``channel/journey``)
and the global ones against the total of every step request (``steps (all)``, ``TOTAL_ENTRY``:
the ``JOURNEY`` entries left out). The rest are pure functions of the verdicts:

* ``exit_code``: ``Exit.OK`` (0) when every threshold held, else ``Exit.THRESHOLDS`` (99, as k6);
* ``junit_xml``: one ``<testcase>`` per threshold, a ``<failure>`` for each broken one;
* ``json_verdict``: ``{"passed", "exit_code", "thresholds": [...], "total_entry",
  "percentile_resolution"}``;
* ``summary``: readable text for the terminal, broken thresholds first, with by how much.

The last three also list the journeys left out of the run, each with its reason (``skipped``:
``[(journey_id, reason)]``, as ``loadtests.journeys.excluded`` gives them).

>>> from probes.model.thresholds import EntryStats, parse_threshold
>>> stats = EntryStats("app/login", requests=100, failures=0, rps=5.0, avg=0.9, min=0.3,
...                    max=2.2, percentiles={0.95: 1.31})
>>> verdicts = evaluate({"app/login": [parse_threshold("p95 < 800ms")]},
...                     journeys={"app/login": stats}, total=None)
>>> exit_code(verdicts), verdicts[0].message
(<Exit.THRESHOLDS: 99>, 'p95 was 1.31 s, limit < 800 ms: 510 ms over')
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from probes import Exit
from probes.model import (
    PERCENTILE_RESOLUTION,
    TOTAL_ENTRY,
    TOTAL_MEANING,
    EntryStats,
    Threshold,
    Verdict,
    missing_entry,
)

SUITE_NAME: Final = "carewatch load-test thresholds"
#: The ``type`` of a JUnit failure: a threshold broken, or nothing to check it against.
_BROKEN: Final = "threshold"
_NO_DATA: Final = "no_data"
#: The JUnit test case name of a journey that was left out.
_NOT_RUN: Final = "not run"

#: A journey left out of the run: ``(channel/journey, why)``.
Skipped: TypeAlias = tuple[str, str]


def evaluate(
    journey_thresholds: Mapping[str, Sequence[Threshold]],
    *,
    journeys: Mapping[str, EntryStats],
    total: EntryStats | None,
    global_thresholds: Sequence[Threshold] = (),
) -> list[Verdict]:
    """Every threshold's verdict: the journeys' (keyed ``channel/journey``) against their
    ``JOURNEY`` entries in ``journeys``, then the global ones against ``total``.

    A journey with no entry (it never completed a run) fails each of its thresholds with
    ``no JOURNEY entry for app/login: did it run?``; so does the total with no requests at all.
    Leave out the journeys that were not run on purpose: they are ``skipped``, not failed.
    """
    verdicts: list[Verdict] = []
    for name, thresholds in journey_thresholds.items():
        stats = journeys.get(name)
        verdicts.extend(
            t.check(stats) if stats is not None else missing_entry(t, name) for t in thresholds
        )
    verdicts.extend(
        t.check(total) if total is not None else missing_entry(t, TOTAL_ENTRY)
        for t in global_thresholds
    )
    return verdicts


def exit_code(verdicts: Iterable[Verdict]) -> Exit:
    """``Exit.OK`` when every threshold held (or there were none), else ``Exit.THRESHOLDS``.

    Locust's own codes (1 when requests failed and no verdict was set, 2 for an unhandled
    exception) apply only when the thresholds were never checked.
    """
    return Exit.OK if all(v.passed for v in verdicts) else Exit.THRESHOLDS


def junit_xml(
    verdicts: Sequence[Verdict], *, skipped: Sequence[Skipped] = (), suite: str = SUITE_NAME
) -> str:
    """A JUnit XML report: one test case per threshold, named by the expression as written and
    classed by its entry (``app/login``, ``steps (all)``), with a ``<failure>`` when broken; and
    one ``not run`` test case with ``<skipped>`` per journey left out."""
    failures = sum(not v.passed for v in verdicts)
    counts = {
        "tests": str(len(verdicts) + len(skipped)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(len(skipped)),
    }
    root = ET.Element("testsuites", {"name": suite, **counts})
    testsuite = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    properties = ET.SubElement(testsuite, "properties")
    ET.SubElement(
        properties, "property", {"name": "percentile_resolution", "value": PERCENTILE_RESOLUTION}
    )
    for verdict in verdicts:
        case = ET.SubElement(
            testsuite,
            "testcase",
            {"classname": verdict.entry, "name": verdict.threshold.expression, "time": "0"},
        )
        if verdict.passed:
            ET.SubElement(case, "system-out").text = verdict.message
        else:
            kind = _BROKEN if verdict.observed is not None else _NO_DATA
            failure = ET.SubElement(case, "failure", {"message": verdict.message, "type": kind})
            failure.text = f"{verdict.entry}: {verdict.threshold.expression}: {verdict.message}"
    for journey, reason in skipped:
        case = ET.SubElement(
            testsuite, "testcase", {"classname": journey, "name": _NOT_RUN, "time": "0"}
        )
        ET.SubElement(case, "skipped", {"message": reason})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def json_verdict(verdicts: Sequence[Verdict], *, skipped: Sequence[Skipped] = ()) -> dict[str, Any]:
    """The verdict as JSON-ready data: one item per threshold, and the journeys left out.

    Values are in the metric's ``unit``: ``s`` (seconds), ``ratio`` (0.01 for 1 %) or ``rps``.
    ``total_entry`` names the entry global thresholds are checked against, and what it counts.
    ``observed`` and ``margin`` (``observed - limit``) are null when there was no data.
    """
    code = exit_code(verdicts)
    return {
        "passed": code is Exit.OK,
        "exit_code": int(code),
        "thresholds": [
            {
                "entry": v.entry,
                "threshold": v.threshold.expression,
                "metric": v.threshold.metric,
                "op": str(v.threshold.op),
                "limit": v.threshold.value,
                "unit": str(v.threshold.unit),
                "observed": v.observed,
                "margin": v.margin,
                "passed": v.passed,
                "message": v.message,
            }
            for v in verdicts
        ],
        "skipped": [{"journey": journey, "reason": reason} for journey, reason in skipped],
        "total_entry": {"name": TOTAL_ENTRY, "means": TOTAL_MEANING},
        "percentile_resolution": PERCENTILE_RESOLUTION,
    }


def summary(verdicts: Sequence[Verdict], *, skipped: Sequence[Skipped] = ()) -> str:
    """Text for the terminal: the broken thresholds first, each with by how much, then the
    ones that held, what ``steps (all)`` counts (when a global threshold was checked), the
    journeys left out, and the resolution of Locust's percentiles.

    ::

        1 of 2 thresholds broken (exit code 99)
          broken  app/login    p95 < 800ms  p95 was 1.31 s, limit < 800 ms: 510 ms over
          held    steps (all)  rps > 50     rps was 120, limit > 50: 70 over
        steps (all): every step's requests together (...)
    """
    lines = _threshold_lines(verdicts)
    if any(v.entry == TOTAL_ENTRY for v in verdicts):
        lines.append(f"{TOTAL_ENTRY}: {TOTAL_MEANING}.")
    lines.extend(f"Not run: {journey}: {reason}" for journey, reason in skipped)
    if verdicts:
        lines.append(f"Percentiles: {PERCENTILE_RESOLUTION}.")
    return "\n".join(lines) + "\n"


def _threshold_lines(verdicts: Sequence[Verdict]) -> list[str]:
    if not verdicts:
        return ["No thresholds to check."]
    broken = [v for v in verdicts if not v.passed]
    held = [v for v in verdicts if v.passed]
    count = len(verdicts)
    if broken:
        head = f"{len(broken)} of {count} thresholds broken (exit code {exit_code(verdicts)})"
    else:
        head = f"All {count} threshold{'s' if count != 1 else ''} held"
    entry_width = max(len(v.entry) for v in verdicts)
    threshold_width = max(len(v.threshold.expression) for v in verdicts)
    lines = [head]
    for label, group in (("broken", broken), ("held", held)):
        lines.extend(
            f"  {label:<6}  {v.entry:<{entry_width}}  "
            f"{v.threshold.expression:<{threshold_width}}  {v.message}"
            for v in group
        )
    return lines
