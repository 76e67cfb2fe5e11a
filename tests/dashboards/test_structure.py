"""The generated dashboards hold together: unique panel ids, no overlapping panels, a refId and
a datasource on every query, every variable used defined, and every link, the alerts'
``dashboard_url`` included, landing on a generated dashboard and its variables.

They are checked for the demo's checks.yaml, for tests/fixtures/dashboards/more-journeys.yaml
(channels and journeys the demo lacks, two locations), where a new journey's panels must
appear, and for the alert tests' two-locations.yaml. The checks are
``tests._support.grafana``'s; the last tests show each one failing on a small dashboard that
breaks its rule, so a check that passes is known to look.
"""

from __future__ import annotations

import copy
import doctest
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import pytest
import yaml

import alerts
from probes import Config, load_config
from tests._support import grafana
from tests._support.grafana import (
    bad_targets,
    broken_links,
    duplicate_ids,
    hidden_panels,
    legacy_variable_syntax,
    link_problems,
    off_grid,
    overlapping,
    undefined_variables,
)
from tests._support.paths import FIXTURES, REPO

UIDS: Final = {"carewatch-overview", "carewatch-journey", "carewatch-slos", "carewatch-agents"}
CONFIGS: Final = {
    "demo": REPO / "checks.yaml",
    "more-journeys": FIXTURES / "dashboards" / "more-journeys.yaml",
    "two-locations": FIXTURES / "alerts" / "two-locations.yaml",
}
Board = dict[str, Any]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> Config:
    return load_config(str(CONFIGS[request.param]))


@pytest.fixture(scope="module")
def boards(config: Config) -> dict[str, Board]:
    """The config's dashboards, by uid."""
    import dashboards  # here, so that the checks' own tests run without the generator

    return {board["uid"]: board for board in dashboards.dashboards(config)}


def known(config: Config) -> dict[str, frozenset[str]]:
    """The values a link may give each variable: the config's channels, journeys, locations."""
    return {
        "channel": frozenset(c.name for c in config.channels),
        "journey": frozenset(j.name for j in config.journeys),
        "location": frozenset(config.locations) | {config.defaults.location},
    }


def test_the_four_dashboards(boards: dict[str, Board]) -> None:
    assert set(boards) == UIDS
    assert all(grafana.panels(board) for board in boards.values())


def test_panel_ids_are_unique(boards: dict[str, Board]) -> None:
    assert [p for board in boards.values() for p in duplicate_ids(board)] == []


def test_no_panels_overlap(boards: dict[str, Board]) -> None:
    assert [p for board in boards.values() for p in overlapping(board) + off_grid(board)] == []


def test_no_panel_is_hidden(boards: dict[str, Board]) -> None:
    assert [p for board in boards.values() for p in hidden_panels(board)] == []


def test_every_target_has_a_ref_id_and_a_datasource(boards: dict[str, Board]) -> None:
    assert [p for board in boards.values() for p in bad_targets(board)] == []
    assert sum(1 for board in boards.values() for _ in grafana.targets(board)) > len(boards)


def test_every_variable_used_is_defined(boards: dict[str, Board]) -> None:
    problems = [
        p
        for board in boards.values()
        for p in undefined_variables(board) + legacy_variable_syntax(board)
    ]
    assert problems == []


def test_every_dashboard_link_resolves(config: Config, boards: dict[str, Board]) -> None:
    problems = [p for b in boards.values() for p in broken_links(b, boards, known=known(config))]
    assert problems == []
    assert any(True for board in boards.values() for _ in grafana.links(board))


def dashboard_urls(config: Config) -> list[str]:
    """The ``dashboard_url`` of every alert rule generated from ``config`` (the alert groups
    that ``alerts.generate`` writes to rules.yaml, after the recording groups)."""
    return [
        str(rule["annotations"]["dashboard_url"])
        for group in alerts.alert_groups(config)
        for rule in group["rules"]
        if "dashboard_url" in rule.get("annotations", {})
    ]


def test_the_alert_groups_are_those_of_rules_yaml() -> None:
    config = load_config(str(CONFIGS["more-journeys"]))
    written = yaml.safe_load(alerts.generate(config)["rules.yaml"])["groups"]
    assert written[-len(alerts.alert_groups(config)) :] == alerts.alert_groups(config)


def test_every_alert_dashboard_url_resolves(config: Config, boards: dict[str, Board]) -> None:
    urls = dashboard_urls(config)
    assert len(urls) >= len(config.journeys)
    assert [
        p for url in sorted(set(urls)) for p in link_problems(url, boards, known=known(config))
    ] == []
    # each journey's alerts land on its drill-down, with its channel and journey selected
    for journey in config.journeys:
        wanted = f"/d/carewatch-journey/carewatch-journey?var-channel={journey.channel}"
        assert any(wanted in url and f"var-journey={journey.name}" in url for url in urls), journey


