"""loadtests.report: every threshold's verdict, the exit code, JUnit XML, JSON and the summary."""

from __future__ import annotations

import doctest
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

import loadtests.report
from loadtests.report import (
    SUITE_NAME,
    evaluate,
    exit_code,
    json_verdict,
    junit_xml,
    summary,
)
from probes import Exit
from probes.model.thresholds import (
    PERCENTILE_RESOLUTION,
    TOTAL_ENTRY,
    TOTAL_MEANING,
    EntryStats,
    Verdict,
    parse_threshold,
)


def entry(name: str, **overrides: Any) -> EntryStats:
    values: dict[str, Any] = {
        "requests": 400,
        "failures": 2,
        "rps": 20.0,
        "percentiles": {0.5: 0.4, 0.95: 0.7, 0.99: 0.9},
        "avg": 0.45,
        "min": 0.2,
        "max": 1.1,
    }
    return EntryStats(name, **{**values, **overrides})


LOGIN = entry("app/login", percentiles={0.5: 0.4, 0.95: 1.31, 0.99: 1.6})
SEARCH = entry("help/search-article")
TOTAL = entry(TOTAL_ENTRY, requests=5000, failures=100, rps=120.0)


def run(total: EntryStats | None = TOTAL) -> list[Verdict]:
    """Two journeys with thresholds (one of them never ran), and two global thresholds."""
    return evaluate(
        {
            "app/login": [parse_threshold("p95 < 800ms"), parse_threshold("fail_ratio < 1%")],
            "help/search-article": [parse_threshold("p95 <= 2s")],
            "chat/ask-bot": [parse_threshold("p95 < 3s")],
        },
        journeys={"app/login": LOGIN, "help/search-article": SEARCH},
        total=total,
        global_thresholds=[parse_threshold("fail_ratio < 1%"), parse_threshold("rps > 50")],
    )


# --- evaluation -------------------------------------------------------------------------------


def test_every_threshold_gets_a_verdict_in_order() -> None:
    verdicts = run()
    assert [(v.entry, v.threshold.expression, v.passed) for v in verdicts] == [
        ("app/login", "p95 < 800ms", False),
        ("app/login", "fail_ratio < 1%", True),
        ("help/search-article", "p95 <= 2s", True),
        ("chat/ask-bot", "p95 < 3s", False),
        (TOTAL_ENTRY, "fail_ratio < 1%", False),
        (TOTAL_ENTRY, "rps > 50", True),
    ]
    assert verdicts[0].message == "p95 was 1.31 s, limit < 800 ms: 510 ms over"
    assert verdicts[4].message == "fail_ratio was 2 %, limit < 1 %: 1 percentage point over"


def test_a_journey_that_never_ran_fails_with_a_clear_message() -> None:
    missing = run()[3]
    assert (missing.passed, missing.observed, missing.margin) == (False, None, None)
    assert missing.message == "no JOURNEY entry for chat/ask-bot: did it run?"


def test_no_total_fails_the_global_thresholds() -> None:
    verdicts = run(total=None)[-2:]
    assert [v.passed for v in verdicts] == [False, False]
    assert {v.message for v in verdicts} == {"no step requests at all: did the load test run?"}


def test_an_empty_total_fails_too() -> None:
    verdict = run(total=entry(TOTAL_ENTRY, requests=0, failures=0))[-1]
    assert verdict.message == "no step requests at all: did the load test run?"


def test_nothing_to_evaluate() -> None:
    assert evaluate({}, journeys={}, total=None) == []


# --- exit code --------------------------------------------------------------------------------


def test_exit_code_99_when_any_threshold_fails() -> None:
    assert exit_code(run()) is Exit.THRESHOLDS
    assert int(Exit.THRESHOLDS) == 99


def test_exit_code_0_when_all_pass_or_there_are_none() -> None:
    passing = [v for v in run() if v.passed]
    assert exit_code(passing) is Exit.OK
    assert int(Exit.OK) == 0
    assert exit_code([]) == Exit.OK


# --- JUnit XML --------------------------------------------------------------------------------


def test_junit_xml_parses_back_with_correct_counts() -> None:
    verdicts = run()
    root = ET.fromstring(junit_xml(verdicts))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "3", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == SUITE_NAME
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "3", "0")
    assert suite.get("skipped") == "0"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (v.entry, v.threshold.expression) for v in verdicts
    ]
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 3
    assert len(suite.findall("testcase/failure")) == 3


def test_junit_failures_carry_the_message() -> None:
    cases = ET.fromstring(junit_xml(run())).findall("testsuite/testcase")
    login = cases[0].find("failure")
    assert login is not None
    assert login.get("message") == "p95 was 1.31 s, limit < 800 ms: 510 ms over"
    assert login.get("type") == "threshold"
    assert login.text == "app/login: p95 < 800ms: p95 was 1.31 s, limit < 800 ms: 510 ms over"
    missing = cases[3].find("failure")
    assert missing is not None
    assert missing.get("type") == "no_data"
    assert missing.get("message") == "no JOURNEY entry for chat/ask-bot: did it run?"
    passed = cases[1]
    assert passed.find("failure") is None
    assert passed.findtext("system-out", "").startswith("fail_ratio was 0.5 %")


