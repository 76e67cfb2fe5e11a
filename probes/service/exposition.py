"""Journey series in Prometheus text format, rendered when a result arrives, joined on scrape.

prometheus-client renders every sample at scrape time, which for 100k+ series blocks the event
loop that times the probes for seconds. Here each journey keeps its lines pre-rendered, one
string per metric family, and a scrape only joins strings, a few hundred journeys at a time
(``pieces``) so that a server can let the probes run in between.

>>> from probes.model import parse_config
>>> from probes.runs import Attempt, Outcome, Phase, RunResult, StepResult
>>> config = parse_config('''
... channels:
...   - {name: app, kind: app, team: mobile, journeys: [{name: login, steps: [
...       {name: home, url: "http://127.0.0.1:8900/"}]}]}
... ''', file="checks.yaml", environ={})
>>> exposition = Exposition()
>>> exposition.configure(config, location="paris")
>>> home = StepResult("home", Outcome.PASSED, {Phase.TOTAL: 0.2})
>>> exposition.record(RunResult("app", "login", "paris", 0.0, (Attempt(1, (home,), 0.2),)))
>>> for line in exposition.render().splitlines():
...     if line.startswith("carewatch_journey_runs_total"):
...         print(line)
carewatch_journey_runs_total{channel="app",journey="login",location="paris",result="success"} 1
carewatch_journey_runs_total{channel="app",journey="login",location="paris",result="failure"} 0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Final

from probes import metrics as m
from probes.metrics import Family, duration_buckets, format_le, message_label
from probes.model.config import TOLERATING_FACTOR, Channel, Config, Journey
from probes.model.hours import OpeningHours, is_open
from probes.runs.experience import estimate
from probes.runs.results import Outcome, RunResult, StepResult

RESULTS: Final = ("success", "failure")
ZONES: Final = ("satisfied", "tolerating", "frustrated")
#: The step families that show the last run reaching the step, in the order a step's lines go.
_LAST_RUN_FAMILIES: Final = (
    m.STEP_UP,
    m.STEP_DURATION,
    m.STEP_STATUS,
    m.STEP_TLS_EXPIRY,
    m.STEP_FAILURE_INFO,
)
#: Journeys per piece of a streamed scrape: about 0.2-0.5 MB of text, well under a millisecond
#: of joining, so the probes' timers are never held up long by a scrape.
PIECE_JOURNEYS: Final = 250


def escape(value: str) -> str:
    """A label value escaped for the text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


class _Step:
    """A step's counters, kept across runs, and the lines of the last run that reached it.

    The lines, not the StepResult, are kept: between runs a journey holds only strings and
    numbers, which the garbage collector never walks (see ``probes.service.scheduler``).
    """

    __slots__ = ("failures", "labels", "lines", "phase_prefixes", "reached")

    def __init__(self, labels: str) -> None:
        self.labels = labels
        # The duration lines' label sets, by phase name. Strings only: a dict of strings is
        # one the garbage collector does not track, though it is filled after the freeze.
        self.phase_prefixes: dict[str, str] = {}
        self.failures: dict[str, int] = {}
        self.reached = False
        self.lines = dict.fromkeys(_LAST_RUN_FAMILIES, "")

    def reach(self, step: StepResult) -> None:
        """Take the lines of the run's last attempt at this step."""
        labels = self.labels
        lines = self.lines
        lines[m.STEP_UP] = f"{m.STEP_UP.name}{{{labels}}} {int(step.ok)}\n"
        prefixes = self.phase_prefixes
        durations = []
        for phase, seconds in step.phases.items():
            prefix = prefixes.get(phase.value)
            if prefix is None:
                prefix = prefixes[phase.value] = (
                    f'{m.STEP_DURATION.name}{{{labels},phase="{phase.value}"}} '
                )
            durations.append(f"{prefix}{_num(seconds)}\n")
        lines[m.STEP_DURATION] = "".join(durations)
        lines[m.STEP_STATUS] = f"{m.STEP_STATUS.name}{{{labels}}} {step.status or 0}\n"
        lines[m.STEP_TLS_EXPIRY] = (
            f"{m.STEP_TLS_EXPIRY.name}{{{labels}}} {_num(step.cert_expiry)}\n"
            if step.cert_expiry is not None
            else ""
        )
        lines[m.STEP_FAILURE_INFO] = (
            f'{m.STEP_FAILURE_INFO.name}{{{labels},reason="{step.reason.value}",'
            f'message="{escape(message_label(step.message))}"}} 1\n'
            if step.outcome is Outcome.FAILED and step.reason
            else ""
        )
        self.reached = True


