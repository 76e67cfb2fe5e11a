"""CPU per probe (B1): carewatch against blackbox_exporter, probing the same target at the
same rate.

    python -m bench.cpu [--rate 200] [--seconds 20] [--warmup 5] [--repeat 3]

One probe is a single-step HTTP GET on a fresh connection, with its phases timed and its
metrics recorded. The target (``bench._target``) is its own process.

- carewatch is ``exporter.py``, run as a process with ``rate x interval`` one-step journeys, so
  its scheduler, engine and exposition do what they do in production. Probes are counted from
  its ``carewatch_journey_runs_total``; its CPU is read from /proc after the first count and
  before the last, so the two scrapes are not charged to it (B3 measures scrapes).
- blackbox_exporter is driven through ``/probe`` by this process at the same rate, as
  Prometheus drives it: each probe builds its registry and renders its text, which is its cost.
- The bare aiohttp row is a third process doing ``ClientSession().get()`` on a fresh connection
  at the same rate: the floor of any aiohttp prober, shown for scale.

The three take turns (never at once: there are 2 cores). Each figure is the median of
``--repeat`` windows of CPU seconds per 1,000 probes; the ratio is carewatch / blackbox.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import aiohttp

from bench._blackbox import Blackbox
from bench._journeys import checks_text, free_port
from bench._proc import cpu_seconds
from bench._table import Row, print_table
from bench._target import Target

GOAL_RATIO: Final = 0.5
REPO: Final = Path(__file__).resolve().parent.parent
INTERVAL_SECONDS: Final = 5.0
JOURNEY_TIMEOUT_SECONDS: Final = 2.0
START_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 10.0
SCRAPE_TIMEOUT_SECONDS: Final = 30.0
#: At most this many probes in flight from the blackbox driver, as a Prometheus would allow.
DRIVER_CONCURRENCY: Final = 64
PER_THOUSAND: Final = 1000
RUNS_TOTAL: Final = "carewatch_journey_runs_total{"
_POLL_SECONDS: Final = 0.1


def config_text(journeys: int, *, interval: float, url: str) -> str:
    """``journeys`` one-step journeys, GET ``url``, every ``interval`` seconds."""
    return checks_text(journeys, interval=interval, url=url, timeout=JOURNEY_TIMEOUT_SECONDS)


# --- carewatch ------------------------------------------------------------------------------


def _scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as r:
        text: str = r.read().decode()
        return text


def _runs(text: str) -> tuple[float, float]:
    """(all runs, failed runs) in an exporter's /metrics text."""
    runs = failed = 0.0
    for line in text.splitlines():
        if line.startswith(RUNS_TOTAL):
            value = float(line.rpartition(" ")[2])
            runs += value
            if 'result="failure"' in line:
                failed += value
    return runs, failed


def measure_carewatch(
    url: str, *, rate: float, seconds: float, warmup: float, workdir: str
) -> dict[str, float]:
    """CPU seconds and probes of one window of ``exporter.py`` probing ``url``."""
    journeys = max(1, round(rate * INTERVAL_SECONDS))
    checks = Path(workdir) / "cpu-checks.yaml"
    checks.write_text(config_text(journeys, interval=INTERVAL_SECONDS, url=url), "utf-8")
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, str(REPO / "exporter.py"), "--config", str(checks)]
    command += ["--listen", address, "--location", "bench", "--log-level", "WARNING"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        _wait_ready(address, process)
        time.sleep(warmup)
        # The count is read at the scrape, the CPU right after it and right before the next:
        # the window of one is the window of the other, give or take a render.
        before = _scrape(address)
        cpu0 = cpu_seconds(process.pid)
        time.sleep(seconds)
        cpu1 = cpu_seconds(process.pid)
        after = _scrape(address)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)
    (runs0, failed0), (runs1, failed1) = _runs(before), _runs(after)
    return {"cpu": cpu1 - cpu0, "probes": runs1 - runs0, "failed": failed1 - failed0}


