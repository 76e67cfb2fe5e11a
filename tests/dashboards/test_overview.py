"""The overview: a tile per channel of checks.yaml, in its order, in words as well as colour;
each channel's own latency threshold drawn; the failing steps' table empty by design."""

from __future__ import annotations

from typing import Any

from dashboards import overview
from dashboards.overview import tile_widths
from probes import Config


def tiles(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] == "stat"]


def titled(board: dict[str, Any], title: str) -> dict[str, Any]:
    [panel] = [p for p in board["panels"] if p["title"] == title]
    return panel


def test_a_tile_per_channel_in_checks_yaml_order(demo: Config, two_locations: Config) -> None:
    for config in (demo, two_locations):
        board = overview(config)
        assert [t["title"] for t in tiles(board)] == [c.name for c in config.channels]
        assert sum(t["gridPos"]["w"] for t in tiles(board)) % 24 == 0  # lines filled


def test_a_tile_says_its_state_in_words_with_an_icon(demo: Config) -> None:
    texts = {
        text["text"]
        for mapping in tiles(overview(demo))[0]["fieldConfig"]["defaults"]["mappings"]
        for text in mapping["options"].values()
    }
    assert texts == {"✔ Up", "⚠ Degraded", "✖ Down", "☾ Closed"}


def test_a_tile_links_to_its_channel_s_journeys(demo: Config) -> None:
    [link] = tiles(overview(demo))[0]["links"]
    assert link["url"].startswith(
        f"/d/carewatch-journey/carewatch-journey?var-channel={demo.channels[0].name}&"
    )


def test_each_channel_s_p95_is_drawn_against_its_strictest_threshold(two_locations: Config) -> None:
    panel = titled(overview(two_locations), "p95 journey duration per channel")
    drawn = {
        o["matcher"]["options"]: [p["value"] for p in o["properties"] if p["id"] == "thresholds"]
        for o in panel["fieldConfig"]["overrides"]
    }
    # app: login 2s, account 1.5s -> 1.5s
    assert drawn["^app$"][0]["steps"][1]["value"] == 1.5


def test_only_the_failing_steps_table_is_empty_by_design(demo: Config) -> None:
    board = overview(demo)
    empty = [p["title"] for p in board["panels"] if "noValue" in p["fieldConfig"]["defaults"]]
    assert empty == [*(c.name for c in demo.channels), "Steps failing now"]
    assert {t["fieldConfig"]["defaults"]["noValue"] for t in tiles(board)} == {
        "no data"
    }  # a tile without data says so: it is never green by default


def test_tile_widths_fill_lines_evenly() -> None:
    assert tile_widths(1) == [24]
    assert tile_widths(8) == [3] * 8
    assert tile_widths(9) == [5, 5, 5, 5, 4, 6, 6, 6, 6]