class _JourneySeries:
    """One journey's state and its pre-rendered lines, keyed by family."""

    def __init__(self, journey: Journey, location: str) -> None:
        self.location = location
        self.labels = _labels(channel=journey.channel, journey=journey.name, location=location)
        self.runs = dict.fromkeys(RESULTS, 0)
        self.apdex = dict.fromkeys(ZONES, 0)
        self.retries = 0
        self.skipped = 0
        self.consecutive_failures = 0
        self.experience: dict[str, float] = {}
        self.up: int | None = None
        self.last_run: float | None = None
        self.steps: dict[str, _Step] = {}
        self.chunks: dict[Family, str] = {}  # updated in place: see _Step
        self.adopt(journey)

    def adopt(self, journey: Journey) -> None:
        """Take a (possibly edited) definition, keeping counters where they still mean the same."""
        self.journey = journey
        buckets = duration_buckets(journey)
        if getattr(self, "buckets", None) != buckets:
            self.buckets = buckets
            self.bucket_counts = [0] * len(buckets)
            self.duration_sum = 0.0
            self.duration_count = 0
        name, labels = m.JOURNEY_DURATION.name, self.labels
        # The histogram's label sets never change: rendered once, each run only adds numbers.
        self.bucket_prefixes = (
            *(f'{name}_bucket{{{labels},le="{format_le(b)}"}} ' for b in buckets),
            f'{name}_bucket{{{labels},le="+Inf"}} ',
        )
        names = [s.name for s in (*journey.steps, *journey.finally_steps)]
        self.steps = {
            name: self.steps.get(name)
            or _Step(
                _labels(
                    channel=journey.channel, journey=journey.name, step=name, location=self.location
                )
            )
            for name in names
        }
        self.render()

    def record(self, result: RunResult) -> None:
        journey = self.journey
        self.runs["success" if result.ok else "failure"] += 1
        self.up = 1 if result.ok else 0
        self.consecutive_failures = 0 if result.ok else self.consecutive_failures + 1
        self.last_run = result.started_at
        self.retries += result.retries
        if result.ok:
            self.experience = _experience(journey, result)
        duration = result.duration
        if not result.ok:
            self.apdex["frustrated"] += 1
        elif duration <= journey.apdex_t:
            self.apdex["satisfied"] += 1
        elif duration <= journey.apdex_t * TOLERATING_FACTOR:
            self.apdex["tolerating"] += 1
        else:
            self.apdex["frustrated"] += 1
        if result.ok:
            self.duration_sum += duration
            self.duration_count += 1
            for i, bound in enumerate(self.buckets):
                if duration <= bound:
                    self.bucket_counts[i] += 1
                    break
        for attempt in result.attempts:
            for step in attempt.steps:
                if step.outcome is Outcome.FAILED and step.name in self.steps and step.reason:
                    failures = self.steps[step.name].failures
                    failures[step.reason.value] = failures.get(step.reason.value, 0) + 1
        for kept in self.steps.values():
            kept.reached = False
        for step in result.final.steps:
            reached = self.steps.get(step.name)
            if reached is not None and step.outcome is not Outcome.SKIPPED:
                reached.reach(step)
        self.render()

    def render(self) -> None:
        labels = self.labels
        c = self.chunks
        c[m.JOURNEY_RUNS] = "".join(
            f'{m.JOURNEY_RUNS.name}{{{labels},result="{r}"}} {n}\n' for r, n in self.runs.items()
        )
        c[m.JOURNEY_APDEX] = "".join(
            f'{m.JOURNEY_APDEX.name}{{{labels},zone="{z}"}} {n}\n' for z, n in self.apdex.items()
        )
        c[m.JOURNEY_EXPERIENCE] = "".join(
            f'{m.JOURNEY_EXPERIENCE.name}{{{labels},network="{escape(n)}"}} {_num(v)}\n'
            for n, v in self.experience.items()
        )
        c[m.JOURNEY_RETRIES] = f"{m.JOURNEY_RETRIES.name}{{{labels}}} {self.retries}\n"
        c[m.JOURNEY_SKIPPED] = f"{m.JOURNEY_SKIPPED.name}{{{labels}}} {self.skipped}\n"
        c[m.JOURNEY_CONSECUTIVE_FAILURES] = (
            f"{m.JOURNEY_CONSECUTIVE_FAILURES.name}{{{labels}}} {self.consecutive_failures}\n"
        )
        c[m.JOURNEY_DURATION] = self._histogram()
        if self.up is not None and self.last_run is not None:
            c[m.JOURNEY_UP] = f"{m.JOURNEY_UP.name}{{{labels}}} {self.up}\n"
            c[m.JOURNEY_LAST_RUN] = f"{m.JOURNEY_LAST_RUN.name}{{{labels}}} {_num(self.last_run)}\n"
        steps = self.steps.values()
        c[m.STEP_FAILURES] = "".join(
            f'{m.STEP_FAILURES.name}{{{step.labels},reason="{r}"}} {n}\n'
            for step in steps
            for r, n in step.failures.items()
        )
        for family in _LAST_RUN_FAMILIES:
            c[family] = "".join([step.lines[family] for step in steps if step.reached])

    def _histogram(self) -> str:
        name, labels = m.JOURNEY_DURATION.name, self.labels
        lines = []
        cumulative = 0
        prefixes = self.bucket_prefixes
        for prefix, count in zip(prefixes[:-1], self.bucket_counts, strict=True):
            cumulative += count
            lines.append(f"{prefix}{cumulative}\n")
        lines.append(f"{prefixes[-1]}{self.duration_count}\n")
        lines.append(f"{name}_sum{{{labels}}} {_num(self.duration_sum)}\n")
        lines.append(f"{name}_count{{{labels}}} {self.duration_count}\n")
        return "".join(lines)


