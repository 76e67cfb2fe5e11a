"""``python -m democare``: run the demo care backend until SIGINT or SIGTERM.

::

    python -m democare --listen 127.0.0.1:8900 --seed 7 --log-level DEBUG \\
        --webhook sms=http://127.0.0.1:9000/sms --webhook email=http://127.0.0.1:9000/email \\
        --smtp-listen 127.0.0.1:8925 --smtp-cert-out /tmp/democare-smtp.pem
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from democare._app import create_app
from democare._server import (
    DEFAULT_LISTEN,
    DEFAULT_SMTP_LISTEN,
    ListenAddress,
    parse_listen,
    serve,
)
from democare._webhooks import (
    DEFAULT_WEBHOOK_SECRET,
    WebhookError,
    parse_webhook_option,
)
from probes import Exit

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SMTP_OFF: Final = "off"
AIOSMTPD_LOGGER: Final = "mail.log"


def _listen(value: str) -> ListenAddress:
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _smtp_listen(value: str) -> ListenAddress | None:
    return None if value == SMTP_OFF else _listen(value)


def _webhook(value: str) -> tuple[str, str]:
    try:
        channel, url = parse_webhook_option(value)
    except WebhookError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return channel.value, url


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
    parser.add_argument(
        "--webhook",
        type=_webhook,
        action="append",
        default=[],
        metavar="CHANNEL=URL",
        help="where sms, push or email replies are POSTed, a loopback URL (repeatable)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=DEFAULT_WEBHOOK_SECRET,
        help=f"HMAC key of the X-Democare-Signature header (default {DEFAULT_WEBHOOK_SECRET})",
    )
    parser.add_argument(
        "--smtp-listen",
        type=_smtp_listen,
        default=parse_listen(DEFAULT_SMTP_LISTEN),
        metavar="HOST:PORT|off",
        help=f"address of the email channel's SMTP server (default {DEFAULT_SMTP_LISTEN})",
    )
    parser.add_argument(
        "--smtp-cert-out",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the SMTP server's STARTTLS certificate (PEM) here for clients to trust",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, serve until a stop signal, and return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    if args.log_level != "DEBUG":
        # aiosmtpd logs every connection and command at INFO.
        logging.getLogger(AIOSMTPD_LOGGER).setLevel(logging.WARNING)
    if not args.webhook_secret:
        _parser().error("--webhook-secret must not be empty")
    smtp = args.smtp_listen
    application = create_app(
        seed=args.seed,
        webhooks=dict(args.webhook),
        webhook_secret=args.webhook_secret,
        smtp=None if smtp is None else (smtp.host, smtp.port),
    )
    try:
        asyncio.run(serve(args.listen, application, smtp_cert_out=args.smtp_cert_out))
    except OSError as exc:
        logging.getLogger("democare").error("cannot start: %s", exc)
        return Exit.FAILED  # an address is taken, or the SMTP certificate could not be made
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
