"""The ``carewatch`` command line: parse the arguments, call one function, map the outcome to an
exit code (``probes.Exit``, the same for every subcommand).

::

    carewatch serve [--config checks.yaml] [--listen 127.0.0.1:9640] [--location NAME]
                    [--web.config.file web.yml] [--web.protect all] [--web.disable ...] ...
    carewatch check [FILE]
    carewatch loadtest [--config checks.yaml] [LOCUST OPTIONS...]
    carewatch alerts [--config checks.yaml] [--out alerts/generated]
    carewatch dashboards [--config checks.yaml] [--out dashboards/generated]
    carewatch demo [start|stop]

The work is done elsewhere: ``probes.service.serve``, ``probes.load_config``, Locust on
``loadtests/locustfile.py``, ``alerts.command``, ``dashboards.command`` and ``democare.launch``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from alerts import command as alerts_command
from dashboards import command as dashboards_command
from democare import launch
from loadtests.command import CHECKS_VARIABLE, LOCUSTFILE, locust_command
from probes import Config, ConfigError, Exit, load_config
from probes.engine import run_on_uvloop
from probes.model import NAME_PATTERN, parse_duration
from probes.service import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PROBES,
    DEFAULT_READ_TIMEOUT,
    DISABLEABLE,
    Endpoint,
    parse_endpoints,
    serve,
)

PROG: Final = "carewatch"
DEFAULT_CONFIG: Final = "checks.yaml"
DEFAULT_LISTEN: Final = "127.0.0.1:9640"
DEFAULT_DEMOCARE: Final = "127.0.0.1:8900"
DEFAULT_SMTP: Final = "127.0.0.1:8925"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HELP_OPTIONS: Final = ("-h", "--help")
MAX_READ_TIMEOUT: Final = 3600.0
#: ``check`` prints at most this many warnings, then counts the rest (as ConfigError does).
MAX_WARNINGS_SHOWN: Final = 100

Command = Callable[[argparse.Namespace], Exit]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``carewatch`` with ``argv`` (default: the process's arguments); the exit code."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "loadtest":
        args.locust_options = extra
    elif extra:
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")  # exits: Exit.CONFIG
    command: Command = args.run
    return int(command(args))


def check(path: str) -> Exit:
    """``carewatch check FILE``: every located problem on stderr and CONFIG, or a summary (and
    any located warning on stderr: a journey that may not fit its interval) and OK."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    print(f"{path}: OK: {_counts(config)}")
    for warning in config.warnings[:MAX_WARNINGS_SHOWN]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(config.warnings) > MAX_WARNINGS_SHOWN:
        print(f"... and {len(config.warnings) - MAX_WARNINGS_SHOWN:,} more", file=sys.stderr)
    return Exit.OK