def _experience(journey: Journey, result: RunResult) -> dict[str, float]:
    """The run's estimated duration on each of the journey's networks, when every main step
    reported its traffic; empty otherwise (an engine that does not measure it)."""
    traffic = [s.traffic for s in result.final.steps if not s.cleanup]
    if not traffic or any(t is None for t in traffic):
        return {}
    measured = [t for t in traffic if t is not None]
    return {name: estimate(measured, profile) for name, profile in journey.networks.items()}


def _definitions(channels: Iterable[Channel], location: str) -> dict[Family, str]:
    out: dict[Family, list[str]] = {f: [] for f in m.DEFINITION_FAMILIES}
    for channel in channels:
        for j in (j for j in channel.journeys if j.runs_at(location)):
            labels = _labels(channel=channel.name, journey=j.name)
            info = _labels(
                channel=channel.name, journey=j.name, kind=channel.kind.value, team=channel.team
            )
            out[m.JOURNEY_INFO].append(f"{m.JOURNEY_INFO.name}{{{info}}} 1\n")
            for family, value in (
                (m.JOURNEY_SLO_OBJECTIVE, j.slo.availability_ratio),
                (m.JOURNEY_SLO_LATENCY_THRESHOLD, j.slo.latency_threshold),
                (m.JOURNEY_SLO_LATENCY_OBJECTIVE, j.slo.latency_ratio),
                (m.JOURNEY_APDEX_THRESHOLD, j.apdex_t),
                (m.JOURNEY_INTERVAL, j.interval),
            ):
                out[family].append(f"{family.name}{{{labels}}} {_num(value)}\n")
    return {f: "".join(lines) for f, lines in out.items()}


class Prepared:
    """A config's series and lines built ahead of ``Exposition.configure`` (``prepare``)."""

    __slots__ = ("config", "definitions", "fresh", "hours", "location")

    def __init__(
        self,
        config: Config,
        location: str,
        fresh: dict[str, _JourneySeries],
        definitions: dict[Family, str],
        hours: list[tuple[str, OpeningHours | None]],
    ) -> None:
        self.config = config
        self.location = location
        self.fresh = fresh
        self.definitions = definitions
        self.hours = hours


