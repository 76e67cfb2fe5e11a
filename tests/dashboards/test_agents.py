"""The agents' dashboard: every series of the agents themselves is read from the job checks.yaml
names (``alerting.job``) and given its location through ``carewatch_build_info``."""

from __future__ import annotations

from dashboards import agents
from probes import Config, metrics


def test_the_agents_own_series_are_read_from_the_configured_job(two_locations: Config) -> None:
    board = agents(two_locations)
    own = [
        t["expr"]
        for p in board["panels"]
        for t in p.get("targets", [])
        if metrics.JOURNEY_RUNS.name not in t["expr"]
        and metrics.JOURNEY_SKIPPED.name not in t["expr"]
    ]
    assert own
    for expr in own:
        assert 'job="care-agents"' in expr, expr
        assert "group_left (location)" in expr, expr
        assert metrics.BUILD_INFO in expr, expr


def test_it_has_a_panel_for_each_sign_of_an_agent_s_health(demo: Config) -> None:
    titles = [p["title"] for p in agents(demo)["panels"]]
    assert titles == [
        "Agents up",
        "Scheduler lateness (p99)",
        "Runs per second",
        "Runs skipped",
        "Config reload",
        "Last good config",
        "Callback events by result",
        "Memory (resident)",
        "CPU",
    ]
