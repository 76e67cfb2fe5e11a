"""What an alert says: its ``summary``, a ``description`` that names the failing step, and
its ``runbook_url`` and ``dashboard_url``.

Each text is a function of its slots. The alert rules fill the slots with Prometheus template
snippets (``TEMPLATE``), read when the alert fires; the promtool tests fill them with the values
those snippets give for the test's series, so the tests check the very words a person reads.
The failing step, its reason and its message come from a template ``query`` of
``carewatch_step_failure_info``, so a page says ``step login: expected status 200, got 503
(reason http_status)`` rather than "probe failed":

>>> Slots(value="3", location="paris", step="step login: expected status 200, got 503 "
...       "(reason http_status)").location
'paris'
>>> dashboard_url("http://grafana:3000/", "app", "login")
'http://grafana:3000/d/carewatch-journey/carewatch-journey?var-channel=app&var-journey=login'
>>> dashboard_url("http://grafana:3000", "app")
'http://grafana:3000/d/carewatch-overview/carewatch-overview?var-channel=app'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode

from alerts import names
from probes import Channel, Journey, metrics

Text = tuple[str, str]  # (summary, description)

#: How a failed step reads, from the labels of its ``carewatch_step_failure_info`` series.
_STEP: Final = (
    "step {{ .Labels.step }}{{ with .Labels.message }}: {{ . }}{{ end }}"
    " (reason {{ .Labels.reason }})"
)
NO_STEP: Final = "no failed step reported"


def step_text(step: str, reason: str, message: str = "") -> str:
    """What ``failed_step_*`` print for one ``carewatch_step_failure_info`` series."""
    return f"step {step}{': ' + message if message else ''} (reason {reason})"


def failed_step_at_location(channel: str, journey: str) -> str:
    """A template: the step that failed the journey's last run at the alert's ``location``."""
    query = (
        f'printf "{metrics.STEP_FAILURE_INFO.name}{{channel=%q,journey=%q,location=%q}}"'
        f' "{channel}" "{journey}" $labels.location | query'
    )
    return (
        f"{{{{ with {query} }}}}{{{{ with first . }}}}{_STEP}{{{{ end }}}}"
        f"{{{{ else }}}}{NO_STEP}{{{{ end }}}}"
    )


def failed_step_anywhere(channel: str, journey: str) -> str:
    """A template: the step that failed the journey's last run at the first location (by name)
    that has one, and that location: ``step login: ... (reason http_status) at paris``."""
    query = (
        f'printf "{metrics.STEP_FAILURE_INFO.name}{{channel=%q,journey=%q}}"'
        f' "{channel}" "{journey}" | query | sortByLabel "location"'
    )
    return (
        f"{{{{ with {query} }}}}{{{{ with first . }}}}{_STEP} at {{{{ .Labels.location }}}}"
        f"{{{{ end }}}}{{{{ else }}}}{NO_STEP}{{{{ end }}}}"
    )


@dataclass(frozen=True, slots=True)
class Slots:
    """What varies between two firings of one rule: the alert's value (as the text shows it,
    formatted or not), its labels, and the failed steps of its journeys."""

    value: str = "{{ $value }}"
    location: str = "{{ $labels.location }}"
    instance: str = "{{ $labels.instance }}"
    at: str = "{{ with $labels.location }} at {{ . }}{{ end }}"  # an agent's, when known
    step: str = ""  # the failed step at the location, or the certificate's step
    cert_step: str = "{{ $labels.step }}"
    callback: str = "{{ $labels.callback }}"
    anywhere: Mapping[str, str] = field(default_factory=dict)  # journey -> its failed step


#: The slots of a rule: Prometheus fills them in when the alert fires.
TEMPLATE: Final = Slots()
PERCENT: Final = "{{ $value | humanizePercentage }}"
DURATION: Final = "{{ $value | humanizeDuration }}"


def _locations(n: int) -> str:
    return f"{n} location{'s' if n > 1 else ''}"


def journey_down(journey: Journey, s: Slots) -> Text:
    policy = journey.alert
    return (
        f"{journey.id} is down at {s.location}",
        f"{s.step}; its last {s.value} runs failed at {s.location} (down: "
        f"{policy.failed_runs} failed runs in a row at "
        f"{_locations(policy.min_failed_locations)} or more).",
    )


def journey_degraded(journey: Journey, s: Slots) -> Text:
    return (
        f"{journey.id} fails at {s.location} only",
        f"{s.step}; its last {s.value} runs failed at {s.location}, but at fewer than "
        f"{_locations(journey.alert.min_failed_locations)}: a ticket, not a page.",
    )


def channel_down(channel: Channel, s: Slots) -> Text:
    n = len(channel.journeys)
    return (
        f"channel {channel.name} is down: all of its {n} journey{'s' if n > 1 else ''} fail",
        "; ".join(f"{j.name}: {s.anywhere[j.name]}" for j in channel.journeys) + ".",
    )


def burn_rate(journey: Journey, sli: names.Sli, paces: str, s: Slots) -> Text:
    """``paces``: how fast the budget goes, in words (``alerts.rules.paces``)."""
    if sli == names.AVAILABILITY:
        bad = "of runs failed"
        objective = f"{journey.slo.availability:g} % of runs must succeed"
    else:
        threshold = f"{journey.slo.latency_threshold:g}s"
        bad = f"of successful runs took more than {threshold}"
        objective = f"{journey.slo.latency_target:g} % must take {threshold} or less"
    return (
        f"{journey.id}: the {sli} SLO is burning its error budget too fast",
        f"{s.value} {bad} lately ({objective}): {paces}. Last failure: {s.anywhere[journey.name]}.",
    )


def certificate_soon(journey: Journey, days: int, s: Slots) -> Text:
    return (
        f"{journey.id}: the certificate of step {s.cert_step} expires in {s.value}",
        f"The server of step {s.cert_step} presents a certificate that expires in {s.value}, "
        f"under {days} days (seen from {s.location}): renew it.",
    )


def certificate_expired(journey: Journey, s: Slots) -> Text:
    return (
        f"{journey.id}: the certificate of step {s.cert_step} has expired",
        f"The server of step {s.cert_step} presented a certificate that expired {s.value} ago "
        f"(seen from {s.location}).",
    )


def journey_stale(journey: Journey, intervals: int, s: Slots) -> Text:
    return (
        f"{journey.id} has not run at {s.location} for {s.value}",
        f"It runs every {journey.interval:g}s and its channel has been open for {intervals} "
        f"intervals, yet its last run started {s.value} ago: the agent's scheduler looks stuck.",
    )


def prober_down(job: str, s: Slots) -> Text:
    return (
        f"carewatch agent {s.instance}{s.at} is not scraped",
        f"Prometheus cannot scrape {s.instance} (job {job}): the agent is down or unreachable, "
        "so nothing it probes can alert. The other alerts of its location are muted until it "
        "is back.",
    )


def prober_absent(job: str) -> Text:
    return (
        f"no carewatch agent of job {job} is scraped",
        f"Prometheus has no target of job {job} at all: every agent is gone from its scrape "
        "configuration (or from service discovery), so nothing can alert.",
    )


def config_reload_failed(s: Slots) -> Text:
    return (
        f"carewatch agent {s.instance}{s.at} could not reload checks.yaml",
        "The last reload of checks.yaml failed: the agent keeps probing with "
        "the last good configuration. `carewatch check` shows the problems.",
    )


def callback_rejections(flood: int, over: str, s: Slots) -> Text:
    return (
        f"carewatch agent {s.instance}{s.at} rejects callbacks on /callbacks/{s.callback}",
        f"More than {flood} callbacks to /callbacks/{s.callback} were rejected in {over} "
        "(bad signature or token, or too large): a provider's secret changed, or someone is "
        "forging callbacks.",
    )


def dashboard_url(base: str, channel: str | None = None, journey: str | None = None) -> str:
    """The generated dashboard of a journey, or the overview (of a channel, or of all), with
    the Grafana variables set; the next issue generates dashboards with exactly these uids."""
    base = base.rstrip("/")
    if journey is not None and channel is not None:
        query = urlencode({"var-channel": channel, "var-journey": journey})
        return f"{base}{names.JOURNEY_DASHBOARD}?{query}"
    if channel is not None:
        return f"{base}{names.OVERVIEW_DASHBOARD}?{urlencode({'var-channel': channel})}"
    return f"{base}{names.OVERVIEW_DASHBOARD}"


def links(channel: Channel | None, dashboard: str) -> dict[str, str]:
    """``runbook_url`` (the channel's; left out when it has none) and ``dashboard_url``."""
    found = {"dashboard_url": dashboard}
    if channel is not None and channel.runbook_url:
        found["runbook_url"] = channel.runbook_url
    return found


def annotate(text: Text, found_links: Mapping[str, str]) -> dict[str, str]:
    """An alert's annotations: summary, description, then its links."""
    summary, description = text
    return {"summary": summary, "description": description, **found_links}
