"""The overview's state expressions, evaluated by Prometheus's own engine (promtool's
``promql_expr_test``) over made-up series: a channel reads up, degraded, down or closed exactly
when docs/dashboards.md says it does, and each journey's lane up, down or closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dashboards import queries as q
from dashboards.overview import journey_states
from tests._support.tools import run_tool

ALL = ".*"  # what Grafana puts in for a multi-value variable set to All


def substituted(expr: str) -> str:
    return expr.replace("$location", ALL).replace("$channel", ALL)


def up(journey: str, location: str, values: str) -> dict[str, str]:
    series = f'carewatch_journey_up{{channel="app",journey="{journey}",location="{location}"}}'
    return {"series": series, "values": values}


def apdex(journey: str, location: str, values: str) -> dict[str, str]:
    series = (
        f'carewatch:journey_apdex:ratio_rate1h{{channel="app",journey="{journey}",'
        f'location="{location}"}}'
    )
    return {"series": series, "values": values}


def opened(values: str) -> dict[str, str]:
    return {"series": 'carewatch_channel_open{channel="app"}', "values": values}


def case(series: list[dict[str, str]], expr: str, expected: list[dict[str, Any]]) -> Any:
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": expected}],
    }


def state(value: int) -> list[dict[str, Any]]:
    return [{"labels": "{}", "value": value}]


def promtool_passes(tests: list[Any], tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("groups: []\n", encoding="utf-8")
    document = {"rule_files": ["empty.yaml"], "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    done = run_tool("promtool", "test", "rules", "tests.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout


def test_a_channel_reads_up_degraded_down_or_closed(tmp_path: Path) -> None:
    expr = substituted(q.channel_state("app"))
    fast = [apdex("login", "paris", "0.99x10"), apdex("login", "lyon", "0.99x10")]
    promtool_passes(
        [
            # every journey passes everywhere, fast enough
            case(
                [up("login", "paris", "1x10"), up("login", "lyon", "1x10"), opened("1x10"), *fast],
                expr,
                state(q.UP),
            ),
            # failing at one location only
            case(
                [up("login", "paris", "1x10"), up("login", "lyon", "0x10"), opened("1x10"), *fast],
                expr,
                state(q.DEGRADED),
            ),
            # passing, but slow at one location
            case(
                [
                    up("login", "paris", "1x10"),
                    up("login", "lyon", "1x10"),
                    opened("1x10"),
                    apdex("login", "paris", "0.99x10"),
                    apdex("login", "lyon", "0.6x10"),
                ],
                expr,
                state(q.DEGRADED),
            ),
            # every journey fails everywhere
            case(
                [up("login", "paris", "0x10"), up("login", "lyon", "0x10"), opened("1x10"), *fast],
                expr,
                state(q.DOWN),
            ),
            # closed: whatever the last runs said
            case(
                [up("login", "paris", "0x10"), up("login", "lyon", "1x10"), opened("0x10"), *fast],
                expr,
                state(q.CLOSED),
            ),
            # no Apdex yet (just started): the runs alone decide
            case([up("login", "paris", "1x10"), opened("1x10")], expr, state(q.UP)),
        ],
        tmp_path,
    )


def test_the_states_are_not_all_the_same_answer(tmp_path: Path) -> None:
    """The check above bites: a down channel does not read up."""
    expr = substituted(q.channel_state("app"))
    series = [up("login", "paris", "0x10"), opened("1x10")]
    (tmp_path / "empty.yaml").write_text("groups: []\n", encoding="utf-8")
    document = {"rule_files": ["empty.yaml"], "tests": [case(series, expr, state(q.UP))]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    done = run_tool("promtool", "test", "rules", "tests.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "exp:" in done.stdout
    assert "got:" in done.stdout


def test_a_journey_lane_reads_up_down_or_closed(tmp_path: Path) -> None:
    [target] = journey_states().json["targets"]
    expr = substituted(target["expr"])

    def lane(value: int) -> list[dict[str, Any]]:
        labels = '{channel="app",journey="login",location="paris"}'
        return [{"labels": labels, "value": value}]

    promtool_passes(
        [
            case([up("login", "paris", "1x10"), opened("1x10")], expr, lane(1)),
            case([up("login", "paris", "0x10"), opened("1x10")], expr, lane(0)),
            case([up("login", "paris", "0x10"), opened("0x10")], expr, lane(2)),
        ],
        tmp_path,
    )
