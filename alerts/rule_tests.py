"""promtool unit tests of the generated rules (rules.test.yaml), generated beside them.

For every alert of every journey, channel and agent: a healthy case, a still-pending case (the
condition not yet met: one failed run short, the long windows burning but not the short ones,
22 days of certificate left), a firing case with its exact labels and annotations (the
failing step, reason and message read by the template query included), a recovery case, and
the same condition while the channel is closed, which must not fire. The burn-rate cases are
built from per-window error ratios; the recording-rule cases from raw counters, with twenty
closed minutes that leave the error budget where it was.

Everything runs on Debian bookworm's promtool (Prometheus 2.42), which compares values
exactly: the checks round with ``round(..., 0.0001)`` and the expected values are rounded the
same way (``go_round``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from alerts import names, rules, slo
from alerts import texts as a
from alerts.promql import number, selector
from probes import Channel, Config, Journey, metrics

Test = dict[str, Any]
Alert = dict[str, Any]

INTERVAL: Final = 60  # seconds between two samples and two evaluations
#: What the checks round to (see the module's docstring).
PRECISION: Final = 0.0001
FAILURE_REASON: Final = "http_status"
FAILURE_MESSAGE: Final = "expected status 200, got 503"
VERSION: Final = "0.1.0"
PORT: Final = 9640


def rule_tests(config: Config, *, rule_file: str) -> dict[str, Any]:
    """The promtool test file for the rules of ``config`` written to ``rule_file``.

    One test per kind of alert covers every journey (or channel) at once: promtool evaluates
    every rule of the file at every step of every test, so a test per journey would make it
    take a minute.
    """
    tests = [
        merge(names.JOURNEY_DOWN, config, DOWN_OPEN, journey_down),
        merge(names.JOURNEY_DEGRADED, config, DOWN_OPEN, journey_degraded),
        merge(names.CHANNEL_DOWN, config, DOWN_OPEN, channel_down),
        merge(names.JOURNEY_STALE, config, DOWN_OPEN, journey_stale),
        merge("certificates", config, CERTIFICATE_OPEN, certificates),
        merge("burn rates", config, BURN_OPEN, burn_rates),
        merge("SLIs, error budget and closed hours", config, SLI_OPEN, slis),
        *agent_tests(config),
    ]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{INTERVAL}s",
        "tests": [test for test in tests if test is not None],
    }


@dataclass
class Part:
    """One journey's (or channel's) share of a test: its series, the alerts expected of it by
    (alertname, minute), and its checks of recorded series."""

    inputs: list[dict[str, str]] = field(default_factory=list)
    alerts: dict[tuple[str, int], list[Alert]] = field(default_factory=dict)
    exprs: list[dict[str, Any]] = field(default_factory=list)

    def expect(
        self, alertname: str, minutes: Iterable[int], found: Mapping[int, list[Alert]]
    ) -> None:
        for minute in minutes:
            self.alerts.setdefault((alertname, minute), []).extend(found.get(minute, []))


Builder = Callable[[Config, Channel], list[Part]]


def merge(name: str, config: Config, open_samples: Sequence[int], builder: Builder) -> Test | None:
    """One test of every channel's parts, the channels open (1) or closed (0) minute by
    minute as ``open_samples`` says; None when no channel has such a part."""
    parts = [part for channel in config.channels for part in builder(config, channel)]
    if not parts:
        return None
    inputs = [series for part in parts for series in part.inputs]
    for channel in config.channels:
        inputs += channel_open(config, channel.name, open_samples)
    expected: dict[tuple[str, int], list[Alert]] = {}
    for part in parts:
        for key, found in part.alerts.items():
            expected.setdefault(key, []).extend(found)
    checks = [
        check(alertname, minute, found)
        for (alertname, minute), found in sorted(
            expected.items(), key=lambda kv: (kv[0][1], kv[0][0])
        )
    ]
    return _test(
        name,
        inputs,
        alert_rule_test=checks,
        promql_expr_test=[check for part in parts for check in part.exprs],
    )


# --- values and labels ----------------------------------------------------------------------


def go_round(value: float, to: float = PRECISION) -> float:
    """PromQL's ``round(value, to)``: ``floor(value / to + 0.5) * to``, as Prometheus 2.42
    computes it (with the inverse of ``to``)."""
    inverse = 1 / to
    return math.floor(value * inverse + 0.5) / inverse


def humanize_duration(seconds: float) -> str:
    """Prometheus's ``humanizeDuration`` for whole seconds of 1 or more."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{seconds:.4g}s"


