"""Soak: many journeys against democare with random faults, watching the exporter's memory and
file descriptors over time.

    python -m bench.soak [--journeys 1000] [--seconds 600] [--interval 15] [--sample 10]
                         [--warmup 60] [--seed 1]

democare and ``carewatch serve`` run as child processes, as in production: the exporter probes
democare's app (login, then the account), help search, store locator and SMS (a text, then the
reply on ``/callbacks/sms-inbound``, signed), a quarter of the journeys each. Time runs in
cycles of ``--sample`` seconds: a random fault (``down``, ``slow``, ``error``, ``flaky``,
``garbage``, or ``no_reply`` for SMS) is put on a random channel for the first half of a cycle
and lifted, and at the end of the cycle, when every run the fault slowed has ended, the
exporter's RSS and open descriptors are read from /proc. The anchor is the sample at the end of
``--warmup``: after it, RSS must grow less than 5 %, and descriptors stay flat (the later half
of the samples at most FD_SLACK above the earlier half). Runs and failures come from the
exporter's own /metrics, to show probing went on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench._journeys import free_port
from bench._proc import rss_bytes
from bench._table import Row, goals_met, print_table

#: RSS may grow by less than this fraction after warm-up.
GOAL_RSS_GROWTH: Final = 0.05
#: Descriptors "stay flat": the most in the later half of the samples after warm-up at most
#: this many above the most in the earlier half (sockets in flight at a sample's instant move
#: within a band of about ten here; a leak of one per run would climb by thousands).
FD_SLACK: Final = 16
DEFAULT_JOURNEYS: Final = 1000
DEFAULT_SECONDS: Final = 600.0
DEFAULT_INTERVAL: Final = 15.0
DEFAULT_SAMPLE: Final = 10.0
DEFAULT_WARMUP: Final = 60.0
JOURNEY_TIMEOUT: Final = "3s"
#: democare's ``slow`` fault: past the journeys' timeout, so runs time out.
SLOW_MS: Final = 4000
START_SECONDS: Final = 30.0
HTTP_TIMEOUT_SECONDS: Final = 10.0
SECRET: Final = "soak-webhook-secret"
#: The faults drawn from, by channel: every mode democare has for it that a journey here sees.
FAULTS: Final = {
    "app": ("down", "slow", "error", "flaky", "garbage"),
    "self_service": ("down", "slow", "error", "flaky", "garbage"),
    "locator": ("down", "slow", "error", "flaky"),
    "sms": ("no_reply", "error"),
}
_MIB: Final = 1024 * 1024
_LOOPBACK: Final = "127.0.0.1"


def _journeys(kind: str, count: int) -> dict[str, Any]:
    """A channel of ``count`` journeys of one ``kind`` (its key in FAULTS)."""
    by_kind: dict[str, list[dict[str, Any]]] = {
        "app": [
            {
                "name": "login",
                "method": "POST",
                "url": "${base}/app/v1/login",
                "json": {"username": "demo@carewatch.example", "password": "demo-password"},
                "capture": {"token": {"json": "$.token"}},
            },
            {
                "name": "account",
                "url": "${base}/app/v1/account",
                "headers": {"Authorization": "Bearer ${token}"},
            },
        ],
        "self_service": [
            {
                "name": "search",
                "url": "${base}/help/v1/search?q=roaming",
                "expect": {"json": [{"path": "$.total", "gt": 0}]},
            }
        ],
        "locator": [{"name": "nearby", "url": "${base}/stores/v1/nearby?lat=48.8566&lon=2.3522"}],
        "sms": [
            {
                "name": "send",
                "method": "POST",
                "url": "${base}/sms/v1/messages",
                "json": {"from": "+33600000000", "to": "+33900000000", "body": "ref ${run_id}"},
                "expect": {"status": 202},
            },
            {
                "name": "reply",
                "await": {
                    "callback": "sms-inbound",
                    "within": "2s",
                    "match": [{"path": "$.Body", "contains": "${run_id}"}],
                },
            },
        ],
    }
    steps = by_kind[kind]
    return {
        "name": kind,
        "kind": kind,
        "team": "soak",
        "journeys": [{"name": f"{kind}-{n}", "steps": steps} for n in range(count)],
    }


def config_text(journeys: int, *, interval: float, care: str) -> str:
    """The soak's checks.yaml: ``journeys`` journeys, a quarter of each kind."""
    kinds = list(FAULTS)
    counts = [journeys // len(kinds) + (i < journeys % len(kinds)) for i in range(len(kinds))]
    document = {
        "defaults": {
            "interval": f"{interval:g}s",
            "timeout": JOURNEY_TIMEOUT,
            "retries": 0,
            "location": "soak",
        },
        "variables": {"base": f"http://{care}"},
        "callbacks": {
            "sms-inbound": {
                "signature": {
                    "header": "X-Democare-Signature",
                    "secret": "${env:SOAK_WEBHOOK_SECRET}",
                    "prefix": "sha256=",
                }
            }
        },
        "channels": [_journeys(k, n) for k, n in zip(kinds, counts, strict=True) if n],
    }
    return yaml.safe_dump(document, sort_keys=False)


def _http(url: str, *, data: bytes | None = None, method: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(url: str, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if _http(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {seconds:g}s")


def open_fds(pid: int) -> int:
    """Descriptors ``pid`` holds open now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _runs(metrics: str) -> tuple[float, float]:
    """Successful and failed runs so far, over every journey."""
    ok = failed = 0.0
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == "carewatch_journey_runs_total":
                if s.labels.get("result") == "success":
                    ok += s.value
                else:
                    failed += s.value
    return ok, failed


@dataclass
class Sample:
    at: float  # seconds since the soak began
    rss: int
    fds: int


@dataclass
class Soak:
    """What a soak measured: samples over time, and the runs the exporter counted."""

    journeys: int
    seconds: float
    warmup: float
    samples: list[Sample] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    runs: float = 0.0
    failed: float = 0.0

    @property
    def anchor(self) -> Sample:
        """The first sample at or after the warm-up."""
        return next(s for s in self.samples if s.at >= self.warmup)

    @property
    def after(self) -> list[Sample]:
        return [s for s in self.samples if s.at >= self.warmup]

    @property
    def rss_growth(self) -> float:
        """The last sample's RSS against the anchor's, as a fraction."""
        return self.samples[-1].rss / self.anchor.rss - 1

    @property
    def fd_growth(self) -> int:
        """The most descriptors in the later half of the samples after warm-up, minus the most
        in the earlier half: a leak of one per run climbs; sockets in flight at a sample's
        instant only move within a band (their max is compared, not one noisy sample)."""
        after = self.after
        half = len(after) // 2
        early, late = after[: max(half, 1)], after[max(half, 1) :] or after[-1:]
        return max(s.fds for s in late) - max(s.fds for s in early)


class _Children:
    """democare and the exporter, as child processes, stopped on exit."""

    def __init__(self, workdir: Path, journeys: int, interval: float) -> None:
        self.care = f"{_LOOPBACK}:{free_port()}"
        self.agent = f"{_LOOPBACK}:{free_port()}"
        config = workdir / "checks.yaml"
        config.write_text(config_text(journeys, interval=interval, care=self.care))
        env = {**os.environ, "SOAK_WEBHOOK_SECRET": SECRET}
        webhook = f"sms=http://{self.agent}/callbacks/sms-inbound"
        democare = ["-m", "democare", "--listen", self.care, "--smtp-listen", "off"]
        democare += ["--webhook", webhook, "--webhook-secret", SECRET, "--log-level", "ERROR"]
        exporter = ["-m", "carewatch", "serve", "--config", str(config)]
        exporter += ["--listen", self.agent, "--log-level", "ERROR"]
        self.procs = [
            subprocess.Popen(
                [sys.executable, *democare],
                stdout=(workdir / "democare.log").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            ),
            subprocess.Popen(
                [sys.executable, *exporter],
                stdout=(workdir / "exporter.log").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            ),
        ]

    @property
    def exporter_pid(self) -> int:
        return self.procs[1].pid

    def __enter__(self) -> _Children:
        try:
            _wait(f"http://{self.care}/healthz", START_SECONDS, "democare")
            _wait(f"http://{self.agent}/-/ready", START_SECONDS, "the exporter")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(HTTP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(
    journeys: int,
    *,
    seconds: float,
    interval: float = DEFAULT_INTERVAL,
    sample: float = DEFAULT_SAMPLE,
    warmup: float = DEFAULT_WARMUP,
    seed: int = 1,
    workdir: str | None = None,
) -> Soak:
    """Soak the exporter for ``seconds`` and return what it measured."""
    rng = random.Random(seed)
    soak = Soak(journeys, seconds, warmup)
    with (
        tempfile.TemporaryDirectory(dir=workdir) as tmp,
        _Children(Path(tmp), journeys, interval) as children,
    ):
        faults = f"http://{children.care}/_faults"
        began = time.monotonic()
        cycle = 0
        while (cycle_start := began + cycle * sample) < began + seconds:
            channel = rng.choice(list(FAULTS))
            fault: dict[str, Any] = {"channel": channel, "mode": rng.choice(FAULTS[channel])}
            if fault["mode"] == "slow":
                fault["delay_ms"] = SLOW_MS
            status, body = _http(faults, data=json.dumps(fault).encode(), method="POST")
            if status != 200:
                raise RuntimeError(f"democare refused the fault {fault}: {body}")
            soak.faults.append(f"{channel}:{fault['mode']}")
            time.sleep(max(0.0, cycle_start + sample / 2 - time.monotonic()))
            _http(faults, method="DELETE")
            cycle += 1
            time.sleep(max(0.0, began + cycle * sample - time.monotonic()))
            pid = children.exporter_pid
            if children.procs[1].poll() is not None:
                raise RuntimeError("the exporter exited during the soak")
            soak.samples.append(Sample(time.monotonic() - began, rss_bytes(pid), open_fds(pid)))
        soak.runs, soak.failed = _runs(_http(f"http://{children.agent}/metrics")[1])
    return soak


def rows(soak: Soak) -> list[Row]:
    anchor = soak.anchor
    rss_met = soak.rss_growth < GOAL_RSS_GROWTH
    return [
        Row("runs (failed)", f"{soak.runs + soak.failed:.0f} ({soak.failed:.0f})"),
        Row("faults injected", f"{len(soak.faults)}"),
        Row(f"RSS after warm-up ({anchor.at:.0f} s, MiB)", anchor.rss / _MIB, digits=1),
        Row("RSS at the end (MiB)", soak.samples[-1].rss / _MIB, digits=1),
        Row(
            "RSS growth after warm-up (%)",
            soak.rss_growth * 100,
            goal=f"< {GOAL_RSS_GROWTH * 100:g}",
            met=rss_met,
        ),
        Row(
            "descriptors after warm-up (fewest, most)",
            f"{min(s.fds for s in soak.after)}, {max(s.fds for s in soak.after)}",
        ),
        Row(
            "descriptors, growth (late max - early max)",
            f"{soak.fd_growth}",
            goal=f"<= {FD_SLACK}",
            met=soak.fd_growth <= FD_SLACK,
        ),
    ]


def timeline(soak: Soak) -> str:
    """One line per sample: seconds, RSS in MiB, descriptors."""
    lines = ["  time (s)   RSS (MiB)   descriptors"]
    lines += [f"{s.at:>10.0f}{s.rss / _MIB:>12.1f}{s.fds:>14}" for s in soak.samples]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--journeys", type=int, default=DEFAULT_JOURNEYS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL)
    parser.add_argument("--sample", type=float, default=DEFAULT_SAMPLE)
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.warmup >= args.seconds:
        parser.error("--warmup must be shorter than --seconds")
    soak = run(
        args.journeys,
        seconds=args.seconds,
        interval=args.interval,
        sample=args.sample,
        warmup=args.warmup,
        seed=args.seed,
    )
    table = rows(soak)
    print_table(
        f"Soak: {soak.journeys} journeys against democare with random faults, "
        f"{soak.seconds:g} s, sampled every {args.sample:g} s",
        table,
    )
    print(timeline(soak), flush=True)
    met = goals_met(table)
    print("verdict:", "met" if met else "NOT MET", flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
