"""The aiohttp connector of WebSocket steps: it records the certificate of the connection used.

HTTP steps run on carewatch's own client (``probes.net.client``), which times TLS apart from TCP.
WebSocket steps run on aiohttp, whose connector connects and negotiates TLS in one call, so
their TLS time stays inside ``connect``; the certificate's expiry is still read::

    with watching_tls() as tls:
        ws = await session.ws_connect(url)
        cert_expiry = tls.cert_expiry

It overrides only ``connect``, the connector's public entry point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from probes.net.tls import peer_expiry

if TYPE_CHECKING:
    from aiohttp.tracing import Trace


@dataclass(slots=True)
class TlsWatch:
    """What the connection of a request told about TLS."""

    cert_expiry: float | None = None


_WATCH: ContextVar[TlsWatch | None] = ContextVar("carewatch_tls_watch", default=None)


@contextmanager
def watching_tls() -> Iterator[TlsWatch]:
    """Record the certificate expiry of connections used by requests made inside."""
    watch = TlsWatch()
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


class TlsConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that tells ``watching_tls`` the certificate of each connection."""

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
            watch.cert_expiry = peer_expiry(ssl_object)
        return connection
