"""The drill-down, "Care journeys": one row per journey, repeated for the ``journey`` variable.

Alerts about a journey link here with its channel and journey set
(``alerts.names.JOURNEY_DASHBOARD``). Each row shows the journey's duration quantiles by location
against its latency threshold and Apdex T, its steps' latency by phase, step failures by reason,
status codes, certificates' days left, the SMS, push and email round trips, the chat bot's
first reply, and the experience estimate by network. The thresholds drawn are the journey's own,
from checks.yaml, read from the definition series the exporter publishes (its latency threshold
and Apdex T), so that each repeat of the row draws its own journey's. docs/dashboards.md#journey.
"""

from __future__ import annotations

from typing import Final

from alerts import rules
from dashboards import grafana as gf
from dashboards import queries as q
from dashboards.grafana import Json, Query, Threshold
from probes import metrics

UID: Final = "carewatch-journey"
TITLE: Final = "Care journeys"
#: The variables every query of a row filters by.
SCOPE: Final = ("channel", "journey", "location")
#: The phases a step's latency is split into, in the order they happen.
PHASES: Final = ("dns", "connect", "tls", "wait", "receive")
DAY: Final = 86400
LATENCY_THRESHOLD: Final = "latency threshold (SLO)"
APDEX_T: Final = "Apdex T"


def journey() -> Json:
    """The drill-down dashboard: the same for every config, its rows made by the variables."""
    return gf.dashboard(
        uid=UID,
        title=TITLE,
        description=(
            "One row per journey: how long it takes and where the time goes, which step fails "
            "and why, status codes, certificates, round trips and the experience on a phone."
        ),
        items=[
            gf.Row(
                "$channel / $journey",
                [
                    durations(),
                    phases(),
                    failures(),
                    status_codes(),
                    certificates(),
                    deliveries(),
                    first_replies(),
                    experience(),
                ],
                repeat="journey",
            )
        ],
        variables=[
            gf.datasource_variable(),
            gf.query_variable(
                "channel", "Channel", f"label_values({metrics.JOURNEY_INFO.name}, channel)"
            ),
            gf.query_variable(
                "journey",
                "Journey",
                f'label_values({metrics.JOURNEY_INFO.name}{{channel=~"$channel"}}, journey)',
            ),
            gf.query_variable(
                "location",
                "Location",
                f"label_values({metrics.JOURNEY_UP.name}"
                '{channel=~"$channel",journey=~"$journey"}, location)',
            ),
        ],
        time_from="3h",
        links=[gf.url_link("Overview", "/d/carewatch-overview/carewatch-overview")],
    )


def _definition(metric: str, legend: str) -> Query:
    """A threshold from checks.yaml, as the exporter publishes it, drawn as a dashed line."""
    return Query(f"max({q.by_variables(metric, 'channel', 'journey')})", legend)


def _dashed(legend: str, color: str) -> Json:
    return gf.override(
        f"^{legend.replace('(', '[(]').replace(')', '[)]')}$",
        **{
            "custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
            "custom.fillOpacity": 0,
            "color": {"mode": "fixed", "fixedColor": color},
        },
    )


def _step(metric: str, phase: str | None = None) -> str:
    """``metric`` of the row's journey at the locations chosen (in one ``phase``)."""
    if phase is None:
        return q.by_variables(metric, *SCOPE)
    return q.by_variables(metric, *SCOPE, phase=phase)


def durations() -> gf.Panel:
    """p50, p95 and p99 of successful runs by location, against the latency threshold."""
    return gf.timeseries(
        "Journey duration",
        [
            *(
                Query(
                    q.duration_quantile(p, "location", *SCOPE),
                    f"p{round(p * 100)} @ {{{{location}}}}",
                )
                for p in (0.5, 0.95, 0.99)
            ),
            _definition(metrics.JOURNEY_SLO_LATENCY_THRESHOLD.name, LATENCY_THRESHOLD),
            _definition(metrics.JOURNEY_APDEX_THRESHOLD.name, APDEX_T),
        ],
        unit="s",
        overrides=[_dashed(LATENCY_THRESHOLD, gf.RED), _dashed(APDEX_T, gf.YELLOW)],
        description=(
            "Quantiles of successful runs' duration at each location, from the histogram. "
            "Dashed: the journey's latency_threshold (its latency SLO) and apdex_t."
        ),
        width=12,
    )


def phases() -> gf.Panel:
    """Each step's mean time in each phase over the range, stacked: a waterfall of the run."""
    selector = q.by_variables(metrics.STEP_DURATION.name, *SCOPE, regex={"phase": "|".join(PHASES)})
    return gf.bar_chart(
        "Step latency by phase",
        [
            Query(
                f"avg by (step, phase) (avg_over_time({selector}[$__range]))",
                instant=True,
                table=True,
            )
        ],
        unit="s",
        x_field="Step",
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "columnField": "phase",
                    "rowField": "step",
                    "valueField": "Value",
                    "emptyValue": "zero",
                },
            },
            {
                "id": "organize",
                "options": {
                    "renameByName": {"step\\phase": "Step"},
                    "indexByName": {"step\\phase": 0, **{p: i + 1 for i, p in enumerate(PHASES)}},
                },
            },
        ],
        description=(
            "Where each step's time goes, on average over the range at the locations chosen: "
            "dns, connect, tls (when measured apart), wait (to the first byte) and receive."
        ),
        width=12,
    )


