"""Serving the application on a listen address until SIGINT or SIGTERM.

::

    asyncio.run(serve(parse_listen("[::1]:8900"), create_app(smtp=("127.0.0.1", 8925))))
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from democare._app import smtp_server

DEFAULT_LISTEN: Final = "127.0.0.1:8900"
DEFAULT_SMTP_LISTEN: Final = "127.0.0.1:8925"
MAX_PORT: Final = 65_535
SHUTDOWN_TIMEOUT_S: Final = 1.0
"""How long in-flight requests (a slow fault, say) may delay the exit after a signal."""
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

_log = logging.getLogger("democare")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where to listen: a host (IPv4, IPv6 or name) and a TCP port."""

    host: str
    port: int

    def url(self, port: int | None = None) -> str:
        """The base URL clients use, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}"


def parse_listen(value: str) -> ListenAddress:
    """``HOST:PORT`` or ``[IPV6]:PORT`` as a ListenAddress; ValueError when malformed."""
    host, separator, port_text = value.rpartition(":")
    if not separator or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"expected [IPV6]:PORT with the host in brackets, got {value!r}")
    port = int(port_text)
    if not host or port > MAX_PORT:
        raise ValueError(f"expected HOST:PORT with a port up to {MAX_PORT}, got {value!r}")
    return ListenAddress(host, port)


async def serve(
    address: ListenAddress, application: web.Application, *, smtp_cert_out: Path | None = None
) -> None:
    """Serve ``application`` on ``address`` until SIGINT or SIGTERM, then shut down cleanly.

    When the application has an SMTP server, its STARTTLS certificate is written to
    ``smtp_cert_out`` (if given) once it has started.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in STOP_SIGNALS:
        loop.add_signal_handler(stop_signal, stop.set)
    runner = web.AppRunner(application, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    try:
        await runner.setup()
        smtp = smtp_server(application)
        if smtp is not None and smtp_cert_out is not None:
            await asyncio.to_thread(smtp_cert_out.write_text, smtp.ca_pem)
        site = web.TCPSite(runner, address.host, address.port)
        await site.start()
        _log.info("democare listening on %s", address.url(_bound_port(runner, address)))
        await stop.wait()
        _log.info("democare stopping")
    finally:
        await runner.cleanup()
        for stop_signal in STOP_SIGNALS:
            loop.remove_signal_handler(stop_signal)


def _bound_port(runner: web.AppRunner, address: ListenAddress) -> int:
    """The port actually bound, which differs from the requested one when that was 0."""
    for bound in runner.addresses:
        if isinstance(bound, tuple):
            return int(bound[1])
    return address.port
