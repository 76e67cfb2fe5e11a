"""The end of a load test, on the master: thresholds checked once against Locust's statistics.

``install(events, config, excluded)`` registers the listeners and two command-line options:

* ``--thresholds-junit PATH``: a JUnit XML file, one test case per threshold;
* ``--thresholds-json PATH``: the JSON verdict.

When Locust quits, the master (or a local runner; never a worker) reads each journey's
``JOURNEY`` entry and the total of every step (``steps (all)``: Locust's Aggregated row without
the ``JOURNEY`` entries, see ``steps_total``), checks the thresholds (a journey's own, else those
its SLO implies; the global ones of the top-level ``loadtest:`` section against the total), writes
the files asked for, and sets the exit code: 0 when every threshold held, 99 when one broke
(``probes.Exit``). The readable summary is printed last, after Locust's own tables.
The verdict logic is ``loadtests.report``'s; this module only connects it to Locust.
"""

from __future__ import annotations

from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.event import Events
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests._interpreter import JOURNEY_REQUEST_TYPE
from loadtests.journeys import included
from loadtests.report import evaluate, exit_code, json_verdict, junit_xml, summary
from probes.model import (
    TOTAL_ENTRY,
    Config,
    EntryStats,
    Journey,
    Threshold,
    Verdict,
    default_thresholds,
)

log = logging.getLogger("carewatch.loadtest")
#: Why a journey the engine can run has no verdict: the class list or ``--tags`` left it out.
NOT_SELECTED = "not selected for this run (user classes or --tags on the command line)"
_MS = 1000.0


def thresholds(journey: Journey) -> list[Threshold]:
    """A journey's thresholds: its ``loadtest.thresholds``, else those its SLO implies."""
    own = journey.loadtest.thresholds if journey.loadtest is not None else None
    if own is not None:
        return list(own)
    slo = journey.slo
    return default_thresholds(slo.latency_threshold, slo.latency_target, slo.availability)


def run_span(stats: RequestStats) -> float:
    """Seconds from the test's first request to its last: what ``rps`` divides by.

    Locust's own ``total_rps`` counts from when its stats were created, which includes the
    start-up before the first user sends anything (seconds, on a loaded CI machine), and so
    reads low. Each entry starts with its first request, so the earliest one starts the test.
    """
    last: float | None = stats.last_request_timestamp  # a property Locust leaves unannotated
    if last is None or not stats.entries:
        return 0.0
    return max(0.0, last - min(entry.start_time for entry in stats.entries.values()))


def entry_stats(entry: StatsEntry, quantiles: set[float], *, span: float) -> EntryStats:
    """``entry`` (Locust's milliseconds) in seconds, with the percentiles the thresholds name;
    its ``rps`` is over ``span`` seconds, the whole test (see ``run_span``)."""
    return EntryStats(
        entry.name,
        requests=entry.num_requests,
        failures=entry.num_failures,
        rps=entry.num_requests / span if span > 0 else 0.0,
        avg=entry.avg_response_time / _MS,
        min=(entry.min_response_time or 0) / _MS,
        max=entry.max_response_time / _MS,
        percentiles={q: entry.get_response_time_percentile(q) / _MS for q in quantiles},
    )


def steps_total(stats: RequestStats) -> StatsEntry:
    """Every step's entry merged into one (``TOTAL_ENTRY``), for the global thresholds.

    Locust's ``stats.total`` also counts the ``JOURNEY`` entries: a journey run would be one
    more request for ``rps``, and a failed step would fail twice for ``fail_ratio``. Merging the
    step entries' histograms keeps the percentiles those of step response times; ``rps`` is over
    the whole run (see ``run_span``).
    """
    total = StatsEntry(stats, TOTAL_ENTRY, "", use_response_times_cache=False)
    for (_, method), entry in stats.entries.items():
        if method != JOURNEY_REQUEST_TYPE:
            total.extend(entry)
    return total


class _Verdicts:
    """The listeners, and what they found, for one Locust process."""

    def __init__(self, config: Config, location: str, excluded: Sequence[tuple[str, str]]):
        self.config = config
        self.location = location
        self.excluded = list(excluded)
        self.verdicts: list[Verdict] | None = None
        self.skipped: list[tuple[str, str]] = []

    def options(self, parser: LocustArgumentParser, **_: Any) -> None:
        group = parser.add_argument_group("carewatch thresholds")
        group.add_argument(
            "--thresholds-junit",
            metavar="PATH",
            default=None,
            help="write the thresholds' verdicts as JUnit XML, one test case per threshold",
        )
        group.add_argument(
            "--thresholds-json",
            metavar="PATH",
            default=None,
            help="write the thresholds' verdicts as JSON",
        )

    def quitting(self, environment: Environment, **_: Any) -> None:
        if isinstance(environment.runner, WorkerRunner) or environment.runner is None:
            return  # thresholds are checked once, on the master
        running = {cls.__name__ for cls in environment.user_classes}
        journeys = included(self.config, location=self.location)
        self.skipped = self.excluded + [
            (j.id, NOT_SELECTED) for j in journeys if j.id not in running
        ]
        verdicts = self._check(
            {j.id: thresholds(j) for j in journeys if j.id in running}, environment.runner.stats
        )
        if verdicts is None:
            return  # nothing to check: Locust's own exit code stands
        self.verdicts = verdicts
        environment.process_exit_code = int(exit_code(verdicts))
        options = environment.parsed_options
        junit = getattr(options, "thresholds_junit", None)
        if junit:
            _write(junit, junit_xml(verdicts, skipped=self.skipped))
        verdict_json = getattr(options, "thresholds_json", None)
        if verdict_json:
            verdict = json_verdict(verdicts, skipped=self.skipped)
            _write(verdict_json, json.dumps(verdict, indent=2))

    def _check(
        self, journey_thresholds: dict[str, list[Threshold]], stats: RequestStats
    ) -> list[Verdict] | None:
        """Every threshold's verdict on ``stats``; None when there are no thresholds at all."""
        global_thresholds = list(self.config.loadtest.thresholds) if self.config.loadtest else []
        every = [t for ts in journey_thresholds.values() for t in ts] + global_thresholds
        if not every:
            return None
        quantiles = {t.quantile for t in every if t.quantile is not None}
        span = run_span(stats)
        journeys = {
            name: entry_stats(stats.entries[(name, JOURNEY_REQUEST_TYPE)], quantiles, span=span)
            for name in journey_thresholds
            if (name, JOURNEY_REQUEST_TYPE) in stats.entries
        }
        steps = steps_total(stats)
        total = entry_stats(steps, quantiles, span=span) if steps.num_requests else None
        return evaluate(
            journey_thresholds, journeys=journeys, total=total, global_thresholds=global_thresholds
        )

    def quit(self, **_: Any) -> None:
        if self.verdicts is not None:
            sys.stderr.write("\n" + summary(self.verdicts, skipped=self.skipped))


def install(
    events: Events, config: Config, *, location: str, excluded: Sequence[tuple[str, str]]
) -> None:
    """Check ``config``'s thresholds when Locust quits, and set its exit code (see above)."""
    verdicts = _Verdicts(config, location, excluded)
    # Locust's EventHook.add_listener has no annotations.
    events.init_command_line_parser.add_listener(verdicts.options)  # type: ignore[no-untyped-call]
    events.quitting.add_listener(verdicts.quitting)  # type: ignore[no-untyped-call]
    events.quit.add_listener(verdicts.quit)  # type: ignore[no-untyped-call]


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    log.info("thresholds written to %s", target)
