"""``python -m democare``: run the demo care backend until SIGINT or SIGTERM.

::

    python -m democare --listen 127.0.0.1:8900 --seed 7 --log-level DEBUG
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Final

from democare._server import DEFAULT_LISTEN, ListenAddress, parse_listen, serve

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ExitCode(IntEnum):
    """How ``python -m democare`` ends."""

    OK = 0
    CANNOT_LISTEN = 1
    USAGE = 2
    """argparse's own code for bad arguments."""


def _listen(value: str) -> ListenAddress:
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m democare", description="Run the carewatch demo customer-care backend."
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=parse_listen(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"address to listen on, [::1]:PORT for IPv6 (default {DEFAULT_LISTEN})",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for flaky faults")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="INFO", help="default INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, serve until a stop signal, and return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    try:
        asyncio.run(serve(args.listen, seed=args.seed))
    except OSError as exc:
        logging.getLogger("democare").error("cannot listen on %s: %s", args.listen.url(), exc)
        return ExitCode.CANNOT_LISTEN
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
