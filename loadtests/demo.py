"""``make loadtest``: a short headless load test of checks.yaml against a fresh democare.

::

    python -m loadtests.demo [--listen 127.0.0.1:8901] [--users 20] [--spawn-rate 10]
                             [--run-time 30s] [--fault JSON ...] [-- LOCUST ARGUMENTS]

Starts democare on ``--listen`` (loopback), injects the faults given (``--fault '{"channel":
"app", "mode": "slow", "delay_ms": 3000}'``), runs ``locust -f loadtests/locustfile.py``
headless against it, stops democare, and exits with Locust's exit code: 0 when every threshold
held, 99 when one broke. The JUnit and JSON verdicts are written to ``.demo/loadtest-junit.xml``
and ``.demo/loadtest-verdict.json``. Every wait is bounded.

This runs Locust as a process: it imports neither locust nor gevent.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from loadtests.command import CHECKS_VARIABLE, locust_command
from probes import Exit
from probes.model import parse_duration

REPO: Final = Path(__file__).resolve().parent.parent
OUT: Final = REPO / ".demo"
DEFAULT_LISTEN: Final = "127.0.0.1:8901"
#: democare must answer /healthz within this, or the load test does not start.
START_SECONDS: Final = 15.0
#: Locust's --stop-timeout: users finish the journey run in progress, so it counts.
STOP_SECONDS: Final = 10
#: Beyond --run-time and --stop-timeout, what Locust may take to start and stop.
MARGIN_SECONDS: Final = 60.0
POLL_SECONDS: Final = 0.1
HTTP_SECONDS: Final = 5.0


def main(argv: list[str] | None = None) -> int:
    args, extra = _arguments(argv)
    OUT.mkdir(exist_ok=True)
    base = f"http://{args.listen}"
    log = OUT / "loadtest-democare.log"
    with log.open("wb") as output:
        democare = subprocess.Popen(
            [sys.executable, "-m", "democare", "--listen", args.listen, "--smtp-listen", "off"],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            if not _healthy(base, democare):
                sys.stderr.write(f"democare did not start on {args.listen}; see {log}\n")
                return Exit.FAILED
            for fault in args.fault:
                if not _inject(base, fault):
                    return Exit.FAILED
            return _locust(args, extra, base)
        finally:
            _stop(democare)


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.demo", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="democare's HOST:PORT")
    parser.add_argument("--checks", default="checks.yaml", help="the checks file")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--run-time", default="30s")
    parser.add_argument(
        "--fault", action="append", default=[], help="a democare fault, as JSON (repeatable)"
    )
    args, extra = parser.parse_known_args(argv)
    if not args.listen.startswith(("127.", "[::1]", "localhost:")):
        parser.error(f"--listen: the demo load test stays on loopback; got {args.listen!r}")
    try:
        args.seconds = parse_duration(args.run_time)
    except ValueError as exc:
        parser.error(f"--run-time: {exc}")
    return args, [a for a in extra if a != "--"]


def _healthy(base: str, democare: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and democare.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=HTTP_SECONDS) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_SECONDS)
    return False


def _inject(base: str, fault: str) -> bool:
    request = urllib.request.Request(
        f"{base}/_faults",
        data=fault.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_SECONDS) as response:
            sys.stderr.write(f"democare fault in force: {json.loads(response.read())['faults']}\n")
            return True
    except urllib.error.HTTPError as exc:
        sys.stderr.write(f"democare refused the fault {fault}: {exc.read().decode()}\n")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        sys.stderr.write(f"cannot inject the fault {fault}: {exc}\n")
    return False


def _locust(args: argparse.Namespace, extra: list[str], base: str) -> int:
    environ = {
        **os.environ,
        CHECKS_VARIABLE: args.checks,
        "DEMOCARE_URL": base,
        "DEMOCARE_WS_URL": f"ws://{args.listen}",
    }
    command = locust_command(
        [
            "--headless",
            "--users",
            str(args.users),
            "--spawn-rate",
            f"{args.spawn_rate:g}",
            "--run-time",
            f"{args.seconds:g}s",
            "--stop-timeout",
            str(STOP_SECONDS),
            "--host",
            base,
            "--only-summary",
            "--thresholds-junit",
            str(OUT / "loadtest-junit.xml"),
            "--thresholds-json",
            str(OUT / "loadtest-verdict.json"),
            *extra,
        ]
    )
    limit = args.seconds + STOP_SECONDS + MARGIN_SECONDS
    try:
        return subprocess.run(command, cwd=REPO, env=environ, timeout=limit, check=False).returncode
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"locust did not finish within {limit:g}s; stopped\n")
        return Exit.FAILED


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