def humanize_percentage(ratio: float) -> str:
    """Prometheus's ``humanizePercentage`` for ratios from 0.01 to 9.99."""
    return f"{ratio * 100:.4g}%"


def values(samples: Iterable[float | None]) -> str:
    """promtool's value list: one sample an interval, ``_`` for none."""
    return " ".join("_" if v is None else number(v) for v in samples)


def locations(config: Config, journey: Journey) -> list[str]:
    """Where the journey runs: its own list, else every location named, else the default."""
    if journey.locations is not None:
        return list(journey.locations)
    return sorted(config.locations) or [config.defaults.location]


def target(location: str, job: str) -> dict[str, str]:
    """The scrape target's labels of the agent at ``location``."""
    return {"instance": f"{location}:{PORT}", "job": job}


def at(journey: Journey, location: str, job: str) -> dict[str, str]:
    """The labels of a journey series scraped from the agent at ``location``."""
    return {
        "channel": journey.channel,
        "journey": journey.name,
        "location": location,
        **target(location, job),
    }


def series(
    metric: str, labels: Mapping[str, str], samples: Iterable[float | None]
) -> dict[str, str]:
    return {"series": selector(metric, **labels), "values": values(samples)}


def channel_open(
    config: Config, channel: str, samples: Sequence[float | None]
) -> list[dict[str, str]]:
    """``carewatch_channel_open`` from every agent that runs one of the channel's journeys."""
    job = config.alerting.job
    agents = sorted({loc for j in config.channel(channel).journeys for loc in locations(config, j)})
    return [
        series(metrics.CHANNEL_OPEN.name, {"channel": channel, **target(loc, job)}, samples)
        for loc in agents
    ]


def failure_info(journey: Journey, location: str, job: str, length: int) -> dict[str, str]:
    """The journey's first step failed at ``location``, throughout."""
    labels = {
        **at(journey, location, job),
        "step": journey.steps[0].name,
        "reason": FAILURE_REASON,
        "message": FAILURE_MESSAGE,
    }
    return series(metrics.STEP_FAILURE_INFO.name, labels, [1] * length)


def failed_step(journey: Journey) -> str:
    """How the descriptions read ``failure_info``."""
    return a.step_text(journey.steps[0].name, FAILURE_REASON, FAILURE_MESSAGE)


def check(alertname: str, minute: int, alerts: list[Alert]) -> dict[str, Any]:
    return {"eval_time": f"{minute}m", "alertname": alertname, "exp_alerts": alerts}


def alert(labels: Mapping[str, str], annotations: Mapping[str, str]) -> Alert:
    return {"exp_labels": dict(labels), "exp_annotations": dict(annotations)}


def _test(name: str, inputs: list[dict[str, str]], **checks: list[dict[str, Any]]) -> Test:
    test: Test = {"name": name, "interval": f"{INTERVAL}s", "input_series": inputs}
    test.update({kind: found for kind, found in checks.items() if found})
    return test


# --- journeys ---------------------------------------------------------------------------------

#: Minute by minute: healthy; one failed run short (pending); down; recovered; down but closed.
DOWN_OPEN: Final = (1, 1, 1, 1, 0)


def _down_steps(failed_runs: int) -> list[int]:
    return [0, failed_runs - 1, failed_runs, 0, failed_runs]


def journey_down(config: Config, channel: Channel) -> list[Part]:
    """Each journey fails at min_failed_locations locations: JourneyDown at each of them."""
    job = config.alerting.job
    parts = []
    for journey in channel.journeys:
        n = journey.alert.failed_runs
        failing = locations(config, journey)[: journey.alert.min_failed_locations]
        part = Part(_failures(config, journey, failing, _down_steps(n)))
        links = rules.journey_links(channel, journey, config.alerting)
        severity = rules.severity(journey, names.PAGE)
        fired = [
            alert(
                {**at(journey, loc, job), "severity": severity, "team": channel.team},
                a.annotate(
                    a.journey_down(
                        journey, a.Slots(value=str(n), location=loc, step=failed_step(journey))
                    ),
                    links,
                ),
            )
            for loc in failing
        ]
        part.expect(names.JOURNEY_DOWN, range(len(DOWN_OPEN)), {2: fired})
        if journey.alert.min_failed_locations > 1:
            part.expect(names.JOURNEY_DEGRADED, [2], {})  # down, not merely degraded
        parts.append(part)
    return parts


