"""``make demo``: start democare and the exporter in the background and show that they work.

    python -m democare.launch start [--democare HOST:PORT] [--exporter HOST:PORT]
    python -m democare.launch stop

``start`` waits until every journey of checks.yaml has reported, prints the URLs and each
journey's state, and leaves both processes running (logs and pids in ``.demo/``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from probes import ConfigError
from probes.model import load_config

STATE: Final = Path(".demo")
READY_TIMEOUT_SECONDS: Final = 20.0
POLL_SECONDS: Final = 0.5
STOP_GRACE_SECONDS: Final = 5.0
SERVICES: Final = ("democare", "exporter")


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _pid(name: str) -> int | None:
    path = STATE / f"{name}.pid"
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (STATE / f"{name}.log").open("wb")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    (STATE / f"{name}.pid").write_text(str(process.pid))
    return process


def _wait(url: str, process: subprocess.Popen[bytes], name: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (STATE / f"{name}.log").read_text(errors="replace")[-2000:]
            print(f"{name} exited with status {process.returncode}:\n{tail}", file=sys.stderr)
            return False
        if _get(url) is not None:
            return True
        time.sleep(POLL_SECONDS)
    print(f"{name} did not answer {url} within {READY_TIMEOUT_SECONDS:g}s", file=sys.stderr)
    return False


def _journey_states(metrics_url: str) -> dict[str, tuple[float, str]]:
    """journey id -> (up, failing step and reason) from the exporter's /metrics."""
    text = _get(metrics_url) or ""
    states: dict[str, tuple[float, str]] = {}
    why: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = f"{sample.labels.get('channel')}/{sample.labels.get('journey')}"
            if sample.name == "carewatch_journey_up":
                states[key] = (sample.value, "")
            elif sample.name == "carewatch_step_failure_info":
                why[key] = f"step {sample.labels['step']}: {sample.labels['reason']}"
            elif (
                sample.name == "carewatch_step_duration_seconds"
                and sample.labels.get("phase") in ("delivery", "first_reply")
                and key not in why
            ):
                what = "delivered in" if sample.labels["phase"] == "delivery" else "bot replied in"
                why[key] = f"{what} {sample.value * 1000:.0f} ms"
    return {k: (up, why.get(k, "")) for k, (up, _) in states.items()}


def _environment(democare: str, smtp: str) -> dict[str, str]:
    """What checks.yaml reads to find the demo stack (see its ``variables``)."""
    return {
        **os.environ,
        "DEMOCARE_URL": f"http://{democare}",
        "DEMOCARE_WS_URL": f"ws://{democare}",
        "DEMOCARE_SMTP": smtp,
        "DEMOCARE_SMTP_CA": str(STATE / "smtp-ca.pem"),
    }


def start(democare: str, exporter: str, config_path: str, smtp: str) -> int:
    env = _environment(democare, smtp)
    try:
        config = load_config(config_path, environ=env)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop(quiet=True)
    STATE.mkdir(exist_ok=True)
    receiver = f"http://{exporter}/callbacks"
    care = _spawn(
        "democare",
        [
            *(sys.executable, "-m", "democare", "--listen", democare),
            *("--smtp-listen", smtp, "--smtp-cert-out", env["DEMOCARE_SMTP_CA"]),
            *("--webhook", f"sms={receiver}/sms-inbound"),
            *("--webhook", f"push={receiver}/push-receipts"),
            *("--webhook", f"email={receiver}/email-inbound"),
        ],
        env,
    )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    if not _wait(f"http://{democare}/healthz", care, "democare", deadline):
        stop(quiet=True)
        return 1
    agent = _spawn(
        "exporter",
        [sys.executable, "exporter.py", "--config", config_path, "--listen", exporter],
        env,
    )
    if not _wait(f"http://{exporter}/-/ready", agent, "exporter", deadline):
        stop(quiet=True)
        return 1
    wanted = {j.id for j in config.journeys}
    longest = max(j.interval + j.timeout * (j.retries + 1) for j in config.journeys)
    print(f"waiting for {len(wanted)} journeys to report (at most {longest:g}s)...")
    until = time.monotonic() + longest + READY_TIMEOUT_SECONDS
    states: dict[str, tuple[float, str]] = {}
    while time.monotonic() < until and not wanted <= states.keys():
        time.sleep(POLL_SECONDS)
        states = _journey_states(f"http://{exporter}/metrics")
    print(
        f"\ncarewatch demo is running.\n"
        f"  democare (demo care backend)  http://{democare}/healthz, SMTP {smtp}\n"
        f"  exporter status page          http://{exporter}/\n"
        f"  exporter metrics              http://{exporter}/metrics\n"
        f"  run a journey now             http://{exporter}/probe?journey=app/login\n"
        f"  break a channel               curl -X POST http://{democare}/_faults "
        f'-d \'{{"channel": "app", "mode": "error"}}\'\n'
        f"  repair it                     curl -X DELETE http://{democare}/_faults\n"
        f"  logs                          {STATE}/democare.log, {STATE}/exporter.log\n"
        f"  stop                          make demo-stop\n"
    )
    for journey_id in sorted(wanted):
        up, why = states.get(journey_id, (None, ""))
        label = (
            {1.0: "up", 0.0: "DOWN"}.get(up, "no result yet") if up is not None else "no result yet"
        )
        print(f"  {journey_id:36} {label} {why}")
    return 0 if all(states.get(j, (0.0, ""))[0] == 1.0 for j in wanted) else 1


def stop(*, quiet: bool = False) -> int:
    stopped = []
    for name in SERVICES:
        pid = _pid(name)
        if pid is None:
            continue
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        (STATE / f"{name}.pid").unlink(missing_ok=True)
        stopped.append(name)
    if not quiet:
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m democare.launch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("start")
    go.add_argument("--democare", default="127.0.0.1:8900")
    go.add_argument("--exporter", default="127.0.0.1:9640")
    go.add_argument("--config", default="checks.yaml")
    go.add_argument("--smtp", default="127.0.0.1:8925")
    sub.add_parser("stop")
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.democare, args.exporter, args.config, args.smtp)
    return stop()


if __name__ == "__main__":
    sys.exit(main())