def serve_command(args: argparse.Namespace) -> Exit:
    """``carewatch serve``: the exporter until SIGINT or SIGTERM (see ``add_serve_options``)."""
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    host, port = args.listen
    try:
        run_on_uvloop(
            serve(
                args.config,
                host=host,
                port=port,
                location=args.location,
                max_concurrency=args.max_concurrency,
                max_connections=args.max_connections,
                read_timeout=args.read_timeout,
                web_config=args.web_config,
                protect=args.web_protect,
                disable=args.web_disable,
                max_probes=args.web_max_probes,
            )
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    except OSError as exc:
        logging.getLogger(PROG).error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return Exit.FAILED
    except KeyboardInterrupt:  # before the signal handlers are in place
        pass
    return Exit.OK


def _loadtest(args: argparse.Namespace) -> Exit:
    """``carewatch loadtest``: become Locust on the locustfile, so Locust's exit code (99 when a
    threshold broke), its signals and its terminal are the command's own."""
    if args.config is not None:
        os.environ[CHECKS_VARIABLE] = args.config
    options: list[str] = args.locust_options
    if any(option in HELP_OPTIONS for option in options):
        print(
            f"usage: {PROG} loadtest [--config FILE] [LOCUST OPTIONS...]\n\n"
            f"Runs Locust on {LOCUSTFILE} with the journeys of FILE (default: "
            f"${CHECKS_VARIABLE}, else {DEFAULT_CONFIG}); every other option is Locust's:\n",
            flush=True,
        )
    command = locust_command(options)
    try:
        os.execv(command[0], command)
    except OSError as exc:
        print(f"{PROG} loadtest: cannot run {command[0]} -m locust: {exc}", file=sys.stderr)
    return Exit.FAILED


def _check(args: argparse.Namespace) -> Exit:
    return check(args.file)


def _alerts(args: argparse.Namespace) -> Exit:
    return alerts_command.run(args.config, args.out)


def _dashboards(args: argparse.Namespace) -> Exit:
    return dashboards_command.run(args.config, args.out)


def _demo(args: argparse.Namespace) -> Exit:
    """``carewatch demo [start|stop]``: the demo stack in the background."""
    if args.action == "stop":
        return launch.stop()
    return launch.start(args.democare, args.exporter, config=args.config, smtp=args.smtp)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def location_name(text: str) -> str:
    """A ``--location`` value: the same rule as names in checks.yaml, since it is a label."""
    if not re.match(NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"expected letters, digits, '_', '.' or '-' (at most 64), got {text!r}"
        )
    return text


def positive_int(text: str) -> int:
    """A count of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def read_timeout(text: str) -> float:
    """A ``--web.read-timeout`` value: a duration such as ``30s`` or ``2m``, more than zero."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < seconds < MAX_READ_TIMEOUT:
        raise argparse.ArgumentTypeError(f"expected a duration from 1ms to 1h, got {text!r}")
    return seconds


def endpoints(allowed: frozenset[Endpoint] | None = None) -> Callable[[str], frozenset[Endpoint]]:
    """An argparse type for ``--web.protect`` (any endpoint, or ``all``) and ``--web.disable``
    (the endpoints in ``allowed``)."""
    choices = sorted(allowed) if allowed is not None else list(Endpoint)

    def parse(text: str) -> frozenset[Endpoint]:
        try:
            return parse_endpoints(text, allowed=choices)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``carewatch serve`` (and of its alias ``python exporter.py``)."""
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help="checks file (default: %(default)s)"
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="address to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--location",
        type=location_name,
        help="this agent's location label (default: defaults.location)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help="runs in progress at once, at most (default: %(default)s)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections the server holds at once, at most, fewer if ulimit -n would not "
        "leave enough for --max-concurrency runs (default: %(default)s)",
    )
    parser.add_argument(
        "--web.read-timeout",
        dest="read_timeout",
        type=read_timeout,
        default=DEFAULT_READ_TIMEOUT,
        metavar="DURATION",
        help="close a connection without a request in progress (idle, or its request head "
        "not complete) after this long, such as 30s (default: 30s)",
    )
    parser.add_argument(
        "--web.max-probes",
        dest="web_max_probes",
        type=positive_int,
        default=DEFAULT_MAX_PROBES,
        metavar="N",
        help="/probe runs in progress at once, at most; beyond it 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=LOG_LEVELS, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS, basic auth and headers, in the Prometheus exporter-toolkit format "
        "(docs/security.md)",
    )
    parser.add_argument(
        "--web.protect",
        dest="web_protect",
        type=endpoints(),
        default="all",
        metavar="LIST",
        help="endpoints that need basic auth, from "
        f"{','.join(Endpoint)}, or all (everything but callbacks) (default: %(default)s)",
    )
    parser.add_argument(
        "--web.disable",
        dest="web_disable",
        type=endpoints(DISABLEABLE),
        default=frozenset(),
        metavar="LIST",
        help=f"endpoints that answer 403, from {','.join(sorted(DISABLEABLE))}",
    )


def _counts(config: Config) -> str:
    """``7 channels, 11 journeys, 23 steps`` (``finally`` steps counted)."""
    steps = sum(len(j.steps) + len(j.finally_steps) for j in config.journeys)
    return ", ".join(
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in (
            (len(config.channels), "channel"),
            (len(config.journeys), "journey"),
            (steps, "step"),
        )
    )


def _version() -> str:
    try:
        return version(PROG)
    except PackageNotFoundError:
        return "(not installed)"


def _exit_codes() -> str:
    lines = [f"  {code.value:<3} {code.name:<11} {code.meaning}" for code in Exit]
    return "exit codes, the same for every subcommand:\n" + "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Synthetic monitoring of customer-care channels, exported to Prometheus.",
        epilog=_exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serving = commands.add_parser(
        "serve", help="probe the journeys of checks.yaml and serve /metrics (the exporter)"
    )
    add_serve_options(serving)
    serving.set_defaults(parser=serving, run=serve_command)

    checking = commands.add_parser("check", help="validate a checks file and exit")
    checking.add_argument(
        "file", nargs="?", default=DEFAULT_CONFIG, metavar="FILE", help="(default: %(default)s)"
    )
    checking.set_defaults(parser=checking, run=_check)

    # Every option but --config is Locust's, --help included: nothing is abbreviated or eaten.
    loading = commands.add_parser(
        "loadtest",
        help="run Locust on the journeys of checks.yaml; Locust's options pass through "
        "(carewatch loadtest --help lists them)",
        add_help=False,
        allow_abbrev=False,
    )
    loading.add_argument("--config", default=None, metavar="FILE")
    loading.set_defaults(parser=loading, run=_loadtest)

    alerting = commands.add_parser(
        "alerts",
        help="generate Prometheus rules, their promtool tests and the Alertmanager "
        "configuration from checks.yaml (docs/alerts.md)",
    )
    alerts_command.add_options(alerting)
    alerting.set_defaults(parser=alerting, run=_alerts)

    dashboarding = commands.add_parser(
        "dashboards",
        help="generate Grafana dashboards and their provisioning file from checks.yaml "
        "(docs/dashboards.md)",
    )
    dashboards_command.add_options(dashboarding)
    dashboarding.set_defaults(parser=dashboarding, run=_dashboards)

    demo = commands.add_parser(
        "demo", help="start (default) or stop democare and the exporter in the background"
    )
    demo.add_argument(
        "action",
        nargs="?",
        choices=("start", "stop"),
        default="start",
        help="start: wait for every journey and print the URLs (logs in .demo/); stop: stop them",
    )
    demo.add_argument(
        "--democare",
        default=DEFAULT_DEMOCARE,
        metavar="HOST:PORT",
        help="the demo care backend (default: %(default)s)",
    )
    demo.add_argument(
        "--exporter",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="the exporter (default: %(default)s)",
    )
    demo.add_argument(
        "--smtp",
        default=DEFAULT_SMTP,
        metavar="HOST:PORT",
        help="democare's SMTP server (default: %(default)s)",
    )
    demo.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help="(default: %(default)s)"
    )
    demo.set_defaults(parser=demo, run=_demo)
    return parser