def journey_degraded(config: Config, channel: Channel) -> list[Part]:
    """Each journey that needs several locations fails at one only: a ticket, not a page."""
    job = config.alerting.job
    parts = []
    for journey in channel.journeys:
        if journey.alert.min_failed_locations <= 1:
            continue
        n = journey.alert.failed_runs
        where = locations(config, journey)[0]
        part = Part(_failures(config, journey, [where], _down_steps(n)))
        slots = a.Slots(value=str(n), location=where, step=failed_step(journey))
        fired = alert(
            {**at(journey, where, job), "severity": names.TICKET, "team": channel.team},
            a.annotate(
                a.journey_degraded(journey, slots),
                rules.journey_links(channel, journey, config.alerting),
            ),
        )
        part.expect(names.JOURNEY_DEGRADED, range(len(DOWN_OPEN)), {2: [fired]})
        part.expect(names.JOURNEY_DOWN, [2], {})
        parts.append(part)
    return parts


def _failures(
    config: Config, journey: Journey, failing: Sequence[str], steps: list[int]
) -> list[dict[str, str]]:
    """Consecutive failures at every location (``steps`` where failing, else 0), and the
    failed step where failing."""
    job = config.alerting.job
    found = [
        series(
            names.CONSECUTIVE_FAILURES,
            at(journey, loc, job),
            steps if loc in failing else [0] * len(steps),
        )
        for loc in locations(config, journey)
    ]
    return found + [failure_info(journey, loc, job, len(steps)) for loc in failing]


def channel_down(config: Config, channel: Channel) -> list[Part]:
    """Every journey down but the last (pending), then all of them: ChannelDown."""
    *_, last = channel.journeys
    inputs = []
    anywhere = {}
    for journey in channel.journeys:
        n = journey.alert.failed_runs
        steps = _down_steps(n)
        if journey is not last:
            steps[1] = n
        failing = locations(config, journey)[: journey.alert.min_failed_locations]
        inputs += _failures(config, journey, failing, steps)
        anywhere[journey.name] = f"{failed_step(journey)} at {min(failing)}"
    rule = rules.channel_down(channel, config.alerting)
    fired = alert(
        rule["labels"],
        a.annotate(
            a.channel_down(channel, a.Slots(anywhere=anywhere)),
            a.links(channel, a.dashboard_url(config.alerting.dashboard_url, channel.name)),
        ),
    )
    part = Part(inputs)
    part.expect(names.CHANNEL_DOWN, range(len(DOWN_OPEN)), {2: [fired]})
    return [part]


def journey_stale(config: Config, channel: Channel) -> list[Part]:
    """Ran just now; half the limit ago; twice the limit ago (stale); again; stale but closed."""
    job = config.alerting.job
    parts = []
    for journey in channel.journeys:
        limit = rules.STALE_INTERVALS * journey.interval
        where = locations(config, journey)[0]
        last_runs = [0, INTERVAL - limit / 2, 2 * INTERVAL - 2 * limit, 3 * INTERVAL, 3 * INTERVAL]
        slots = a.Slots(value=humanize_duration(2 * limit), location=where)
        fired = alert(
            {
                **at(journey, where, job),
                "severity": rules.severity(journey, names.PAGE),
                "team": channel.team,
            },
            a.annotate(
                a.journey_stale(journey, rules.STALE_INTERVALS, slots),
                rules.journey_links(channel, journey, config.alerting),
            ),
        )
        part = Part([series(metrics.JOURNEY_LAST_RUN.name, at(journey, where, job), last_runs)])
        part.expect(names.JOURNEY_STALE, range(len(DOWN_OPEN)), {2: [fired]})
        parts.append(part)
    return parts


#: Days of validity left, minute by minute: 90; 22 (nothing yet); 20 (ticket); 6 (page);
#: expired a day ago; renewed; 6 while closed (nothing).
CERTIFICATE_DAYS_LEFT: Final = (90, 22, 20, 6, -1, 90, 6)
CERTIFICATE_OPEN: Final = (1, 1, 1, 1, 1, 1, 0)


def certificates(config: Config, channel: Channel) -> list[Part]:
    """CertificateExpiresSoon (ticket, then page) and CertificateExpired, step by step."""
    return [_certificate_part(config, channel, journey) for journey in channel.journeys]