class Exposition:
    """Every journey's series for one agent location."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._series: dict[str, _JourneySeries] = {}
        self._definitions: dict[Family, str] = {}
        self._hours: list[tuple[str, OpeningHours | None]] = []
        self._clock = clock

    def prepare(self, config: Config, *, location: str) -> Prepared:
        """What ``configure`` needs that it can build ahead: the series of journeys new here.

        Safe in a worker thread while the loop records results: it reads which journeys have
        series and changes nothing, so the loop holds on to no long piece of work for a file of
        thousands of new journeys. Pass the result to ``configure`` (under the same lock that
        keeps two reloads apart).
        """
        fresh = {
            journey.id: _JourneySeries(journey, location)
            for journey in config.journeys
            if journey.runs_at(location) and not self._keeps(journey.id, location)
        }
        hours = [
            (c.name, c.hours)
            for c in config.channels
            if any(j.runs_at(location) for j in c.journeys)
        ]
        return Prepared(config, location, fresh, _definitions(config.channels, location), hours)

    def configure(self, config: Config, *, location: str, prepared: Prepared | None = None) -> None:
        """Follow a (re)loaded config: kept journeys keep their counters, removed ones vanish."""
        if prepared is None or prepared.config is not config or prepared.location != location:
            prepared = self.prepare(config, location=location)
        series: dict[str, _JourneySeries] = {}
        for journey in config.journeys:
            if not journey.runs_at(location):
                continue
            kept = self._series.get(journey.id)
            if kept is not None and kept.location == location:
                kept.adopt(journey)
                series[journey.id] = kept
            else:
                series[journey.id] = prepared.fresh.get(journey.id) or _JourneySeries(
                    journey, location
                )
        self._series = series
        self._definitions = prepared.definitions
        self._hours = prepared.hours

    def _keeps(self, journey_id: str, location: str) -> bool:
        kept = self._series.get(journey_id)
        return kept is not None and kept.location == location

    def record(self, result: RunResult) -> None:
        """Publish a run's result; a result for a journey no longer configured is dropped."""
        series = self._series.get(f"{result.channel}/{result.journey}")
        if series is not None and series.location == result.location:
            series.record(result)

    def skipped(self, journey_id: str) -> None:
        """Count a scheduled run that did not start because the previous one was still going."""
        series = self._series.get(journey_id)
        if series is not None:
            series.skipped += 1
            series.chunks[m.JOURNEY_SKIPPED] = (
                f"{m.JOURNEY_SKIPPED.name}{{{series.labels}}} {series.skipped}\n"
            )

    def render(self) -> str:
        """The journey families in text format, each family's lines together."""
        return "".join(self.pieces())

    def pieces(self) -> Iterator[str]:
        """``render()`` in pieces of at most ``PIECE_JOURNEYS`` journeys' lines each.

        A server writes each piece and lets the event loop run between them, so a scrape of
        100k+ series never holds up the probes for the whole render; ``"".join`` of the pieces
        is ``render()``. The journeys are those configured when the iteration starts; a result
        recorded meanwhile shows in the families not yet rendered.

        >>> for piece in exposition.pieces():   # doctest: +SKIP
        ...     await response.write(piece.encode())
        ...     await asyncio.sleep(0)
        """
        series = list(self._series.values())
        definitions = self._definitions
        hours = self._hours
        for family in m.JOURNEY_FAMILIES:
            header = family.header()
            for start in range(0, len(series), PIECE_JOURNEYS):
                body = "".join(
                    [s.chunks.get(family, "") for s in series[start : start + PIECE_JOURNEYS]]
                )
                if body:
                    yield header + body
                    header = ""
        for family, body in definitions.items():
            if body:
                yield family.header() + body
        if hours:
            now = datetime.fromtimestamp(self._clock(), UTC)
            yield m.CHANNEL_OPEN.header() + "".join(
                f'{m.CHANNEL_OPEN.name}{{channel="{escape(name)}"}} '
                f"{int(h is None or is_open(h, now))}\n"
                for name, h in hours
            )
