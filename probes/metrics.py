"""The metric contract: every name, type, label set and help text carewatch publishes.

Alerts and dashboards are generated from these names, so treat them as a public API. This
module is pure data, and the pure functions that make label values (``message_label``);
``probes.service.exposition`` renders the journey series and ``probes.service.agent`` the
agent's own metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client.utils import floatToGoString

from probes.model.config import TOLERATING_FACTOR, Journey

Kind = Literal["gauge", "counter", "histogram"]

JOURNEY: Final = ("channel", "journey", "location")
STEP: Final = ("channel", "journey", "step", "location")
DEFINITION: Final = ("channel", "journey")


@dataclass(frozen=True, slots=True, eq=False)
class Family:
    """One metric family: its name, type, labels and help.

    Each family is one module-level object, compared and hashed by identity: the exposition
    keys every journey's lines by family on each result, and a field-by-field hash there cost
    more than the lines themselves.
    """

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str

    def header(self) -> str:
        """The ``# HELP`` and ``# TYPE`` lines that open the family in text format."""
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"


# Journey results, per location.
JOURNEY_UP: Final = Family(
    "carewatch_journey_up",
    "gauge",
    JOURNEY,
    "1 if the journey's last run succeeded (after retries), 0 if it failed.",
)
JOURNEY_RUNS: Final = Family(
    "carewatch_journey_runs_total",
    "counter",
    (*JOURNEY, "result"),
    "Journey runs after retries, by result (success or failure).",
)
JOURNEY_DURATION: Final = Family(
    "carewatch_journey_duration_seconds",
    "histogram",
    JOURNEY,
    "Duration of successful journey runs, from the first step's request to the last step's "
    "last byte (finally steps excluded).",
)
JOURNEY_CONSECUTIVE_FAILURES: Final = Family(
    "carewatch_journey_consecutive_failures",
    "gauge",
    JOURNEY,
    "Runs in a row (after retries) that failed, ending with the last run; 0 after a success "
    "and before the first run.",
)
JOURNEY_LAST_RUN: Final = Family(
    "carewatch_journey_last_run_timestamp_seconds",
    "gauge",
    JOURNEY,
    "Unix time at which the journey's last run started.",
)
JOURNEY_APDEX: Final = Family(
    "carewatch_journey_apdex_total",
    "counter",
    (*JOURNEY, "zone"),
    "Journey runs by Apdex zone: satisfied (<= T), tolerating (<= 4T), frustrated (slower, "
    "or failed).",
)
JOURNEY_EXPERIENCE: Final = Family(
    "carewatch_journey_experience_seconds",
    "gauge",
    (*JOURNEY, "network"),
    "Estimated duration of the last successful run on each network profile (wifi, 4g, 3g, "
    "custom), from its observed round trips, connections and bytes; see docs/experience.md.",
)
JOURNEY_RETRIES: Final = Family(
    "carewatch_journey_retries_total",
    "counter",
    JOURNEY,
    "Extra attempts made because an attempt failed; rising retries hide flakiness behind up=1.",
)
JOURNEY_SKIPPED: Final = Family(
    "carewatch_journey_skipped_runs_total",
    "counter",
    JOURNEY,
    "Scheduled runs not started because the journey's previous run was still going.",
)

# Journey definitions, from checks.yaml.
JOURNEY_INFO: Final = Family(
    "carewatch_journey_info",
    "gauge",
    ("channel", "journey", "kind", "team"),
    "Always 1: the journey's channel kind and owning team, for joins.",
)
JOURNEY_SLO_OBJECTIVE: Final = Family(
    "carewatch_journey_slo_objective_ratio",
    "gauge",
    DEFINITION,
    "Availability objective of the journey, as a ratio (99.9 % is 0.999).",
)
JOURNEY_SLO_LATENCY_THRESHOLD: Final = Family(
    "carewatch_journey_slo_latency_threshold_seconds",
    "gauge",
    DEFINITION,
    "Latency threshold of the journey's latency objective; also a bucket of its histogram.",
)
JOURNEY_SLO_LATENCY_OBJECTIVE: Final = Family(
    "carewatch_journey_slo_latency_objective_ratio",
    "gauge",
    DEFINITION,
    "Share of successful runs that must finish within the latency threshold, as a ratio.",
)
JOURNEY_APDEX_THRESHOLD: Final = Family(
    "carewatch_journey_apdex_threshold_seconds",
    "gauge",
    DEFINITION,
    "Apdex T of the journey; T and 4T are buckets of its histogram.",
)
JOURNEY_INTERVAL: Final = Family(
    "carewatch_journey_interval_seconds", "gauge", DEFINITION, "How often the journey runs."
)