def _certificate_part(config: Config, channel: Channel, journey: Journey) -> Part:
    job = config.alerting.job
    where = locations(config, journey)[0]
    step = journey.steps[0].name
    labels = {**at(journey, where, job), "step": step}
    expiry = [m * INTERVAL + days * slo.DAY for m, days in enumerate(CERTIFICATE_DAYS_LEFT)]
    links = rules.journey_links(channel, journey, config.alerting)

    def fired(wanted: names.Severity, text: a.Text) -> list[Alert]:
        found = {**labels, "severity": rules.severity(journey, wanted), "team": channel.team}
        return [alert(found, a.annotate(text, links))]

    slots = [
        a.Slots(value=humanize_duration(abs(days) * slo.DAY), cert_step=step, location=where)
        for days in CERTIFICATE_DAYS_LEFT
    ]
    part = Part([series(metrics.STEP_TLS_EXPIRY.name, labels, expiry)])
    minutes = range(len(CERTIFICATE_DAYS_LEFT))
    soon: dict[int, list[Alert]] = {}
    for minute, days in enumerate(CERTIFICATE_DAYS_LEFT):
        for below, at_least, wanted in rules.certificate_bands(journey):
            if CERTIFICATE_OPEN[minute] and at_least <= days < below and days > 0:
                text = a.certificate_soon(journey, below, slots[minute])
                soon[minute] = fired(wanted, text)
    part.expect(names.CERTIFICATE_EXPIRES_SOON, minutes, soon)
    expired = {4: fired(names.PAGE, a.certificate_expired(journey, slots[4]))}
    part.expect(names.CERTIFICATE_EXPIRED, minutes, expired)
    return part


#: Which windows burn (1) or not (0) at each minute of the burn-rate test: healthy; the long
#: windows only (pending); all (page and ticket); the short windows back (recovered); all,
#: closed; the page's second pair only; the ticket's second pair only.
BURNING: Final = {
    "5m": (0, 0, 1, 0, 1, 0, 0),
    "30m": (0, 0, 1, 0, 1, 1, 0),
    "1h": (0, 1, 1, 1, 1, 0, 0),
    "2h": (0, 0, 1, 0, 1, 0, 0),
    "6h": (0, 0, 1, 0, 1, 1, 1),
    "1d": (0, 1, 1, 1, 1, 0, 0),
    "3d": (0, 1, 1, 1, 1, 0, 1),
}
BURN_OPEN: Final = (1, 1, 1, 1, 0, 1, 1)


def fires(
    pairs: Iterable[slo.BurnRate], minute: int, ratio: float, budget: float, days: int
) -> bool:
    """Whether a rule over ``pairs`` fires at ``minute`` of the burn-rate test, its windows at
    ``ratio`` when they burn: a pair fires when both its windows burn above its threshold,
    computed as Prometheus computes the rule's ``(factor * budget)`` (a loose objective can
    put a threshold above 1, where no ratio reaches it)."""
    return bool(BURN_OPEN[minute]) and any(
        BURNING[p.long.name][minute]
        and BURNING[p.short.name][minute]
        and ratio > float(number(p.factor(days))) * float(number(budget))
        for p in pairs
    )


def burning_ratio(journey: Journey, sli: names.Sli, period_days: int) -> float:
    """An error ratio over every threshold, in whole percent (so that its text is exact)."""
    top = max(p.factor(period_days) for p in slo.BURN_RATES) * slo.error_budget(journey, sli)
    return min(1.0, math.floor((1 + top) / 2 * 100 + 1) / 100)


def burn_rates(config: Config, channel: Channel) -> list[Part]:
    """Built from per-window error ratios: what the recording rules give is the input here."""
    return [_burn_rate_part(config, channel, journey) for journey in channel.journeys]


def _burn_rate_part(config: Config, channel: Channel, journey: Journey) -> Part:
    job = config.alerting.job
    period = config.alerting.period_days
    where = locations(config, journey)[0]
    part = Part([failure_info(journey, where, job, len(BURN_OPEN))])
    links = rules.journey_links(channel, journey, config.alerting)
    for sli, alertname in rules.BURN_RATE_ALERTS.items():
        ratio = burning_ratio(journey, sli, period)
        labels = slo.sli_labels(journey, channel.team, sli)
        part.inputs += [
            series(w.record, labels, [ratio * on for on in BURNING[w.name]]) for w in slo.WINDOWS
        ]
        slots = a.Slots(
            value=humanize_percentage(ratio),
            anywhere={journey.name: f"{failed_step(journey)} at {where}"},
        )
        expected: dict[int, list[Alert]] = {}
        for wanted, pairs in rules.burn_rates(journey).items():
            text = a.burn_rate(journey, sli, rules.paces(pairs, period), slots)
            for minute in range(len(BURN_OPEN)):
                if fires(pairs, minute, ratio, slo.error_budget(journey, sli), period):
                    found = alert({**labels, "severity": wanted}, a.annotate(text, links))
                    expected.setdefault(minute, []).append(found)
        part.expect(alertname, range(len(BURN_OPEN)), expected)
    return part


