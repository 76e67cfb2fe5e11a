"""Locust overhead (B5): the journey-driven Locust user against a hand-written FastHttpUser.

    python -m bench.locust_overhead [--users 10] [--seconds 10] [--repeat 3]

Both sides make the same request: GET the loopback target (``bench._target``, its own process),
a 200 is a success and anything else a failure, reported through ``catch_response``, with no
wait between requests and the same client settings. Ours is ``loadtests/locustfile.py`` running
a generated checks.yaml with one single-step journey (``loadtest: {wait: 0s}``); the anchor is a
hand-written locustfile whose FastHttpUser does that step by hand. Each side runs headless in its
own ``python -m locust`` process, with the same users, spawn rate and run time; the sides
alternate (ours first, then the anchor first, ...) and each repetition is one pair.

Requests/s counts the step's entry only (``GET bench/get/get`` on both sides), over the span from
its first request to its last (as carewatch's ``rps`` threshold does). The ``JOURNEY`` entry the
journey user adds per run is not a request: leaving it out charges its cost to carewatch, where
it belongs. The figures are medians of the repetitions; the ratio is the median of the
per-pair ratios ours / anchor, since the two runs of a pair are the closest in time on a shared
machine.

Locust runs every user of a process on one thread, so a Locust process uses one core at most;
the target takes the other core of a 2-core machine. With few users Locust runs near a full core,
not at it: part of the time every user waits for the target, and requests/s then understates
what the extra work costs. ``Locust CPU per request`` does not: Locust's CPU time, read from
/proc while requests flow, over the step requests it made. The target's CPU row shows whether
the target, not Locust, was the bottleneck. A run is valid only if no entry failed on either
side (failures include the ``JOURNEY`` entry's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from bench._proc import cpu_seconds
from bench._table import Row, print_table
from bench._target import Target
from probes.runs import DEFAULT_LIMITS

GOAL_RATIO: Final = 0.9
DEFAULT_USERS: Final = 10
DEFAULT_SECONDS: Final = 10
DEFAULT_REPEAT: Final = 3
#: Locust's start-up and stop around its run time, on a loaded 2-core machine.
MARGIN_SECONDS: Final = 30.0
#: Locust's ``--stop-timeout``: each user may finish its request when the run time is over.
STOP_TIMEOUT_SECONDS: Final = 1
KILL_WAIT_SECONDS: Final = 5.0
#: How often the CPU time of Locust and of the target is read while a run goes.
SAMPLE_SECONDS: Final = 0.25
#: The journey's (and the anchor's client's) timeout, in seconds.
TIMEOUT_SECONDS: Final = 5
CHANNEL: Final = "bench"
JOURNEY: Final = "get"
STEP: Final = "get"
#: The Locust entry of the step, the same on both sides.
ENTRY: Final = f"{CHANNEL}/{JOURNEY}/{STEP}"
METHOD: Final = "GET"
REPO: Final = Path(__file__).resolve().parent.parent
LOCUSTFILE: Final = REPO / "loadtests" / "locustfile.py"
_US: Final = 1_000_000
OURS: Final = "carewatch"
ANCHOR: Final = "anchor"
_ANCHOR_LOCUSTFILE: Final = '''\
"""B5's anchor: a FastHttpUser doing by hand what the journey bench/get does."""

from locust import FastHttpUser, between, task


class Anchor(FastHttpUser):
    host = {origin!r}
    wait_time = between(0, 0)
    network_timeout = {timeout}
    connection_timeout = {timeout}
    max_redirects = {max_redirects}
    max_retries = 0
    insecure = False

    @task
    def get(self):
        with self.client.get({url!r}, name={name!r}, catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"expected status 200, got {{response.status_code}}")