def _wait_ready(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exporter.py exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{address}/-/ready", timeout=1):
                return
        except OSError:
            time.sleep(_POLL_SECONDS)
    raise RuntimeError(f"exporter.py was not ready within {START_TIMEOUT_SECONDS:g} s")


# --- blackbox_exporter ----------------------------------------------------------------------


async def _drive(
    probe: Callable[[aiohttp.ClientSession], Awaitable[None]], *, rate: float, seconds: float
) -> None:
    """Call ``probe`` ``rate`` times a second for ``seconds``, on a fixed schedule."""
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(DRIVER_CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=DRIVER_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = loop.time()
        for n in range(round(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            await limit.acquire()
            task = asyncio.ensure_future(probe(session))
            task.add_done_callback(lambda _: limit.release())
            tasks.append(task)
        await asyncio.gather(*tasks)


def measure_blackbox(
    url: str, *, rate: float, seconds: float, warmup: float, workdir: str
) -> dict[str, float]:
    """CPU seconds and probes of one window of blackbox_exporter probing ``url``."""
    counts = {"probes": 0.0, "failed": 0.0}

    with Blackbox(workdir) as blackbox:
        probe_url = blackbox.probe_url(url)

        async def probe(session: aiohttp.ClientSession) -> None:
            async with session.get(probe_url) as response:
                text = await response.text()
            counts["probes"] += 1
            if "\nprobe_success 1" not in text:
                counts["failed"] += 1

        asyncio.run(_drive(probe, rate=rate, seconds=warmup))
        counts["probes"] = counts["failed"] = 0.0
        cpu0 = cpu_seconds(blackbox.pid)
        asyncio.run(_drive(probe, rate=rate, seconds=seconds))
        cpu1 = cpu_seconds(blackbox.pid)
    return {"cpu": cpu1 - cpu0, **counts}


# --- bare aiohttp ---------------------------------------------------------------------------


def _bare(conn: Connection, url: str, rate: float, seconds: float, warmup: float) -> None:
    """In its own process: fresh-connection GETs at ``rate``; send back (cpu, probes, failed)."""
    counts = {"probes": 0.0, "failed": 0.0}

    async def probe(_: aiohttp.ClientSession) -> None:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            await response.read()
        counts["probes"] += 1
        if response.status != 200:
            counts["failed"] += 1

    asyncio.run(_drive(probe, rate=rate, seconds=warmup))
    counts["probes"] = counts["failed"] = 0.0
    cpu0 = time.process_time()
    asyncio.run(_drive(probe, rate=rate, seconds=seconds))
    conn.send((time.process_time() - cpu0, counts["probes"], counts["failed"]))


def measure_bare(url: str, *, rate: float, seconds: float, warmup: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_bare, args=(child, url, rate, seconds, warmup), daemon=True)
    process.start()
    try:
        if not parent.poll(warmup + seconds + START_TIMEOUT_SECONDS):
            raise RuntimeError("the bare aiohttp prober did not finish")
        cpu, probes, failed = parent.recv()
    finally:
        process.join(STOP_TIMEOUT_SECONDS)
        if process.is_alive():
            process.kill()
    return {"cpu": cpu, "probes": probes, "failed": failed}


# --- the benchmark --------------------------------------------------------------------------


def _per_thousand(window: dict[str, float]) -> float:
    return window["cpu"] / window["probes"] * PER_THOUSAND if window["probes"] else float("nan")


def run(
    *, rate: float, seconds: float, warmup: float, repeat: int, workdir: str
) -> dict[str, float]:
    """The medians over ``repeat`` turns of the three probers, and their totals."""
    windows: dict[str, list[dict[str, float]]] = {"carewatch": [], "blackbox": [], "bare": []}
    with Target() as url:
        for _ in range(repeat):
            kw = {"rate": rate, "seconds": seconds, "warmup": warmup}
            windows["carewatch"].append(measure_carewatch(url, workdir=workdir, **kw))
            windows["blackbox"].append(measure_blackbox(url, workdir=workdir, **kw))
            windows["bare"].append(measure_bare(url, **kw))
    figures: dict[str, float] = {"rate": rate, "seconds": seconds, "repeat": repeat}
    for name, ws in windows.items():
        figures[name] = statistics.median(_per_thousand(w) for w in ws)
        figures[f"{name}_probes"] = sum(w["probes"] for w in ws)
        figures[f"{name}_failed"] = sum(w["failed"] for w in ws)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="probes per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        r = run(
            rate=args.rate,
            seconds=args.seconds,
            warmup=args.warmup,
            repeat=args.repeat,
            workdir=workdir,
        )
    ratio = r["carewatch"] / r["blackbox"]
    rows = [
        Row(
            "CPU s per 1,000 probes",
            r["carewatch"],
            anchor=r["blackbox"],
            goal=f"<= {GOAL_RATIO:g}x blackbox_exporter",
            met=ratio <= GOAL_RATIO,
            digits=3,
        ),
        Row(
            "bare aiohttp fresh-connection GET (anchor)",
            r["carewatch"],
            anchor=r["bare"],
            digits=3,
        ),
        Row(
            "probes measured (failed)",
            f"{r['carewatch_probes']:.0f} ({r['carewatch_failed']:.0f})",
            anchor=f"{r['blackbox_probes']:.0f} ({r['blackbox_failed']:.0f})",
            goal="0 failed",
            met=r["carewatch_failed"] == 0 and r["blackbox_failed"] == 0,
        ),
    ]
    print_table(
        f"B1 CPU per probe: {args.rate:g} probes/s, {args.seconds:g} s windows, "
        f"median of {args.repeat}; anchor: blackbox_exporter (row 2: bare aiohttp)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
