"""Measurement accuracy (B4): the time carewatch adds to a response's own time, and how far its
figure is from blackbox_exporter's on the same target.

    python -m bench.accuracy [--probes 50] [--holds 0,50,200]

For each hold d (ms), a loopback target process holds every request d ms and reports its own
handling time in ``Server-Timing: app;dur=...``. carewatch's engine, run in this process as the
exporter runs it, and blackbox_exporter, its own process driven over a kept-alive connection,
probe that target in turn, one probe at a time (never concurrently), ``--probes`` of each, after
a few warm-up probes; which side goes first alternates. Both open a fresh connection per probe.

carewatch's figure is the step's total phase, what ``carewatch_step_duration_seconds{phase=
"total"}`` publishes; the journey's duration is shown too when it differs. blackbox's is
``probe_duration_seconds``, its whole probe (resolving the IP literal, connecting, the request,
the response).

The target's own time of a carewatch probe is that response's ``Server-Timing``: the journey
captures it (``capture: {header: Server-Timing}``) and a ``finally`` step posts it to a receiver
in this process. ``finally`` steps run after the journey's duration is taken and the capture
after the step's total, so reporting costs the measured figures nothing. blackbox keeps no
response header, so its overhead is its median duration minus the median of the target's own
times, all taken from the carewatch probes interleaved with its own.

Either side's overhead also holds what no prober can shed: the target's server outside its
handler (reading the request, writing the answer), the kernel's loopback, and waking both idle
processes after a hold. blackbox's figure, measured in the same run, shows that floor.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import aiohttp
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench._blackbox import Blackbox
from bench._table import Row, print_table
from bench._target import SERVER_TIMING, Target, server_timing_seconds
from probes.engine import Engine, run_on_uvloop
from probes.model import Journey, parse_config
from probes.runs import Phase

PROBES: Final = 50
HOLDS_MS: Final = (0.0, 50.0, 200.0)
GOAL_OVERHEAD_SECONDS: Final = 0.001
GOAL_DIFFERENCE_SECONDS: Final = 0.001
#: Probes of each side before measuring, per hold: imports, first connections, caches.
WARMUP_PROBES: Final = 3
#: A pause between probes, so that one side's connection teardown overlaps nothing measured.
SETTLE_SECONDS: Final = 0.005
#: The journey's duration gets a row of its own when its median is this far from the step's.
JOURNEY_APART_SECONDS: Final = 0.0001
JOURNEY_TIMEOUT: Final = "5s"
DRIVER_TIMEOUT_SECONDS: Final = 10.0
_CAPTURED: Final = "server_timing"
_REPORT_PATH: Final = "/server-timing"
_MS: Final = 1000


@dataclass(frozen=True)
class Accuracy:
    """Every probe's seconds at one hold: carewatch's step total and journey duration with the
    target's own time of each, and blackbox's ``probe_duration_seconds``."""

    hold: float
    step_total: tuple[float, ...]
    journey: tuple[float, ...]
    target: tuple[float, ...]
    blackbox: tuple[float, ...]

    @property
    def overhead(self) -> float:
        """carewatch's median time over the target's own, probe by probe."""
        return statistics.median(t - s for t, s in zip(self.step_total, self.target, strict=True))

    @property
    def blackbox_overhead(self) -> float:
        """blackbox's median duration over the target's median own time."""
        return statistics.median(self.blackbox) - statistics.median(self.target)

    @property
    def difference(self) -> float:
        """|carewatch - blackbox|, median against median."""
        return abs(statistics.median(self.step_total) - statistics.median(self.blackbox))


def _config_text(target: str, report: str) -> str:
    journey = {
        "name": "held",
        "steps": [
            {
                "name": "get",
                "url": target,
                "expect": {"status": 200},
                "capture": {_CAPTURED: {"header": SERVER_TIMING}},
            }
        ],
        "finally": [
            {
                "name": "report",
                "method": "POST",
                "url": report,
                "body": f"${{{_CAPTURED}}}",
                "expect": {"status": 204},
            }
        ],
    }
    channel = {"name": "bench", "kind": "app", "team": "bench", "journeys": [journey]}
    defaults = {"interval": "60s", "timeout": JOURNEY_TIMEOUT, "retries": 0, "location": "bench"}
    return yaml.safe_dump({"defaults": defaults, "channels": [channel]})


@asynccontextmanager
async def _receiver(reports: list[str]) -> AsyncIterator[str]:
    """A loopback URL whose POSTed bodies are appended to ``reports``."""

    async def report(request: web.Request) -> web.Response:
        reports.append(await request.text())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post(_REPORT_PATH, report)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{_REPORT_PATH}"
    finally:
        await runner.cleanup()


class _Sides:
    """One probe at a time of each side against one target."""

    def __init__(
        self,
        engine: Engine,
        journey: Journey,
        reports: list[str],
        driver: aiohttp.ClientSession,
        probe_url: str,
    ) -> None:
        self.engine = engine
        self.journey = journey
        self.reports = reports
        self.driver = driver
        self.probe_url = probe_url

    async def carewatch(self) -> tuple[float, float, float]:
        """The step's total, the journey's duration and the target's own time, in seconds."""
        self.reports.clear()
        result = await self.engine.run(self.journey)
        if not result.ok:
            failed = result.final.failed_step
            raise RuntimeError(f"carewatch's probe failed: {failed}")
        if len(self.reports) != 1:
            raise RuntimeError(f"expected one Server-Timing report, got {self.reports!r}")
        step = result.final.steps[0]
        return step.phases[Phase.TOTAL], result.duration, server_timing_seconds(self.reports[0])

    async def blackbox(self) -> float:
        """blackbox's ``probe_duration_seconds`` for one probe."""
        async with self.driver.get(self.probe_url) as response:
            response.raise_for_status()
            text = await response.text()
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        if samples.get("probe_success") != 1:
            raise RuntimeError(f"blackbox's probe failed:\n{text}")
        duration: float = samples["probe_duration_seconds"]
        return duration