def failures() -> gf.Panel:
    """Step failures by reason, every attempt counted (retries included)."""
    failed = _step(metrics.STEP_FAILURES.name)
    return gf.timeseries(
        "Step failures by reason",
        [
            Query(
                f"sum by (step, reason) (increase({failed}[$__rate_interval]))",
                "{{step}}: {{reason}}",
            )
        ],
        unit="short",
        bars=True,
        stacked=True,
        min=0,
        no_value="No step failed",
        description="Failed attempts of each step by reason (docs/results.md), retries included.",
        width=8,
    )


def status_codes() -> gf.Panel:
    """Each step's last status code (HTTP, the WebSocket handshake's 101, SMTP's reply code),
    coloured by class; ``no response`` for a step that failed before any answer."""
    status = _step(metrics.STEP_STATUS.name)
    failed = f"{_step(metrics.STEP_UP.name)} == 0"
    # 0 is also what a step that never gets a response (an await step) publishes: shown only
    # when the step failed, so that a passing callback step does not read "no response"
    return gf.state_timeline(
        "Status codes",
        [
            Query(
                f"max by (step, location) (\n  ({status} > 0)\n  or\n"
                f"  ({status} and on (channel, journey, step, location) ({failed}))\n)",
                "{{step}} @ {{location}}",
            )
        ],
        mappings=[
            gf.value_text(0, "no response", gf.RED),
            gf.range_color(100, 299, gf.GREEN),
            gf.range_color(300, 399, gf.BLUE, 1),
            gf.range_color(400, 499, gf.ORANGE, 2),
            gf.range_color(500, 599, gf.RED, 3),
        ],
        no_value="No status code in this journey",
        description="The status of each step's last response: HTTP's, 101 for a WebSocket "
        "handshake, the SMTP server's reply code; no response (0) when the step failed before "
        "an answer.",
        width=8,
        show_value=True,
    )


def certificates() -> gf.Panel:
    """Time left on the certificate each TLS step's server presented."""
    expiry = _step(metrics.STEP_TLS_EXPIRY.name)
    return gf.bar_gauge(
        "TLS certificates: time left",
        [
            Query(
                f"min by (step, location) ({expiry}) - time()",
                "{{step}} @ {{location}}",
                instant=True,
            )
        ],
        unit="dtdurations",
        steps=gf.thresholds(
            Threshold(gf.RED),
            Threshold(gf.ORANGE, rules.CERTIFICATE_PAGE_DAYS * DAY),
            Threshold(gf.GREEN, rules.CERTIFICATE_TICKET_DAYS * DAY),
        ),
        no_value="No TLS step",
        description=(
            f"Orange under {rules.CERTIFICATE_TICKET_DAYS} days (a ticket), red under "
            f"{rules.CERTIFICATE_PAGE_DAYS} (a page), as the alerts judge it."
        ),
        width=8,
    )


def deliveries() -> gf.Panel:
    """How long the SMS, push or email round trip took to come back, per await step."""
    return _phase(
        "Round trips: SMS, push and email delivery",
        "delivery",
        no_value="No round trip in this journey",
        description="Time from the step that sent (an SMS, a push, an email) to the callback "
        "that answered it, in each run.",
    )


def first_replies() -> gf.Panel:
    """How long the chat bot took to answer first."""
    return _phase(
        "Chat bot: first reply",
        "first_reply",
        no_value="No chat in this journey",
        description="Time from the customer's first message to the bot's first reply.",
    )


def _phase(title: str, phase: str, *, no_value: str, description: str) -> gf.Panel:
    """One phase of the steps that have it, per step and location, in each run."""
    seconds = _step(metrics.STEP_DURATION.name, phase=phase)
    return gf.timeseries(
        title,
        [Query(f"max by (step, location) ({seconds})", "{{step}} @ {{location}}")],
        unit="s",
        no_value=no_value,
        description=description,
        width=8,
    )


def experience() -> gf.Panel:
    """The estimated duration of the last successful run on each network profile."""
    estimate = q.by_variables(metrics.JOURNEY_EXPERIENCE.name, *SCOPE)
    return gf.timeseries(
        "Experience on a phone, by network",
        [
            Query(f"max by (network) ({estimate})", "{{network}}"),
            _definition(metrics.JOURNEY_SLO_LATENCY_THRESHOLD.name, LATENCY_THRESHOLD),
        ],
        unit="s",
        overrides=[_dashed(LATENCY_THRESHOLD, gf.RED)],
        no_value="No estimate for this journey",
        description=(
            "What the last successful run would take on each network profile, from its "
            "observed round trips, connections and bytes (docs/experience.md). Journeys with "
            "WebSocket, await or SMTP steps have no estimate yet: those steps do not report "
            "their traffic."
        ),
        width=8,
    )
