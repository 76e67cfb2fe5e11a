"""The agents' dashboard, "carewatch agents": is the monitor itself healthy, per location?

``up``, scheduler lateness, runs per second and runs skipped, config reloads, callback events by
result, and the process's memory and CPU. The agent's own series carry no ``location``: each is
joined to the one ``carewatch_build_info`` of its target, which does (as the ProberDown alert
joins it). docs/dashboards.md#agents.
"""

from __future__ import annotations

from typing import Final

from alerts.promql import quote
from dashboards import grafana as gf
from dashboards import queries as q
from dashboards.grafana import Json, Query, Threshold
from probes import Config, metrics

UID: Final = "carewatch-agents"
TITLE: Final = "carewatch agents"
#: How far back an agent's location is remembered after it stopped answering.
LOCATION_MEMORY: Final = "1h"


def agents(config: Config) -> Json:
    """The agents' dashboard; ``config.alerting.job`` is the job Prometheus scrapes them as."""
    job = config.alerting.job
    return gf.dashboard(
        uid=UID,
        title=TITLE,
        description=(
            "The health of the probing agents themselves: a monitor that stops probing must "
            "never look green."
        ),
        items=[
            up(job),
            lateness(job),
            runs(),
            skipped(),
            reloads(job),
            last_reload(job),
            callbacks(job),
            memory(job),
            cpu(job),
        ],
        variables=[
            gf.datasource_variable(),
            gf.query_variable(
                "location", "Location", f"label_values({metrics.BUILD_INFO}, location)"
            ),
        ],
        time_from="3h",
    )


def located(expr: str, job: str) -> str:
    """``expr`` (a vector of the agents' own series) with each agent's ``location``, for the
    locations chosen."""
    info = f'{metrics.BUILD_INFO}{{job={quote(job)},location=~"$location"}}'
    return (
        f"{expr}\n* on (instance, job) group_left (location)\n"
        f"max by (instance, job, location) (last_over_time({info}[{LOCATION_MEMORY}]))"
    )


def up(job: str) -> gf.Panel:
    return gf.state_timeline(
        "Agents up",
        [
            Query(
                f"max by (location, instance) (\n{located(f'up{{job={quote(job)}}}', job)}\n)",
                "{{location}} ({{instance}})",
            )
        ],
        mappings=gf.mapping_values({1: ("up", gf.GREEN), 0: ("down", gf.RED)}),
        description="Whether Prometheus could scrape each agent. An agent that is down probes "
        "nothing: its journeys' series go stale and ProberDown pages.",
        width=12,
        height=6,
    )


def lateness(job: str) -> gf.Panel:
    bucket = f"{metrics.SCHEDULER_LATENESS}_bucket{{job={quote(job)}}}"
    return gf.timeseries(
        "Scheduler lateness (p99)",
        [
            Query(
                "histogram_quantile(0.99, sum by (location, le) (\n"
                f"{located(q.rate(bucket), job)}\n))",
                "{{location}}",
            )
        ],
        unit="s",
        steps=gf.thresholds(Threshold(gf.GREEN), Threshold(gf.ORANGE, 1), Threshold(gf.RED, 5)),
        threshold_style="line",
        description="How late runs start after their scheduled time; rising lateness means the "
        "agent is overloaded (CPU, event loop) and its durations are suspect.",
        width=12,
        height=6,
    )


def runs() -> gf.Panel:
    selector = q.by_variables(metrics.JOURNEY_RUNS.name, "location")
    return gf.timeseries(
        "Runs per second",
        [Query(f"sum by (location, result) ({q.rate(selector)})", "{{location}}: {{result}}")],
        unit="ops",
        stacked=True,
        description="Journey runs finished per second, after retries, by result.",
        width=8,
    )


def skipped() -> gf.Panel:
    selector = q.by_variables(metrics.JOURNEY_SKIPPED.name, "location")
    return gf.timeseries(
        "Runs skipped",
        [
            Query(
                f"sum by (location, channel, journey) (increase({selector}[$__rate_interval]))",
                "{{location}}: {{channel}} / {{journey}}",
            )
        ],
        unit="short",
        bars=True,
        min=0,
        description="Scheduled runs not started because the previous run was still going: "
        "the journey takes longer than its interval.",
        width=8,
    )


def reloads(job: str) -> gf.Panel:
    ok = f"{metrics.CONFIG_RELOAD_SUCCESSFUL}{{job={quote(job)}}}"
    return gf.stat(
        "Config reload",
        [Query(f"min by (location) (\n{located(ok, job)}\n)", "{{location}}", instant=True)],
        unit="none",
        mappings=gf.mapping_values(
            {1: ("✔ loaded", gf.GREEN), 0: ("✖ failed: old config running", gf.RED)}
        ),
        steps=gf.thresholds(Threshold(gf.GREY)),
        description="Whether each location's last config reload worked. After a failed one the "
        "agent keeps probing with the config it had (ConfigReloadFailed tickets).",
        width=4,
    )


def last_reload(job: str) -> gf.Panel:
    at = f"{metrics.CONFIG_RELOAD_TIMESTAMP}{{job={quote(job)}}}"
    return gf.stat(
        "Last good config",
        [Query(f"min by (location) (\n{located(at, job)}\n) * 1000", "{{location}}", instant=True)],
        unit="dateTimeFromNow",
        steps=gf.thresholds(Threshold(gf.BLUE)),
        description="When each location last loaded its config successfully.",
        width=4,
    )


def callbacks(job: str) -> gf.Panel:
    events = f"{metrics.CALLBACK_EVENTS.name}{{job={quote(job)}}}"
    return gf.timeseries(
        "Callback events by result",
        [
            Query(
                f"sum by (location, callback, result) (\n{located(q.rate(events), job)}\n)",
                "{{location}}: {{callback}} {{result}}",
            )
        ],
        unit="ops",
        no_value="No callback received",
        overrides=[
            gf.override(".*rejected$", color={"mode": "fixed", "fixedColor": gf.RED}),
            gf.override(".*unmatched$", color={"mode": "fixed", "fixedColor": gf.ORANGE}),
        ],
        description="Inbound SMS replies, push receipts and emails per second: matched by a "
        "waiting run, unmatched (none took it), or rejected (bad signature or token).",
        width=8,
    )


def memory(job: str) -> gf.Panel:
    resident = f"process_resident_memory_bytes{{job={quote(job)}}}"
    return gf.timeseries(
        "Memory (resident)",
        [Query(f"max by (location, instance) (\n{located(resident, job)}\n)", "{{location}}")],
        unit="bytes",
        description="Resident memory of each agent's process.",
        width=8,
    )


def cpu(job: str) -> gf.Panel:
    seconds = f"process_cpu_seconds_total{{job={quote(job)}}}"
    return gf.timeseries(
        "CPU",
        [
            Query(
                f"max by (location, instance) (\n{located(q.rate(seconds), job)}\n)",
                "{{location}}",
            )
        ],
        unit="percentunit",
        description="CPU used by each agent's process, as a share of one core.",
        width=8,
    )