#: The SLI test: open for OPEN_MINUTES, then closed for CLOSED_MINUTES, counters flat.
OPEN_MINUTES: Final = 6
CLOSED_MINUTES: Final = 7  # more than the 5m window: the shortest SLI has nothing left
SLI_OPEN: Final = (1,) * (OPEN_MINUTES + 1) + (0,) * CLOSED_MINUTES


def slis(config: Config, channel: Channel) -> list[Part]:
    """The recording rules from raw counters, summed over locations: each minute, 1 failed run
    in a number that burns half the availability budget, and as many slow runs as burn half
    the latency budget; then the channel closes, no run happens, and the budget left is the
    same once the shortest window holds no run."""
    return [_sli_part(config, channel, journey) for journey in channel.journeys]


def _sli_part(config: Config, channel: Channel, journey: Journey) -> Part:
    job = config.alerting.job
    where = locations(config, journey)
    failed = 1
    runs = max(2, round(2 / slo.error_budget(journey, names.AVAILABILITY)))
    ok = runs - failed
    slow = max(1, round(ok * slo.error_budget(journey, names.LATENCY) / 2))
    le = metrics.format_le(journey.slo.latency_threshold)
    histogram = metrics.JOURNEY_DURATION.name
    per_minute = {
        (metrics.JOURNEY_RUNS.name, "result", "failure"): failed,
        (metrics.JOURNEY_RUNS.name, "result", "success"): ok,
        (f"{histogram}_bucket", "le", le): ok - slow,
        (f"{histogram}_count", "", ""): ok,
        (metrics.JOURNEY_APDEX.name, "zone", "satisfied"): ok - slow,
        (metrics.JOURNEY_APDEX.name, "zone", "tolerating"): slow,
        (metrics.JOURNEY_APDEX.name, "zone", "frustrated"): failed,
    }
    part = Part()
    for loc in where:
        for (metric, label, value), each in per_minute.items():
            counts = [each * min(m, OPEN_MINUTES) for m in range(len(SLI_OPEN))]
            extra = {label: value} if label else {}
            part.inputs.append(series(metric, {**at(journey, loc, job), **extra}, counts))
    error = {names.AVAILABILITY: failed / runs, names.LATENCY: slow / ok}
    closed = len(SLI_OPEN) - 1
    for sli in names.SLIS:
        labels = slo.sli_labels(journey, channel.team, sli)
        short = slo.sli_selector(slo.SHORTEST.record, journey, sli)
        remaining = slo.sli_selector(names.PERIOD_BUDGET_REMAINING, journey, sli)
        left = 1 - error[sli] / slo.error_budget(journey, sli)
        part.exprs += [
            _expr(short, OPEN_MINUTES, labels, error[sli]),
            _expr(remaining, OPEN_MINUTES, labels, left),
            _expr(short, closed, labels, None),  # no runs: no ratio, neither good nor bad
            _expr(remaining, closed, labels, left),
        ]
    hour = slo.Window(slo.HOUR).name
    for loc in where:
        labels = {"channel": journey.channel, "journey": journey.name, "location": loc}
        found = {**labels, "team": channel.team}
        apdex = (ok - slow + slow / 2) / runs
        part.exprs += [
            _expr(selector(f"{names.UPTIME}{hour}", **labels), OPEN_MINUTES, found, ok / runs),
            _expr(selector(f"{names.APDEX}{hour}", **labels), OPEN_MINUTES, found, apdex),
        ]
    return part


def _expr(
    query: str, minute: int, labels: Mapping[str, str], value: float | None
) -> dict[str, Any]:
    """``round(query)`` at ``minute`` is ``value`` (rounded alike), or nothing at all."""
    samples = (
        [] if value is None else [{"labels": selector("", **labels), "value": go_round(value)}]
    )
    return {
        "expr": f"round({query}, {number(PRECISION)})",
        "eval_time": f"{minute}m",
        "exp_samples": samples,
    }


