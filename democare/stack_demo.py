"""``make stack``: the whole alerting chain for a person to watch, pages printed on the terminal.

::

    python -m democare.stack_demo start [--config checks.yaml] [--generated alerts/generated]
        [--democare 127.0.0.1:8910] [--smtp 127.0.0.1:8935] [--exporter 127.0.0.1:9641]
        [--prometheus 127.0.0.1:9090] [--alertmanager 127.0.0.1:9093] [--pager HOST:PORT]
    python -m democare.stack_demo stop

``start`` runs democare, one exporter of checks.yaml, Prometheus with the generated rules
(``GENERATED/rules.yaml``, scraping the exporter as ``alerting.job``), Alertmanager with the
generated ``GENERATED/alertmanager.yaml``, and a pager that prints each notification it gets.
The pager listens where checks.yaml's loopback webhook receiver points (``alerting.receivers``),
so the generated routing reaches it unchanged. ``start`` prints the URLs and a ``curl`` line
that breaks a channel, then prints pages until Ctrl-C, SIGTERM (``stop``), or one of its
processes dies; it stops them all before it returns. Logs, configs, data and pids are in
``.stack/``, and ``stop`` also ends what a ``start`` killed with SIGKILL left behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final
from urllib.parse import urlsplit

from democare._tls import OPENSSL
from democare.launch import INSTALL_OPENSSL, democare_command, environment
from democare.pager import Notification, Pager, describe
from democare.stack import (
    ALERTMANAGER,
    HOST,
    PID_SUFFIX,
    PROMETHEUS,
    STOP_GRACE_SECONDS,
    Stack,
    StackFailed,
    ToolMissing,
    prometheus_config,
    record_pid,
    recorded_pid,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    stop_recorded,
    write_yaml,
)
from probes import Config, ConfigError, Exit
from probes.model import load_config

STATE: Final = Path(".stack")
#: This command's own pid file in STATE, beside its processes'.
SUPERVISOR: Final = "stack"
SMTP_CA: Final = "smtp-ca.pem"
DEFAULT_CONFIG: Final = "checks.yaml"
DEFAULT_GENERATED: Final = "alerts/generated"
DEFAULT_DEMOCARE: Final = "127.0.0.1:8910"
DEFAULT_SMTP: Final = "127.0.0.1:8935"
DEFAULT_EXPORTER: Final = "127.0.0.1:9641"
DEFAULT_PROMETHEUS: Final = "127.0.0.1:9090"
DEFAULT_ALERTMANAGER: Final = "127.0.0.1:9093"
#: Where the pager listens when checks.yaml names no loopback webhook receiver.
DEFAULT_PAGER: Final = "127.0.0.1:9095"
#: A person watches: every few seconds is quick enough, and light on the machine.
SCRAPE_SECONDS: Final = 5.0
EVALUATION_SECONDS: Final = 5.0
WATCH_SECONDS: Final = 0.5
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
BREAK: Final = '{"channel": "app", "mode": "error", "status": 503}'


class _Stopped(Exception):
    """SIGTERM or SIGINT: stop the stack and return."""


def start(
    *,
    config: str,
    generated: Path,
    democare: str,
    smtp: str,
    exporter: str,
    prometheus: str,
    alertmanager: str,
    pager: str | None,
) -> Exit:
    """Run the stack until a signal (``Exit.OK``) or until one of its processes dies or cannot
    start (``Exit.FAILED``); ``Exit.CONFIG`` when checks.yaml or the generated files are
    missing or invalid."""
    state = STATE.resolve()
    env = environment(democare, smtp, smtp_ca=state / SMTP_CA)
    try:
        model = load_config(config, environ=env)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    rules, routing = generated / "rules.yaml", generated / "alertmanager.yaml"
    missing = [str(path) for path in (rules, routing) if not path.is_file()]
    if missing:
        print(
            f"make stack: {' and '.join(missing)} not found: generate them with "
            f"carewatch alerts --config {config} --out {generated}",
            file=sys.stderr,
        )
        return Exit.CONFIG
    try:
        for tool in (PROMETHEUS, ALERTMANAGER):
            tool.path()
    except ToolMissing as exc:
        print(f"make stack: {exc}", file=sys.stderr)
        return Exit.FAILED
    if shutil.which(OPENSSL) is None:
        print(f"make stack: {INSTALL_OPENSSL}", file=sys.stderr)
        return Exit.FAILED
    state.mkdir(exist_ok=True)
    stop(quiet=True)  # a stack started here before
    record_pid(state, SUPERVISOR, os.getpid(), _own_program())
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    stack = Stack(state, env=env)
    listener = Pager(
        host=_host(pager or _pager_address(model)),
        port=_port(pager or _pager_address(model)),
        on_notification=_print,
    )
    try:
        listener.start()
        care = democare_command(democare, smtp, smtp_ca=state / SMTP_CA, exporter=exporter)
        stack.start("democare", care, port=_port(democare), ready="/healthz")
        agent = start_exporter(
            stack,
            "exporter",
            config=Path(config),
            port=_port(exporter),
            location=model.defaults.location,
        )
        manager = start_alertmanager(stack, config=routing, port=_port(alertmanager))
        scraping = prometheus_config(
            job=model.alerting.job,
            targets=[agent.address],
            rule_files=[rules],
            alertmanager=manager.address,
            scrape_interval=SCRAPE_SECONDS,
            evaluation_interval=EVALUATION_SECONDS,
        )
        start_prometheus(
            stack, config=write_yaml(state / "prometheus.yml", scraping), port=_port(prometheus)
        )
        _print_urls(model, democare, smtp, exporter, prometheus, alertmanager, listener.url)
        while all(service.alive() for service in stack.services.values()):
            time.sleep(WATCH_SECONDS)
        for service in stack.services.values():
            if not service.alive():
                print(
                    f"make stack: {service.name} exited with status "
                    f"{service.process.returncode}; the end of {service.log}:\n{service.tail()}",
                    file=sys.stderr,
                )
        return Exit.FAILED
    except _Stopped:
        return Exit.OK
    except (StackFailed, OSError) as exc:
        print(f"make stack: {exc}", file=sys.stderr)
        return Exit.FAILED
    finally:
        # A second Ctrl-C or SIGTERM must not cut the stop short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping the stack...", flush=True)
        stack.close()
        listener.stop()
        (state / f"{SUPERVISOR}{PID_SUFFIX}").unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop(*, quiet: bool = False) -> Exit:
    """End a running ``start`` (it stops its processes), then whatever it left behind."""
    state = STATE.resolve()
    stopped = []
    supervisor = recorded_pid(state, SUPERVISOR)
    if supervisor is not None and supervisor != os.getpid():
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 2 * STOP_GRACE_SECONDS
        while recorded_pid(state, SUPERVISOR) is not None and time.monotonic() < deadline:
            time.sleep(WATCH_SECONDS)
        stopped.append(SUPERVISOR)
    if state.is_dir():
        stopped += [name for name in stop_recorded(state) if name not in stopped]
    if not quiet:
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return Exit.OK


def _print_urls(
    model: Config,
    democare: str,
    smtp: str,
    exporter: str,
    prometheus: str,
    alertmanager: str,
    pager: str,
) -> None:
    policy = model.journeys[0].alert
    print(
        "\ncarewatch alerting stack is running; pages print below.\n"
        f"  democare (demo care backend)  http://{democare}/healthz, SMTP {smtp}\n"
        f"  exporter                      http://{exporter}/\n"
        f"  Prometheus alerts             http://{prometheus}/alerts\n"
        f"  Alertmanager                  http://{alertmanager}/#/alerts\n"
        f"  pager (webhook receiver)      {pager}\n"
        f"  break a channel               curl -X POST http://{democare}/_faults -d '{BREAK}'\n"
        f"  repair it                     curl -X DELETE http://{democare}/_faults\n"
        f"  logs                          {STATE}/*.log\n"
        f"  stop                          Ctrl-C here, or make stack-stop\n"
        f"A journey pages after {policy.failed_runs} failed runs in a row (every "
        f"{model.journeys[0].interval:g}s for {model.journeys[0].id}), and Alertmanager waits "
        f"group_wait ({model.alerting.group_wait:g}s) to group what comes with it.\n",
        flush=True,
    )


def _print(notification: Notification) -> None:
    print(f"{describe(notification)}\n", flush=True)


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _pager_address(model: Config) -> str:
    """``HOST:PORT`` of checks.yaml's first loopback webhook receiver, else the default."""
    for receiver in model.alerting.receivers.values():
        if receiver.webhook is not None:
            url = urlsplit(receiver.webhook.url)
            if url.hostname in LOOPBACK and url.port is not None:
                return f"{url.hostname}:{url.port}"
    return DEFAULT_PAGER