def test_a_new_journey_appears() -> None:
    """Add a journey and its panels appear: the dashboards of more-journeys.yaml name its
    channels and journeys, and those of the demo do not name the ones it lacks."""
    import dashboards

    demo = load_config(str(CONFIGS["demo"]))
    more = load_config(str(CONFIGS["more-journeys"]))
    texts = {
        name: [text for board in dashboards.dashboards(c) for _, text in grafana.strings(board)]
        for name, c in (("demo", demo), ("more", more))
    }

    def named(word: str, where: str) -> bool:
        whole = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
        return any(whole.search(text) for text in texts[where])

    for journey in more.journeys:
        assert named(journey.name, "more"), journey.id
        assert named(journey.channel, "more"), journey.id
    assert not named("renew-contract", "demo")
    assert named("renew-contract", "more")


# --- the checks bite ---------------------------------------------------------------------

DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}


def panel(number: int, x: int, y: int, w: int = 12, h: int = 8, **fields: Any) -> Board:
    return {
        "id": number,
        "type": "timeseries",
        "title": f"p{number}",
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{"refId": "A", "expr": 'up{channel=~"$channel"}', "datasource": DATASOURCE}],
        **fields,
    }


def row(number: int, y: int, inner: list[Board] | None = None, **fields: Any) -> Board:
    folded = {"collapsed": True, "panels": inner} if inner is not None else {"collapsed": False}
    return {
        "id": number,
        "type": "row",
        "title": f"r{number}",
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        **folded,
        **fields,
    }


def board(uid: str, *panels: Board, links: list[Board] | None = None) -> Board:
    return {
        "uid": uid,
        "title": uid,
        "tags": ["carewatch"],
        "panels": list(panels),
        "links": links or [],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "channel", "type": "query", "multi": True, "includeAll": True},
                {"name": "journey", "type": "query"},
            ]
        },
    }


#: A good dashboard: an expanded row and its panels, then two collapsed rows whose panels
#: (laid out under each row when it opens) share raw ``y`` values with the rows below them.
GOOD: Final = board(
    "good",
    row(1, 0),
    panel(2, 0, 1),
    panel(3, 12, 1),
    row(4, 9, [panel(5, 0, 10), panel(6, 12, 10), panel(7, 0, 18, w=24)], repeat="journey"),
    row(8, 10, [panel(9, 0, 11, h=4)]),
    links=[
        {"type": "link", "title": "j", "url": "/d/good/good?var-channel=${channel}&from=now-1h"},
        {"type": "dashboards", "tags": ["carewatch"], "asDropdown": True},
    ],
)
CHECKS: Final = (
    duplicate_ids,
    hidden_panels,
    overlapping,
    off_grid,
    bad_targets,
    undefined_variables,
    legacy_variable_syntax,
)


def test_a_good_dashboard_passes_every_check() -> None:
    assert [p for check in CHECKS for p in check(GOOD)] == []
    assert broken_links(GOOD, {"good": GOOD}, known={"channel": frozenset({"app"})}) == []
    assert len(list(grafana.panels(GOOD))) == 9


def broken(change: Any) -> Board:
    """A copy of GOOD, changed by ``change(copy)``."""
    bad = copy.deepcopy(GOOD)
    change(bad)
    return bad


def inner(bad: Board, row_index: int) -> list[Board]:
    panels: list[Board] = bad["panels"][row_index]["panels"]
    return panels