# --- the agent ----------------------------------------------------------------------------------


def agent_tests(config: Config) -> list[Test]:
    job = config.alerting.job
    location = sorted(config.locations)[0] if config.locations else config.defaults.location
    overview = {"dashboard_url": a.dashboard_url(config.alerting.dashboard_url)}
    known = target(location, job)
    unknown = target("unknown", job)
    info = {**known, "location": location, "version": VERSION}
    build_info = series(metrics.BUILD_INFO, info, [1, 1, None, None, 1])

    def fired(name: str, labels: Mapping[str, str], text: a.Text) -> Alert:
        return alert({**labels, "severity": _severity(name)}, a.annotate(text, overview))

    located = a.Slots(instance=known["instance"], at=f" at {location}", location=location)
    down_known = fired(
        names.PROBER_DOWN, {**known, "location": location}, a.prober_down(job, located)
    )
    down_unknown = fired(
        names.PROBER_DOWN, unknown, a.prober_down(job, a.Slots(instance=unknown["instance"], at=""))
    )
    prober = _test(
        names.PROBER_DOWN,
        [
            series("up", known, [1, 1, 0, 0, 1]),
            series("up", unknown, [1, 1, 0, 1, 1]),  # never reported a build_info
            build_info,
        ],
        alert_rule_test=[
            check(names.PROBER_DOWN, 0, []),
            check(names.PROBER_DOWN, 1, []),
            check(names.PROBER_DOWN, 2, [down_known, down_unknown]),
            check(names.PROBER_DOWN, 3, [down_known]),
            check(names.PROBER_DOWN, 4, []),
        ],
    )
    absent_for = rules.ABSENT_FOR // INTERVAL
    vanished = _test(
        f"{names.PROBER_DOWN}: the whole job vanished",
        [series("up", known, [None] * (absent_for + 2) + [1, 1])],
        alert_rule_test=[
            check(names.PROBER_DOWN, absent_for - 1, []),  # pending: not missing for long yet
            check(
                names.PROBER_DOWN,
                absent_for,
                [fired(names.PROBER_DOWN, {"job": job, "targets": "none"}, a.prober_absent(job))],
            ),
            check(names.PROBER_DOWN, absent_for + 3, []),
        ],
    )
    reloaded = fired(
        names.CONFIG_RELOAD_FAILED, {**known, "location": location}, a.config_reload_failed(located)
    )
    reload_test = _test(
        names.CONFIG_RELOAD_FAILED,
        [
            series(metrics.CONFIG_RELOAD_SUCCESSFUL, known, [1, 0, 0, 1]),
            series(metrics.BUILD_INFO, info, [1, 1, 1, 1]),
        ],
        alert_rule_test=[
            check(names.CONFIG_RELOAD_FAILED, 0, []),
            check(names.CONFIG_RELOAD_FAILED, 1, [reloaded]),
            check(names.CONFIG_RELOAD_FAILED, 3, []),
        ],
    )
    callback = sorted(config.callbacks)[0] if config.callbacks else "provider"
    rejected = [0, 0, 5, 20, 40, 40, 40, 40, 40, 40]
    flooded = fired(
        names.CALLBACK_REJECTIONS,
        {**known, "location": location, "callback": callback},
        a.callback_rejections(
            rules.CALLBACK_FLOOD,
            slo.Window(rules.CALLBACK_WINDOW).name,
            replace(located, callback=callback),
        ),
    )
    callbacks = _test(
        names.CALLBACK_REJECTIONS,
        [
            series(
                metrics.CALLBACK_EVENTS.name,
                {**known, "callback": callback, "result": "rejected"},
                rejected,
            ),
            series(metrics.BUILD_INFO, info, [1] * len(rejected)),
        ],
        alert_rule_test=[
            check(names.CALLBACK_REJECTIONS, 1, []),
            check(names.CALLBACK_REJECTIONS, 2, []),  # 5 rejected: not a flood
            check(names.CALLBACK_REJECTIONS, 3, [flooded]),
            check(names.CALLBACK_REJECTIONS, 9, []),
        ],
    )
    return [prober, vanished, reload_test, callbacks]


def _severity(name: str) -> names.Severity:
    return names.PAGE if name == names.PROBER_DOWN else names.TICKET