# Steps of the last run, per location.
STEP_UP: Final = Family(
    "carewatch_step_up",
    "gauge",
    STEP,
    "1 if the step passed in the journey's last run, 0 if it failed; absent if not reached.",
)
STEP_DURATION: Final = Family(
    "carewatch_step_duration_seconds",
    "gauge",
    (*STEP, "phase"),
    "Time the step spent in each phase in the last run: dns, connect, tls (when measured "
    "apart), wait (to first byte), receive, first_reply (chat), delivery (callbacks), total.",
)
STEP_FAILURES: Final = Family(
    "carewatch_step_failures_total",
    "counter",
    (*STEP, "reason"),
    "Step failures by reason, counting every attempt, retries included.",
)
STEP_FAILURE_INFO: Final = Family(
    "carewatch_step_failure_info",
    "gauge",
    (*STEP, "reason", "message"),
    "1 for the step that failed the journey's last run, with its reason and its message "
    "(ids, timestamps and long numbers replaced by placeholders); absent otherwise.",
)
STEP_STATUS: Final = Family(
    "carewatch_step_http_status_code",
    "gauge",
    STEP,
    "HTTP status of the step's last response; 0 when no response arrived.",
)
STEP_TLS_EXPIRY: Final = Family(
    "carewatch_step_tls_cert_expiry_timestamp_seconds",
    "gauge",
    STEP,
    "Unix time at which the certificate the step's server presented in the last run expires "
    "(also when it was rejected); absent when the step used no TLS.",
)

#: The journey families, in the order they are exposed.
JOURNEY_FAMILIES: Final = (
    JOURNEY_UP,
    JOURNEY_CONSECUTIVE_FAILURES,
    JOURNEY_RUNS,
    JOURNEY_DURATION,
    JOURNEY_LAST_RUN,
    JOURNEY_APDEX,
    JOURNEY_EXPERIENCE,
    JOURNEY_RETRIES,
    JOURNEY_SKIPPED,
    STEP_UP,
    STEP_DURATION,
    STEP_FAILURES,
    STEP_FAILURE_INFO,
    STEP_STATUS,
    STEP_TLS_EXPIRY,
)
CHANNEL_OPEN: Final = Family(
    "carewatch_channel_open",
    "gauge",
    ("channel",),
    "1 while the channel is open by its opening hours (always, without hours), else 0; "
    "its journeys do not run while it is closed, and SLO maths leave closed time out.",
)
DEFINITION_FAMILIES: Final = (
    JOURNEY_INFO,
    JOURNEY_SLO_OBJECTIVE,
    JOURNEY_SLO_LATENCY_THRESHOLD,
    JOURNEY_SLO_LATENCY_OBJECTIVE,
    JOURNEY_APDEX_THRESHOLD,
    JOURNEY_INTERVAL,
)

# The agent itself (rendered by prometheus-client).
SCHEDULER_LATENESS: Final = "carewatch_scheduler_lateness_seconds"
SCHEDULER_RUNNING: Final = "carewatch_scheduler_running_runs"
SCHEDULER_JOURNEYS: Final = "carewatch_scheduler_journeys"
CONFIG_RELOAD_SUCCESSFUL: Final = "carewatch_config_last_reload_successful"
CONFIG_RELOAD_TIMESTAMP: Final = "carewatch_config_last_reload_success_timestamp_seconds"
BUILD_INFO: Final = "carewatch_build_info"
#: The labels of BUILD_INFO: the agent's location is there so that an alert on a dead agent
#: (``up == 0``) can join where it was (``last_over_time(carewatch_build_info[1h])``).
BUILD_INFO_LABELS: Final = ("version", "location")
CALLBACK_EVENTS: Final = Family(
    "carewatch_callback_events_total",
    "counter",
    ("callback", "result"),
    "Inbound callback events by result: matched (a waiting run took it), unmatched (no run "
    "took it before it expired), rejected (bad signature or token, or too large).",
)
LATENESS_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

#: Journey-duration buckets suited to mobile journeys; each journey adds its own thresholds.
DURATION_BUCKETS: Final = (
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
)


def duration_buckets(journey: Journey) -> tuple[float, ...]:
    """The journey's histogram bounds: DURATION_BUCKETS plus its latency threshold, T and 4T,
    so SLO and Apdex maths read exact buckets instead of interpolating."""
    own = {journey.slo.latency_threshold, journey.apdex_t, journey.apdex_t * TOLERATING_FACTOR}
    return tuple(sorted(set(DURATION_BUCKETS) | own))


