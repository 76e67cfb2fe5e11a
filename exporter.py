"""carewatch exporter: probes customer-care journeys and publishes the results to Prometheus.

python exporter.py --config checks.yaml [--listen HOST:PORT] [--location NAME]
python exporter.py --config checks.yaml --check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from enum import IntEnum
from typing import Final

from aiohttp import web

from probes import ConfigError
from probes.engine import run_on_uvloop
from probes.model import NAME_PATTERN, load_config
from probes.service import DEFAULT_MAX_CONCURRENCY, Service

DEFAULT_LISTEN: Final = "127.0.0.1:9640"
log = logging.getLogger("carewatch")


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    CONFIG = 2  # the config file is invalid, or the command line is


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


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="exporter.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="checks.yaml", help="checks file (default: %(default)s)"
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=DEFAULT_LISTEN,
        help="address to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--location",
        type=location_name,
        help="this agent's location label (default: defaults.location)",
    )
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        help="runs in progress at once, at most (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser.parse_args(argv)


def check(path: str) -> Exit:
    """Validate ``path``: print every located problem and return CONFIG, or OK."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    steps = sum(len(j.steps) + len(j.finally_steps) for j in config.journeys)
    counts = ", ".join(
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in (
            (len(config.channels), "channel"),
            (len(config.journeys), "journey"),
            (steps, "step"),
        )
    )
    print(f"{path}: OK: {counts}")
    return Exit.OK


async def serve(args: argparse.Namespace) -> Exit:
    """Run the exporter until SIGINT or SIGTERM; SIGHUP reloads the config."""
    service = Service(args.config, location=args.location, max_concurrency=args.max_concurrency)
    try:
        await service.start()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    host, port = args.listen
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        await service.stop()
        await runner.cleanup()
        return Exit.FAILED
    log.info("serving on http://%s:%d/metrics", host if ":" not in host else f"[{host}]", port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(service.reload()))
    await stopping.wait()
    log.info("stopping")
    await service.stop()
    await runner.cleanup()
    return Exit.OK


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.check:
        return check(args.config)
    with contextlib.suppress(KeyboardInterrupt):
        return run_on_uvloop(serve(args))
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