BAD: Final[Mapping[str, tuple[Any, Any, str]]] = {
    "two panels share an id": (
        lambda b: inner(b, 3).__setitem__(0, {**inner(b, 3)[0], "id": 2}),
        duplicate_ids,
        "id 2 is used by panel 2 'p2' and panel 2 'p5'",
    ),
    "a panel has no id": (
        lambda b: b["panels"][1].pop("id"),
        duplicate_ids,
        "panel None 'p2' has no integer id",
    ),
    "top-level panels overlap": (
        lambda b: b["panels"][2]["gridPos"].update(x=6),
        overlapping,
        "panel 2 'p2' overlaps panel 3 'p3'",
    ),
    "a panel overlaps a row": (
        lambda b: b["panels"][2]["gridPos"].update(h=9),
        overlapping,
        "panel 3 'p3' overlaps row 4 'r4'",
    ),
    "panels of a collapsed row overlap": (
        lambda b: inner(b, 3)[2]["gridPos"].update(y=17, w=12),
        overlapping,
        "in row 4 'r4': panel 5 'p5' overlaps panel 7 'p7'",
    ),
    "an expanded row holds panels": (
        lambda b: b["panels"][0].update(panels=[panel(10, 0, 20)]),
        hidden_panels,
        "row 1 'r1' is an expanded row that holds panels",
    ),
    "a collapsed row's panel sits above its first one": (
        lambda b: inner(b, 3)[1]["gridPos"].update(y=2),
        overlapping,
        "in row 4 'r4': panel 6 'p6' sits above the first one",
    ),
    "a panel is wider than the grid": (
        lambda b: b["panels"][2]["gridPos"].update(w=13),
        off_grid,
        "panel 3 'p3' is off the grid",
    ),
    "a row is not a full line": (
        lambda b: b["panels"][0]["gridPos"].update(h=2),
        off_grid,
        "row 1 'r1' is not one full-width line",
    ),
    "a target has no refId": (
        lambda b: b["panels"][1]["targets"][0].pop("refId"),
        bad_targets,
        "panel 2 'p2' target 0 has no refId",
    ),
    "two targets share a refId": (
        lambda b: b["panels"][1]["targets"].append(dict(b["panels"][1]["targets"][0])),
        bad_targets,
        "panel 2 'p2' target A: refId used twice",
    ),
    "a datasource is named bare": (
        lambda b: b["panels"][1]["targets"][0].update(datasource="Prometheus"),
        bad_targets,
        "panel 2 'p2' target A names its datasource bare ('Prometheus')",
    ),
    "a target has no datasource": (
        lambda b: [
            b["panels"][1].pop("datasource"),
            b["panels"][1]["targets"][0].pop("datasource"),
        ],
        bad_targets,
        "panel 2 'p2' target A has no datasource",
    ),
    "a panel has no targets": (
        lambda b: inner(b, 4)[0].pop("targets"),
        bad_targets,
        "panel 9 'p9' has no targets",
    ),
    "a query uses an undefined variable": (
        lambda b: inner(b, 3)[1]["targets"][0].update(expr='up{location=~"${location:regex}"}'),
        undefined_variables,
        "panels[3].panels[1].targets[0].expr uses $location",
    ),
    "a title uses an undefined variable": (
        lambda b: b["panels"][3].update(title="Journey $journy"),
        undefined_variables,
        "panels[3].title uses $journy",
    ),
    "the old [[variable]] syntax": (
        lambda b: b["panels"][1].update(title="[[channel]]"),
        legacy_variable_syntax,
        "panels[1].title uses the deprecated [[channel]]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_check_bites(case: str) -> None:
    change, check, problem = BAD[case]
    problems = check(broken(change))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"good: {problem}"), problems


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/d/nope/nope?var-channel=app", "no dashboard has uid 'nope'"),
        ("/d/good/good?var-chanel=app", "good has no variable 'chanel'"),
        ("/d/good/good?var-channel=ap", "channel='ap' is none of ['app']"),
        ("/d/good/good?channel=app", "unknown parameter 'channel'"),
        ("/d/good/good?${channel}", "unknown parameter '${channel}'"),
        ("https://grafana.example.com/sub/d/nope/x", "no dashboard has uid 'nope'"),
    ],
)
def test_a_link_that_lands_nowhere_is_found(url: str, problem: str) -> None:
    bad = broken(lambda b: b["links"].__setitem__(0, {"type": "link", "title": "x", "url": url}))
    problems = broken_links(bad, {"good": GOOD}, known={"channel": frozenset({"app"})})
    assert len(problems) == 1, problems
    assert problem in problems[0], problems


def test_data_links_in_field_configs_are_checked() -> None:
    def add(bad: Board) -> None:
        bad["panels"][1]["fieldConfig"] = {
            "defaults": {"links": [{"title": "a", "url": "/d/a/a"}]},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "x"},
                    "properties": [{"id": "links", "value": [{"title": "b", "url": "/d/b/b"}]}],
                }
            ],
        }

    problems = broken_links(broken(add), {"good": GOOD})
    assert [p.split(": /d/")[0] for p in problems] == [
        "good: panels[1].fieldConfig.defaults.links[0]",
        "good: panels[1].fieldConfig.overrides[0].properties[0].value[0]",
    ]


def test_a_dashboards_link_needs_a_dashboard_with_its_tags() -> None:
    bad = broken(lambda b: b["links"][1].update(tags=["carewatch", "nothing"]))
    assert broken_links(bad, {"good": GOOD}) == [
        "good: links[1]: no dashboard has all the tags ['carewatch', 'nothing']"
    ]


def test_links_to_elsewhere_are_left_alone() -> None:
    for url in (
        "https://runbooks.example.com/app",
        "/alerting/list",
        "/d/good/good",
        "/d/good/good?var-channel=app&${__url_time_range}&$__all_variables",
    ):
        assert link_problems(url, {"good": GOOD}) == []


def test_the_checks_examples_hold() -> None:
    failed, tried = doctest.testmod(grafana, optionflags=doctest.ELLIPSIS)
    assert (failed, tried > 0) == (0, True)


def test_substitute_gives_grafanas_forms() -> None:
    values = {"c": ["a.b", "x"], "one": "v"}
    assert grafana.substitute(
        "$c ${c} ${c:regex} ${c:pipe} ${c:csv} $one ${one:regex}", values
    ) == (r"(a\.b|x) (a\.b|x) (a\.b|x) a.b|x a.b,x v v")
    assert grafana.substitute("[$__rate_interval] $__range ${__interval}", {}) == "[1m] 21600s 15s"
    assert grafana.substitute('label_replace(up, "a", "$1", "b", "(.*)")', {}) == (
        'label_replace(up, "a", "$1", "b", "(.*)")'
    )
    with pytest.raises(KeyError, match="missing"):
        grafana.substitute("$missing", values)
    with pytest.raises(KeyError, match="__nope"):
        grafana.substitute("$__nope", values)
    with pytest.raises(ValueError, match="nope"):
        grafana.substitute("${c:nope}", values)
    assert json.dumps(GOOD)  # the examples are JSON, as the generator's are