async def _measure(hold: float, target: str, probe_url: str, probes: int) -> Accuracy:
    reports: list[str] = []
    timeout = aiohttp.ClientTimeout(total=DRIVER_TIMEOUT_SECONDS)
    async with (
        _receiver(reports) as report_url,
        aiohttp.ClientSession(timeout=timeout) as driver,
    ):
        config = parse_config(_config_text(target, report_url), file="<bench>", environ={})
        engine = Engine(config.variables, location="bench")
        sides = _Sides(engine, config.journeys[0], reports, driver, probe_url)
        for _ in range(WARMUP_PROBES):
            await sides.carewatch()
            await sides.blackbox()
        ours: list[tuple[float, float, float]] = []
        theirs: list[float] = []
        for n in range(probes):
            carewatch_first = n % 2 == 1  # neither side always follows the other
            if carewatch_first:
                await asyncio.sleep(SETTLE_SECONDS)
                ours.append(await sides.carewatch())
            await asyncio.sleep(SETTLE_SECONDS)
            theirs.append(await sides.blackbox())
            if not carewatch_first:
                await asyncio.sleep(SETTLE_SECONDS)
                ours.append(await sides.carewatch())
    step_total, journey, own = zip(*ours, strict=True)
    return Accuracy(hold, step_total, journey, own, tuple(theirs))


def run(probes: int = PROBES, *, holds: Sequence[float] = HOLDS_MS, workdir: str) -> list[Accuracy]:
    """Measure both sides at every hold (milliseconds), each hold against a target of its own."""
    results = []
    with Blackbox(workdir) as bb:
        for hold_ms in holds:
            hold = hold_ms / _MS
            with Target(hold=hold) as target:
                measured = run_on_uvloop(_measure(hold, target, bb.probe_url(target), probes))
            results.append(measured)
    return results


def rows(results: Sequence[Accuracy]) -> list[Row]:
    """The table's rows, in milliseconds: per hold, both durations, both overheads over the
    target's own time, and the distance between the two medians."""
    table = []
    for r in results:
        d = f"d={r.hold * _MS:g}"
        own = statistics.median(r.target) * _MS
        total = statistics.median(r.step_total)
        journey = statistics.median(r.journey)
        theirs = statistics.median(r.blackbox) * _MS
        table.append(Row(f"step total (ms), {d}, target's own {own:.2f}", total * _MS, theirs))
        if abs(journey - total) >= JOURNEY_APART_SECONDS:
            table.append(Row(f"journey duration (ms), {d}", journey * _MS, theirs))
        table.append(
            Row(
                f"carewatch - target's own time (ms), {d}",
                r.overhead * _MS,
                r.blackbox_overhead * _MS,
                goal=f"<= {GOAL_OVERHEAD_SECONDS * _MS:g} ms",
                met=r.overhead <= GOAL_OVERHEAD_SECONDS,
            )
        )
        table.append(
            Row(
                f"|carewatch - blackbox| (ms), {d}",
                r.difference * _MS,
                goal=f"<= {GOAL_DIFFERENCE_SECONDS * _MS:g} ms",
                met=r.difference <= GOAL_DIFFERENCE_SECONDS,
            )
        )
    return table


def _holds(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__)
    parser.add_argument("--probes", type=int, default=PROBES, help="of each side, per hold")
    parser.add_argument(
        "--holds",
        type=_holds,
        default=HOLDS_MS,
        help="milliseconds the target holds each request, comma-separated",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        results = run(args.probes, holds=args.holds, workdir=workdir)
    title = (
        f"B4 measurement accuracy: {args.probes} probes of each side per hold d, alternating, "
        "medians; anchor: blackbox_exporter"
    )
    print_table(title, rows(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
