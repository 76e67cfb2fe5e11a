"""Opening the TCP connection of a TCP or SMTP step, each phase timed: dns, connect, tls.

A connection that cannot be opened raises an ``Unreachable`` (``probes.errors``): ``DnsFailed``,
``ConnectFailed`` or ``TlsFailed``, so a runner can tell "the name did not resolve" from "nothing
listens" from "the certificate was refused" without knowing socket and ssl exceptions. What the
socket transport raises means what ``SOCKET_FAILURES`` says.

>>> reader, writer = await open_stream("sip.example.com", 5061, ctx.timer,
...                                    tls=context)        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from typing import Final

from probes.errors import ConnectFailed, DnsFailed, TlsFailed, TlsSetupError
from probes.model.addresses import join_address
from probes.net.timing import Timer
from probes.net.tls import (
    certificate_expiry,
    describe_tls_error,
    peer_expiry,
    presented_certificate,
)
from probes.runs.experience import TLS12_ROUND_TRIPS
from probes.runs.reasons import Caught
from probes.runs.results import Failure, Phase, Reason

#: What a TCP or SMTP step's connection raises; the message is the exception's text unless the
#: row words it.
SOCKET_FAILURES: Final[tuple[Caught[object], ...]] = (
    Caught(TlsSetupError, Reason.TLS),  # the step's own TLS files
    Caught(DnsFailed, Reason.DNS),
    Caught(ConnectFailed, Reason.CONNECT),
    Caught(TlsFailed, Reason.TLS),
    Caught(ssl.SSLError, Reason.TLS, lambda exc, target: describe_tls_error(exc)),  # an alert
    Caught(
        ConnectionError,
        Reason.CONNECT,
        lambda exc, target: f"connection lost: {exc.strerror or exc}",
    ),
)


async def open_socket(host: str, port: int, timer: Timer) -> socket.socket:
    """A non-blocking socket connected to ``host:port``, trying each address in turn.

    Name resolution is timed as ``dns``, the connection as ``connect``, and both are counted
    in ``timer.traffic`` for the network-experience estimate.
    """
    loop = asyncio.get_running_loop()
    timer.enter(Phase.DNS)
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DnsFailed(host, exc.strerror or str(exc)) from None
    if not _is_ip(host):
        timer.traffic.dns_lookups += 1
    timer.enter(Phase.CONNECT)
    problem: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            problem = exc
            continue
        except BaseException:  # cancelled by the step's timeout
            sock.close()
            raise
        timer.traffic.new_connections += 1
        return sock
    raise ConnectFailed(join_address(host, port), os_message(problem)) from problem


async def open_stream(
    host: str,
    port: int,
    timer: Timer,
    *,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to ``host:port``; with ``tls``, the handshake is made (and timed) apart.

    ``server_name`` is the name to verify and send as SNI, ``host`` by default.
    """
    sock = await open_socket(host, port, timer)
    if tls is None:
        try:
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
    # The socket is connected: opening the stream now is the TLS handshake alone. No plain
    # stream comes first, which would swallow what a server says before TLS (a banner).
    timer.enter(Phase.TLS)
    name = server_name or host
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname=name, ssl_handshake_timeout=None
        )
    except (ssl.SSLError, ConnectionError) as exc:
        sock.close()
        failure, expiry = await tls_failure(exc, name, peek=(host, port))
        raise TlsFailed(failure.message, cert_expiry=expiry) from None
    except BaseException:
        sock.close()
        raise
    count_tls(timer, writer.transport)
    return reader, writer


def count_tls(timer: Timer, transport: asyncio.BaseTransport | None) -> None:
    """Count the handshake just made on ``transport`` in ``timer.traffic``, by TLS version."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return
    timer.traffic.tls_handshakes += 1
    if ssl_object.version() != "TLSv1.3":
        timer.traffic.tls_round_trips = TLS12_ROUND_TRIPS


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def tls_failure(
    exc: BaseException, name: str, *, peek: tuple[str, int] | None = None
) -> tuple[Failure, float | None]:
    """The failure a TLS handshake verifying ``name`` made, and the certificate's expiry.

    With ``peek`` (the host and port of a server that speaks TLS at once, not after STARTTLS),
    a rejected certificate is read over a second, unverified handshake: its dates and names
    make the message precise, and its expiry is still reported.
    """
    certificate = None
    if peek is not None and isinstance(exc, ssl.SSLCertVerificationError):
        certificate = await presented_certificate(*peek, server_name=name)
    message = describe_tls_error(exc, host=name, certificate=certificate)
    return Failure(Reason.TLS, message), certificate_expiry(certificate)


def cert_expiry(transport: asyncio.BaseTransport | None) -> float | None:
    """Unix time the peer's certificate expires, or None (no TLS)."""
    return peer_expiry(transport.get_extra_info("ssl_object")) if transport is not None else None


def os_message(exc: BaseException | None) -> str:
    """An OSError's words (``Connection refused``), without errno numbers."""
    if exc is None:
        return "no address to connect to"
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno > 0:
        return os.strerror(errno)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