def test_junit_states_the_percentile_resolution() -> None:
    root = ET.fromstring(junit_xml(run()))
    prop = root.find("testsuite/properties/property[@name='percentile_resolution']")
    assert prop is not None
    assert prop.get("value") == PERCENTILE_RESOLUTION


def test_junit_escapes_what_it_must() -> None:
    verdicts = evaluate(
        {'app/"quoted"&<x>': [parse_threshold("p95 < 1ms")]},
        journeys={'app/"quoted"&<x>': entry('app/"quoted"&<x>')},
        total=None,
    )
    case = ET.fromstring(junit_xml(verdicts)).find("testsuite/testcase")
    assert case is not None
    assert case.get("classname") == 'app/"quoted"&<x>'


def test_junit_with_no_thresholds() -> None:
    root = ET.fromstring(junit_xml([]))
    assert (root.get("tests"), root.get("failures")) == ("0", "0")


# --- JSON -------------------------------------------------------------------------------------


def test_json_verdict_round_trips() -> None:
    verdict = json_verdict(run())
    assert json.loads(json.dumps(verdict)) == verdict
    assert set(verdict) == {
        "passed",
        "exit_code",
        "thresholds",
        "skipped",
        "total_entry",
        "percentile_resolution",
    }
    assert verdict["total_entry"] == {"name": TOTAL_ENTRY, "means": TOTAL_MEANING}
    assert verdict["skipped"] == []
    assert (verdict["passed"], verdict["exit_code"]) == (False, 99)
    assert verdict["percentile_resolution"] == PERCENTILE_RESOLUTION
    assert len(verdict["thresholds"]) == 6


def test_json_items() -> None:
    items = json_verdict(run())["thresholds"]
    login = items[0]
    assert login == {
        "entry": "app/login",
        "threshold": "p95 < 800ms",
        "metric": "p95",
        "op": "<",
        "limit": 0.8,
        "unit": "s",
        "observed": 1.31,
        "margin": pytest.approx(0.51),
        "passed": False,
        "message": "p95 was 1.31 s, limit < 800 ms: 510 ms over",
    }
    assert (items[1]["unit"], items[1]["limit"], items[1]["observed"]) == ("ratio", 0.01, 0.005)
    assert (items[3]["observed"], items[3]["margin"], items[3]["passed"]) == (None, None, False)
    assert (items[5]["unit"], items[5]["margin"]) == ("rps", 70.0)


def test_json_passes_when_every_threshold_holds() -> None:
    verdict = json_verdict([v for v in run() if v.passed])
    assert (verdict["passed"], verdict["exit_code"]) == (True, 0)


# --- the summary ------------------------------------------------------------------------------


def test_summary_lists_broken_thresholds_first_with_by_how_much() -> None:
    lines = summary(run()).splitlines()
    assert lines[0] == "3 of 6 thresholds broken (exit code 99)"
    assert [line.split()[0] for line in lines[1:7]] == ["broken"] * 3 + ["held"] * 3
    assert lines[1].split() == [
        "broken",
        "app/login",
        *["p95", "<", "800ms"],
        *["p95", "was", "1.31", "s,", "limit", "<", "800", "ms:", "510", "ms", "over"],
    ]
    assert "no JOURNEY entry for chat/ask-bot: did it run?" in lines[2]
    assert lines[3].endswith("fail_ratio was 2 %, limit < 1 %: 1 percentage point over")
    assert lines[-1] == f"Percentiles: {PERCENTILE_RESOLUTION}."


def test_summary_columns_line_up() -> None:
    verdicts = run()
    ordered = [v for v in verdicts if not v.passed] + [v for v in verdicts if v.passed]
    lines = summary(verdicts).splitlines()[1:7]
    pairs = list(zip(lines, ordered, strict=True))
    assert len({line.index(v.entry) for line, v in pairs}) == 1
    assert len({line.index(v.threshold.expression) for line, v in pairs}) == 1
    assert len({line.index(v.message) for line, v in pairs}) == 1


def test_summary_when_everything_held() -> None:
    text = summary([v for v in run() if v.passed])
    assert text.startswith("All 3 thresholds held\n")
    assert "broken" not in text


SKIPPED = [("sms/text-care-number", "await step 'reply-arrives': not run by the Locust engine")]


def test_skipped_journeys_are_junit_skipped_cases() -> None:
    root = ET.fromstring(junit_xml(run(), skipped=SKIPPED))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("7", "3", "1")
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("skipped")) == ("7", "1")
    [case] = [c for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert (case.get("classname"), case.get("name")) == ("sms/text-care-number", "not run")
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == SKIPPED[0][1]


def test_skipped_journeys_in_json_and_summary() -> None:
    verdict = json_verdict(run(), skipped=SKIPPED)
    assert verdict["skipped"] == [{"journey": SKIPPED[0][0], "reason": SKIPPED[0][1]}]
    assert verdict["exit_code"] == 99  # a journey left out does not change the verdict
    lines = summary(run(), skipped=SKIPPED).splitlines()
    assert lines[-2] == f"Not run: {SKIPPED[0][0]}: {SKIPPED[0][1]}"
    assert summary([], skipped=SKIPPED) == (
        f"No thresholds to check.\nNot run: {SKIPPED[0][0]}: {SKIPPED[0][1]}\n"
    )


def test_summary_with_no_thresholds() -> None:
    assert summary([]) == "No thresholds to check.\n"


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(loadtests.report).failed == 0
