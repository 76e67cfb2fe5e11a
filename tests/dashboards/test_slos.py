"""The SLO dashboard: a row per journey of checks.yaml, each with that journey's own objective
and the alerts' burn-rate thresholds for the configured period."""

from __future__ import annotations

from typing import Any

from dashboards import slos
from probes import Config


def rows(board: dict[str, Any]) -> list[str]:
    return [p["title"] for p in board["panels"] if p["type"] == "row"]


def panel(board: dict[str, Any], row: str, title: str) -> dict[str, Any]:
    current = None
    for p in board["panels"]:
        if p["type"] == "row":
            current = p["title"]
        elif current == row and p["title"] == title:
            return p
    raise AssertionError(f"no {title!r} under {row!r}")


def steps(p: dict[str, Any]) -> list[Any]:
    return [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_a_row_per_journey(two_locations: Config) -> None:
    assert rows(slos(two_locations)) == [
        f"{j.channel} / {j.name}" for c in two_locations.channels for j in c.journeys
    ]


def test_each_row_is_green_at_its_own_journey_s_objective(two_locations: Config) -> None:
    board = slos(two_locations)
    # login: availability 99.9; account: latency 90 % within 1.5 s (tests/fixtures)
    assert steps(panel(board, "app / login", "availability: SLI over 4w")) == [None, 0.999]
    assert steps(panel(board, "app / account", "latency: SLI over 4w")) == [None, 0.9]


def test_burn_rates_are_drawn_at_the_alerts_thresholds_for_the_period(
    demo: Config, two_locations: Config
) -> None:
    # 30 days: the SRE Workbook's 1, 3, 6 and 14.4; 28 days: Sloth's 0.93..., 2.8, 5.6, 13.44
    assert steps(panel(slos(demo), "app / login", "availability: burn rate")) == [
        None,
        1,
        3,
        6,
        14.4,
    ]
    drawn = steps(panel(slos(two_locations), "app / login", "availability: burn rate"))
    assert [round(v, 2) for v in drawn[1:]] == [0.93, 2.8, 5.6, 13.44]


def test_burn_rate_lines_are_one_per_window_the_alerts_watch(demo: Config) -> None:
    burn = panel(slos(demo), "app / login", "latency: burn rate")
    assert [t["legendFormat"] for t in burn["targets"]] == [
        "5m",
        "30m",
        "1h",
        "2h",
        "6h",
        "1d",
        "3d",
    ]
