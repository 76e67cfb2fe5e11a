"""The aiohttp connector of every attempt: TCP first, then TLS, so the handshake is timed apart.

aiohttp's ``TCPConnector`` connects and negotiates TLS in one ``loop.create_connection`` call,
which its tracing reports as one ``connect`` span. ``TlsConnector`` lets aiohttp make the TCP
connection (happy eyeballs, error wrapping and all), then upgrades it with ``loop.start_tls``,
as aiohttp itself does for HTTPS through a proxy. Between the two it opens the ``tls`` phase of
the step's timer, and it records what the request's connection learned about TLS, fresh or
kept alive. A runner asks for both with ``watching_tls``::

    with watching_tls(ctx.timer) as tls:
        async with ctx.session.get(url) as resp:
            ctx.cert_expiry = tls.cert_expiry

It overrides one private method, ``_wrap_create_connection`` (checked against aiohttp 3.14),
and calls the original for the TCP part; tests/test_tls.py fails if an aiohttp upgrade stops
calling it (no ``tls`` time) or changes what it passes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from probes._timing import Timer
from probes._tls import peer_expiry
from probes.results import Phase

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.tracing import Trace

TLS_1_3: Final = "TLSv1.3"  # as ssl.SSLObject.version() says it


@dataclass(slots=True)
class TlsWatch:
    """What one request's connections told about TLS (the last hop's, after redirects)."""

    timer: Timer | None
    ssl_object: ssl.SSLObject | None = None  # of the connection the request used
    cert_expiry: float | None = None
    handshake: ssl.SSLObject | None = None  # of a connection this request set up itself

    def unfinished_handshake(self) -> bool:
        """A TLS 1.3 handshake made for this request that the server never finished.

        TLS 1.3 lets the client finish its handshake before the server has checked the client's
        certificate, and a server sends its session tickets once it has finished (OpenSSL, Go
        and rustls do by default). A fresh connection dropped before any answer and without a
        ticket was refused at TLS level: in practice the server wanted a client certificate, or
        rejected ours, without a readable alert (asyncio servers send none, CPython gh-98078;
        others may lose theirs to a TCP reset). A server with tickets turned off that drops a
        request would be misread this way: the message says what was seen.
        """
        shake = self.handshake
        if shake is None or shake is not self.ssl_object or shake.version() != TLS_1_3:
            return False
        session = shake.session
        return session is None or not session.has_ticket


_WATCH: ContextVar[TlsWatch | None] = ContextVar("carewatch_tls_watch", default=None)


@contextmanager
def watching_tls(timer: Timer | None) -> Iterator[TlsWatch]:
    """Record TLS facts, and time the ``tls`` phase on ``timer``, for requests made inside."""
    watch = TlsWatch(timer)
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


class TlsConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that times the TLS handshake apart from TCP (see the module doc)."""

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)
        watch = _WATCH.get()
        if watch is not None:
            transport = connection.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport else None
            watch.ssl_object = ssl_object
            watch.cert_expiry = peer_expiry(ssl_object)
        return connection

    async def _wrap_create_connection(
        self,
        *args: Any,
        req: aiohttp.ClientRequest,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        context = kwargs.pop("ssl", None)
        server_hostname = kwargs.pop("server_hostname", None)
        if not isinstance(context, ssl.SSLContext):
            return await super()._wrap_create_connection(
                *args, req=req, timeout=timeout, client_error=client_error, **kwargs
            )
        factory, *rest = args
        raw, _ = await super()._wrap_create_connection(
            asyncio.Protocol, *rest, req=req, timeout=timeout, client_error=client_error, **kwargs
        )
        watch = _WATCH.get()
        if watch is not None and watch.timer is not None:
            watch.timer.enter(Phase.TLS)
        protocol = factory()
        try:
            tls = await self._loop.start_tls(
                raw, protocol, context, server_hostname=server_hostname
            )
        except BaseException as exc:
            raw.abort()
            if isinstance(exc, ssl.CertificateError):
                raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
            if isinstance(exc, ssl.SSLError | ConnectionError):
                # The TCP connection stood: a reset or an EOF now is the TLS handshake failing.
                raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                raise client_error(req.connection_key, exc) from exc
            raise
        if tls is None:  # the transport closed while the handshake was starting
            raise aiohttp.ClientConnectorSSLError(
                req.connection_key, ConnectionResetError("connection closed before TLS began")
            )
        protocol.connection_made(tls)  # start_tls does not: aiohttp's proxy code does the same
        if watch is not None:
            watch.handshake = tls.get_extra_info("ssl_object")
        return tls, protocol