def format_le(bound: float) -> str:
    """The ``le`` label value of a bucket, as exposed: ``format_le(2) == "2.0"``."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


#: The longest ``message`` label value, ellipsis included.
MESSAGE_LABEL_CHARS: Final = 160
ELLIPSIS: Final = "…"
_HEX: Final = "[0-9A-Fa-f]"
#: What varies from run to run inside a failure message, and its placeholder, in the order
#: applied: a UUID's groups would otherwise read as hex or numbers, a timestamp's as numbers.
_VARYING: Final = (
    # A UUID, or the start of one that a message cut short ("$.ticket == '5f0c3a2e-9b1d-4c…'").
    (
        re.compile(
            rf"(?<!{_HEX}){_HEX}{{8}}(?:-{_HEX}{{1,4}}){{1,3}}(?:-{_HEX}{{1,12}})?(?!{_HEX})"
        ),
        "<uuid>",
    ),
    (
        # ISO-8601 dates, with their time (also cut short after the T) and zone when given,
        # and bare times of day (as in an HTTP date): all change from run to run.
        re.compile(
            r"(?<!\d)(?:\d{4}-\d{2}-\d{2}(?:T\d[\d:]*(?:\.\d*|,\d+)?|"
            r" \d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
            r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)(?:Z|[+-]\d{2}(?::?\d{2})?)?(?!\d)"
        ),
        "<time>",
    ),
    # 16+ hex digits, letters or not: a token that happens to be all digits still reads the
    # same as its siblings (a number that long, such as epoch nanoseconds, reads as hex).
    (re.compile(rf"(?<!{_HEX}){_HEX}{{16,}}(?!{_HEX})"), "<hex>"),
    # A measured duration ("took 2.345s, expected at most 2s"): the limit stays, the
    # measurement would make a series per slow run.
    (re.compile(r"\b(took )\d+(?:\.\d+)?(?:ms|s)\b"), r"\1<duration>"),
)
#: A number, its fraction included; replaced when it has NUMBER_DIGITS digits or more.
_NUMBER: Final = re.compile(r"(?<!\d)\d+(?:\.\d+)?")
NUMBER_DIGITS: Final = 6
_SPACE: Final = re.compile(r"\s+")


def _number(match: re.Match[str]) -> str:
    number = match.group()
    return "<n>" if len(number) - number.count(".") >= NUMBER_DIGITS else number


def message_label(text: str) -> str:
    r"""A failure message as the ``message`` label of STEP_FAILURE_INFO: the same value on
    every run that fails the same way, so that a message never makes a new series per run.

    UUIDs (also cut short), runs of 16+ hex digits, ISO-8601 timestamps (and times of day),
    a duration after "took", and numbers of 6+ digits (fraction included) become ``<uuid>``,
    ``<hex>``, ``<time>``, ``<duration>`` and ``<n>``; whitespace collapses to one space; and
    the value is cut to MESSAGE_LABEL_CHARS, ending with an ellipsis when cut. Status codes,
    ports and configured durations stay as they are (docs/metrics.md, "The message label"):

    >>> message_label("expected status 200, got 503")
    'expected status 200, got 503'
    >>> message_label("cannot connect to 127.0.0.1:8900: [Errno 111] Connection refused")
    'cannot connect to 127.0.0.1:8900: [Errno 111] Connection refused'
    >>> message_label("$.ticket: expected '5f0c3a2e-9b1d-4c7e-8a6f-0e2d4b6c8a1f', got null")
    "$.ticket: expected '<uuid>', got null"
    >>> message_label("no push callback matching $.ticket == '5f0c3a2e-9b1d-4c…' within 30s")
    "no push callback matching $.ticket == '<uuid>…' within 30s"
    >>> message_label("session 9f86d081884c7d659a2feaa0c55ad015 ended 2024-05-01T10:20:30.123Z")
    'session <hex> ended <time>'
    >>> message_label("order 1714557630.25 refused:\n  2097152 bytes")
    'order <n> refused: <n> bytes'
    >>> message_label("took 2.345s, expected at most 2s")
    'took <duration>, expected at most 2s'
    >>> label = message_label("x" * 500)
    >>> len(label), label[-3:]
    (160, 'xx…')
    """
    label = _SPACE.sub(" ", text).strip()
    for pattern, placeholder in _VARYING:
        label = pattern.sub(placeholder, label)
    label = _NUMBER.sub(_number, label)
    if len(label) > MESSAGE_LABEL_CHARS:
        label = label[: MESSAGE_LABEL_CHARS - 1].rstrip() + ELLIPSIS
    return label