'''


def _checks_text(url: str) -> str:
    journey = {
        "name": JOURNEY,
        "loadtest": {"wait": "0s", "thresholds": []},
        "steps": [{"name": STEP, "url": url, "expect": {"status": 200}}],
    }
    channel = {"name": CHANNEL, "kind": "app", "team": "bench", "journeys": [journey]}
    defaults = {"timeout": f"{TIMEOUT_SECONDS}s", "retries": 0, "location": "bench"}
    return yaml.safe_dump({"defaults": defaults, "channels": [channel]})


def _anchor_text(url: str) -> str:
    parts = urlsplit(url)
    return _ANCHOR_LOCUSTFILE.format(
        origin=f"{parts.scheme}://{parts.netloc}",
        timeout=TIMEOUT_SECONDS,
        max_redirects=DEFAULT_LIMITS.redirects,  # as the journey user's
        url=url,
        name=ENTRY,
    )


# --- one Locust run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One headless Locust run: the step's requests, every failure, and the CPU it took."""

    requests: int
    failures: int  # every entry's, the JOURNEY entry included
    span: float  # seconds from the step's first request to its last
    locust_cpu: float  # share of a core, while requests flowed
    target_cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.span if self.span > 0 else 0.0

    @property
    def cpu_per_request(self) -> float:
        """Seconds of Locust's CPU a step request took."""
        return self.locust_cpu / self.rps if self.rps > 0 else math.nan


@dataclass(frozen=True)
class _Tick:
    at: float  # time.time(), as Locust's timestamps
    locust: float  # CPU seconds so far
    target: float


def _locust(
    locustfile: Path,
    *,
    users: int,
    seconds: int,
    workdir: Path,
    label: str,
    environ: dict[str, str],
    target_pid: int,
) -> Sample:
    """Run ``locustfile`` headless for ``seconds``; killed if it overruns by ``MARGIN_SECONDS``."""
    stats, log = workdir / f"{label}-stats", workdir / f"{label}.log"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_SECONDS),
        "--json-file",
        str(stats),
        "--only-summary",
    ]
    ticks: list[_Tick] = []
    deadline = time.monotonic() + seconds + MARGIN_SECONDS
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=environ, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    ticks.append(
                        _Tick(time.time(), cpu_seconds(process.pid), cpu_seconds(target_pid))
                    )
                except OSError:  # a process ended between poll and read
                    break
                time.sleep(SAMPLE_SECONDS)
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            limit = seconds + MARGIN_SECONDS
            raise RuntimeError(f"{label}: locust overran {limit:g} s and was killed") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(KILL_WAIT_SECONDS)
    try:
        entries: list[dict[str, Any]] = json.loads(stats.with_suffix(".json").read_text())
    except FileNotFoundError:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{label}: locust exited {process.returncode}:\n{tail}") from None
    step = [e for e in entries if e["method"] == METHOD and e["name"] == ENTRY]
    if not step:
        raise RuntimeError(f"{label}: no {METHOD} {ENTRY} entry in {stats}.json")
    first, last = step[0]["start_time"], step[0]["last_request_timestamp"] or 0.0
    return Sample(
        requests=step[0]["num_requests"],
        failures=sum(e["num_failures"] for e in entries),
        span=max(0.0, last - first),
        locust_cpu=_share(ticks, first, last, lambda t: t.locust),
        target_cpu=_share(ticks, first, last, lambda t: t.target),
    )


def _share(ticks: list[_Tick], start: float, end: float, cpu: Callable[[_Tick], float]) -> float:
    """CPU seconds per second between the first and last tick inside [start, end]."""
    inside = [t for t in ticks if start <= t.at <= end]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return math.nan
    return (cpu(inside[-1]) - cpu(inside[0])) / (inside[-1].at - inside[0].at)


# --- the benchmark ------------------------------------------------------------------------


def run(*, users: int, seconds: int, repeat: int, workdir: str) -> dict[str, float]:
    """Run ``repeat`` pairs of Locust runs, alternating which side goes first; return medians.

    ``ratio`` is the median of the pairs' ratios, ours / anchor.
    """
    root = Path(workdir)
    samples: dict[str, list[Sample]] = {OURS: [], ANCHOR: []}
    target = Target()
    with target as url:
        checks, anchor = root / "bench-checks.yaml", root / "anchor_locustfile.py"
        checks.write_text(_checks_text(url), encoding="utf-8")
        anchor.write_text(_anchor_text(url), encoding="utf-8")
        sides = {
            OURS: (LOCUSTFILE, {**os.environ, "CAREWATCH_CHECKS": str(checks)}),
            ANCHOR: (anchor, dict(os.environ)),
        }
        for n in range(repeat):
            order = (OURS, ANCHOR) if n % 2 == 0 else (ANCHOR, OURS)
            for side in order:
                locustfile, environ = sides[side]
                samples[side].append(
                    _locust(
                        locustfile,
                        users=users,
                        seconds=seconds,
                        workdir=root,
                        label=f"{side}-{n}",
                        environ=environ,
                        target_pid=target.pid,
                    )
                )
    ours, theirs = samples[OURS], samples[ANCHOR]
    return {
        "users": users,
        "seconds": seconds,
        "repeat": repeat,
        "ours": statistics.median(s.rps for s in ours),
        "anchor": statistics.median(s.rps for s in theirs),
        "ratio": statistics.median(
            a.rps / b.rps if b.rps else 0.0 for a, b in zip(ours, theirs, strict=True)
        ),
        "ours_requests": sum(s.requests for s in ours),
        "anchor_requests": sum(s.requests for s in theirs),
        "ours_failures": sum(s.failures for s in ours),
        "anchor_failures": sum(s.failures for s in theirs),
        "ours_locust_cpu": statistics.median(s.locust_cpu for s in ours),
        "anchor_locust_cpu": statistics.median(s.locust_cpu for s in theirs),
        "ours_cpu_us": statistics.median(s.cpu_per_request * _US for s in ours),
        "anchor_cpu_us": statistics.median(s.cpu_per_request * _US for s in theirs),
        "ours_target_cpu": statistics.median(s.target_cpu for s in ours),
        "anchor_target_cpu": statistics.median(s.target_cpu for s in theirs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locust_overhead", description=__doc__)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--seconds", type=int, default=DEFAULT_SECONDS, help="per Locust run")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="pairs of runs")
    args = parser.parse_args(argv)
    if min(args.users, args.seconds, args.repeat) < 1:
        parser.error("--users, --seconds and --repeat must be at least 1")
    with tempfile.TemporaryDirectory() as workdir:
        r = run(users=args.users, seconds=args.seconds, repeat=args.repeat, workdir=workdir)
    failed = int(r["ours_failures"] + r["anchor_failures"])
    rows = [
        Row(
            "requests/s",
            r["ours"],
            anchor=r["anchor"],
            ratio=r["ratio"],
            goal=f">= {GOAL_RATIO:g}x",
            met=r["ratio"] >= GOAL_RATIO,
            digits=0,
        ),
        Row("step requests, all runs", f"{r['ours_requests']:.0f}", f"{r['anchor_requests']:.0f}"),
        Row(
            "failures, all runs and entries",
            f"{r['ours_failures']:.0f}",
            f"{r['anchor_failures']:.0f}",
            goal="0 on both sides",
            met=failed == 0,
        ),
        Row("Locust CPU per request (us)", r["ours_cpu_us"], r["anchor_cpu_us"], digits=0),
        Row("Locust CPU (share of a core)", r["ours_locust_cpu"], r["anchor_locust_cpu"]),
        Row("target CPU (share of a core)", r["ours_target_cpu"], r["anchor_target_cpu"]),
    ]
    print_table(
        f"B5 Locust overhead: {args.users} users, no wait, {args.seconds:g} s a run, "
        f"median of {args.repeat} alternated pairs",
        rows,
    )
    if failed:
        print(f"run NOT valid: {failed} failures (see the failures row)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