def _host(address: str) -> str:
    return address.rpartition(":")[0].strip("[]") or HOST


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def _own_program() -> str:
    """This process's program as /proc shows it (what ``recorded_pid`` compares)."""
    try:
        return Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return sys.executable


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m democare.stack_demo",
        description="The alerting stack for a person to watch: democare, an exporter, "
        "Prometheus with the generated rules, Alertmanager, and a pager printing each page.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    starting = actions.add_parser("start", help="run the stack until Ctrl-C or stop")
    starting.add_argument("--config", default=DEFAULT_CONFIG, help="default: %(default)s")
    starting.add_argument(
        "--generated",
        type=Path,
        default=Path(DEFAULT_GENERATED),
        help="where carewatch alerts wrote rules.yaml and alertmanager.yaml (default: %(default)s)",
    )
    for name, default in (
        ("democare", DEFAULT_DEMOCARE),
        ("smtp", DEFAULT_SMTP),
        ("exporter", DEFAULT_EXPORTER),
        ("prometheus", DEFAULT_PROMETHEUS),
        ("alertmanager", DEFAULT_ALERTMANAGER),
    ):
        starting.add_argument(
            f"--{name}", default=default, metavar="HOST:PORT", help="default: %(default)s"
        )
    starting.add_argument(
        "--pager",
        default=None,
        metavar="HOST:PORT",
        help=f"default: where checks.yaml's loopback webhook points, else {DEFAULT_PAGER}",
    )
    actions.add_parser("stop", help="stop a running stack")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, start or stop, and return the exit code."""
    args = _parser().parse_args(argv)
    if args.action == "stop":
        return stop()
    return start(
        config=args.config,
        generated=args.generated,
        democare=args.democare,
        smtp=args.smtp,
        exporter=args.exporter,
        prometheus=args.prometheus,
        alertmanager=args.alertmanager,
        pager=args.pager,
    )


if __name__ == "__main__":
    sys.exit(main())
