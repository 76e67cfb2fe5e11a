"""How the exporter's HTTP server accepts connections, so that clients cannot starve probing.

Idle clients once exhausted the exporter (issue 12): 1,010 idle sockets made ``/metrics``
unreachable, and every probe then failed for want of file descriptors. Three limits hold now
(docs/exporter.md, "Connection limits"):

* a read timeout: a connection without a request in progress (idle after an answer, or whose
  request head is not complete, one that never sends a byte included) is closed after
  ``read_timeout``, as Prometheus's ``--web.read-timeout`` does. aiohttp's keep-alive timeout
  does exactly this: it is armed when the connection opens and after each answer, and closes
  the connection if no whole request head has come in by then;
* a cap: at most ``max_connections`` at once. Beyond it, a new connection is answered
  ``503 Service Unavailable`` and closed at once, before anything of it is read;
* a reserve of descriptors for probing: the cap never takes more than the soft
  ``RLIMIT_NOFILE`` less ``DESCRIPTOR_BASE`` and ``DESCRIPTORS_PER_RUN`` for each run that may be
  in progress (``--max-concurrency``).

>>> limits = server_limits(max_concurrency=4, descriptors=1024)
>>> limits.max_connections, limits.read_timeout
(512, 30.0)
>>> server_limits(max_concurrency=256, descriptors=1024).max_connections  # 1024 - 64 - 2 * 256
448
>>> runner = LimitedRunner(app, limits=limits)                    # doctest: +SKIP
>>> await runner.setup()                                          # doctest: +SKIP
>>> await web.TCPSite(runner, "127.0.0.1", 9640).start()          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web

log = logging.getLogger("carewatch")

#: Connections the server holds at once, at most (as Prometheus's ``--web.max-connections``).
DEFAULT_MAX_CONNECTIONS: Final = 512
#: Seconds a connection may stay without a request in progress (``--web.read-timeout``).
DEFAULT_READ_TIMEOUT: Final = 30.0
#: The cap never goes below this, however few descriptors there are: /metrics must answer.
MIN_CONNECTIONS: Final = 8
#: Descriptors the agent holds whatever it does: the interpreter's, the event loop's, logs.
DESCRIPTOR_BASE: Final = 64
#: Descriptors kept for each run that may be in progress: its connection, and one to spare
#: for a second origin, a DNS query or a redirect.
DESCRIPTORS_PER_RUN: Final = 2
#: At most one warning about refused connections per this many seconds.
REFUSAL_LOG_INTERVAL: Final = 60.0
_REFUSAL_BODY: Final = b"too many connections\n"
#: What a connection beyond the cap gets before it is closed.
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """How many connections the server holds at once, and how long one may idle."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_timeout: float = DEFAULT_READ_TIMEOUT


def server_limits(
    *,
    max_concurrency: int,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    descriptors: int | None = None,
) -> ServerLimits:
    """The limits of a server asked for ``max_connections``, its cap cut so that probing keeps
    its descriptors: ``descriptors`` (the soft ``RLIMIT_NOFILE`` by default) less
    ``DESCRIPTOR_BASE + DESCRIPTORS_PER_RUN * max_concurrency``, never below
    ``MIN_CONNECTIONS``."""
    if descriptors is None:
        descriptors, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if descriptors == resource.RLIM_INFINITY:
        return ServerLimits(max_connections=max_connections, read_timeout=read_timeout)
    spare = descriptors - DESCRIPTOR_BASE - DESCRIPTORS_PER_RUN * max_concurrency
    cap = min(max_connections, max(MIN_CONNECTIONS, spare))
    if cap < max_connections:
        log.warning(
            "serving at most %d connections at once, not %d: %d file descriptors "
            "(ulimit -n) leave no more beside %d runs at once; raise ulimit -n for more",
            cap,
            max_connections,
            descriptors,
            max_concurrency,
        )
    return ServerLimits(max_connections=cap, read_timeout=read_timeout)


class LimitedRunner(web.AppRunner):
    """An ``AppRunner`` whose sites hold at most ``limits.max_connections`` connections and close
    those without a request in progress after ``limits.read_timeout``.

    Any site works on it (``web.TCPSite``, with or without TLS): a site makes each connection's
    protocol by calling ``runner.server``, which here is a gate in front of aiohttp's server.
    """

    def __init__(self, app: web.Application, *, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.read_timeout, **kwargs)
        self.limits = limits
        self._gate: _Gate | None = None

    @property
    def server(self) -> web.Server | None:
        server = super().server
        if server is None:
            self._gate = None
            return None
        if self._gate is None or self._gate.server is not server:
            self._gate = _Gate(server, self.limits.max_connections)
        # A site only calls it, to make each connection's protocol: the gate does that.
        return cast(web.Server, self._gate)

    @property
    def refused(self) -> int:
        """Connections refused so far, beyond the cap."""
        return 0 if self._gate is None else self._gate.refused


class _Gate:
    """The protocol factory in front of aiohttp's server: it admits a connection while fewer
    than ``cap`` are open, and refuses it otherwise."""

    def __init__(self, server: web.Server, cap: int) -> None:
        self.server = server
        self.cap = cap
        self.refused = 0
        self._logged_at = -REFUSAL_LOG_INTERVAL
        self._logged_refused = 0

    def __call__(self) -> asyncio.Protocol:
        return _Admission(self)

    def admit(self, transport: asyncio.Transport) -> None:
        """Hand ``transport`` to aiohttp's handler, or answer 503 and close it."""
        if len(self.server.connections) < self.cap:
            handler = self.server()
            transport.set_protocol(handler)
            handler.connection_made(transport)
            return
        self.refused += 1
        transport.write(REFUSAL)
        transport.close()
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning(
                "refused %d connection(s): %d open, the most the server holds "
                "(--web.max-connections, ulimit -n)",
                self.refused - self._logged_refused,
                self.cap,
            )
            self._logged_at, self._logged_refused = now, self.refused


class _Admission(asyncio.Protocol):
    """A connection's first protocol: it lasts until ``connection_made``, where the gate
    decides. Counting the open connections there, not when the protocol is made, keeps the cap
    exact: the loop makes the protocols of a burst of accepted connections before any of them
    is connected."""

    def __init__(self, gate: _Gate) -> None:
        self._gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._gate.admit(cast(asyncio.Transport, transport))
