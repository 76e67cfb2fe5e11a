"""Hostile targets on loopback: servers that never answer, trickle, flood, lie or break, and a
name server that knows no name.

``Targets`` runs them on an event loop of its own, in a thread, so that a synchronous test can
drive a ``carewatch serve`` child process against them. Each behaviour listens on its own port
(``targets.url("silent")``); every loop they run ends when the client goes away or after
``FOREVER_SECONDS``, so a target never outlives its test.

>>> sorted(RAW)[:3]
['big', 'chunked', 'garbage']
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

import dns.message
import dns.rcode
import trustme
from aiohttp import web

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: The longest any hostile loop runs for one connection: far beyond every journey's timeout,
#: and a bound, so that nothing runs on when the client has gone.
FOREVER_SECONDS: Final = 30.0
#: A drip: one byte this often (slowloris headers, a trickled body).
DRIP_SECONDS: Final = 0.05
#: "1 GB": the Content-Length a big body announces, streamed in CHUNK-byte writes.
GIGABYTE: Final = 1024**3
CHUNK: Final = 64 * 1024
#: How many headers the header flood sends (20 bytes each: three times the 64 KiB limit).
HEADER_FLOOD: Final = 10_000
OK_HEAD: Final = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


async def _request(reader: asyncio.StreamReader) -> None:
    """Read the request's head (the probes send no body here)."""
    await reader.readuntil(b"\r\n\r\n")


async def _drain_for(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, reads, and never answers."""
    await asyncio.wait_for(reader.read(), FOREVER_SECONDS)


async def slowloris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then one byte of headers every DRIP_SECONDS, never ending them."""
    await _request(reader)
    await _drain_for(writer, OK_HEAD)
    for _ in range(int(FOREVER_SECONDS / DRIP_SECONDS)):
        await _drain_for(writer, b"X")
        await asyncio.sleep(DRIP_SECONDS)


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers promising 1 MB, then one byte of body every DRIP_SECONDS."""
    await _request(reader)
    await _drain_for(writer, OK_HEAD + b"Content-Length: 1000000\r\n\r\n")
    for _ in range(int(FOREVER_SECONDS / DRIP_SECONDS)):
        await _drain_for(writer, b"x")
        await asyncio.sleep(DRIP_SECONDS)


async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 1 GB body, streamed as fast as the client reads it."""
    await _request(reader)
    await _drain_for(writer, OK_HEAD + f"Content-Length: {GIGABYTE}\r\n\r\n".encode())
    chunk = b"\0" * CHUNK
    for _ in range(GIGABYTE // CHUNK):
        await _drain_for(writer, chunk)


async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A chunked body that never sends its last chunk."""
    await _request(reader)
    await _drain_for(writer, OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (CHUNK, b"y" * CHUNK)
    for _ in range(GIGABYTE // CHUNK):
        await _drain_for(writer, chunk)


async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line that is not HTTP."""
    await _request(reader)
    await _drain_for(writer, b"HTPT/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Random bytes, then a close."""
    await _request(reader)
    await _drain_for(writer, b"\x16\x03" + os.urandom(4096))


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers promising 100 kB, 1 kB of body, then a TCP reset (SO_LINGER 0)."""
    await _request(reader)
    await _drain_for(writer, OK_HEAD + b"Content-Length: 100000\r\n\r\n" + b"z" * 1000)
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def redirect_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Every request redirected to itself, on the same connection."""
    for _ in range(1000):
        await _request(reader)
        await _drain_for(
            writer, b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"
        )


async def headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 with HEADER_FLOOD headers."""
    await _request(reader)
    flood = b"".join(b"X-Hostile-%05d: v\r\n" % n for n in range(HEADER_FLOOD))
    await _drain_for(writer, OK_HEAD + flood + b"Content-Length: 0\r\n\r\n")


async def not_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 that says it is JSON, and is not."""
    await _request(reader)
    body = b'{"status": "ok", '
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    await _drain_for(writer, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A small 200 on a kept-alive connection: the control journey's target."""
    for _ in range(100_000):
        await _request(reader)
        await _drain_for(writer, OK_HEAD + b"Content-Length: 2\r\n\r\nok")


#: The raw TCP targets, by name.
RAW: Final[dict[str, Handler]] = {
    "silent": silent,
    "slowloris": slowloris,
    "trickle": trickle,
    "big": big,
    "chunked": chunked,
    "malformed": malformed,
    "garbage": garbage,
    "reset": reset,
    "redirect": redirect_loop,
    "headers": headers,
    "json": not_json,
    "healthy": healthy,
}


async def _ws_silent(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _ in ws:  # reads until the client closes; never sends
        pass
    return ws


async def _ws_closes(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close()
    return ws


class _Nxdomain(asyncio.DatagramProtocol):
    """A name server (UDP) that knows no name: NXDOMAIN to every query."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


def _guarded(handler: Handler) -> Handler:
    """``handler``, ended after FOREVER_SECONDS, quiet when the client goes away."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(handler(reader, writer), FOREVER_SECONDS)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.transport.abort()

    return run


class Targets:
    """Every hostile target, each on its own loopback port, served from a thread.

    ``ca`` is the CA the TLS targets' certificates come from, except ``tls-self-signed``'s.
    """

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._ports: dict[str, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._name_server: asyncio.DatagramTransport | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def url(self, name: str, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self._ports[name]}{path}"

    def address(self, name: str) -> str:
        """``127.0.0.1:port`` of target ``name`` (``dns``: the NXDOMAIN name server)."""
        return f"127.0.0.1:{self._ports[name]}"

    async def _listen(self, name: str, handler: Handler, tls: ssl.SSLContext | None) -> None:
        server = await asyncio.start_server(_guarded(handler), "127.0.0.1", 0, ssl=tls)
        self._servers.append(server)
        self._ports[name] = server.sockets[0].getsockname()[1]

    async def _start(self) -> None:
        for name, handler in RAW.items():
            await self._listen(name, handler, None)
        other = trustme.CA()
        for name, cert in {
            "tls-expired": self.ca.issue_cert(
                "127.0.0.1",
                not_before=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
                not_after=datetime.datetime(2026, 1, 2, 12, tzinfo=datetime.UTC),
            ),
            "tls-self-signed": other.issue_cert("127.0.0.1"),
            "tls-wrong-host": self.ca.issue_cert("localhost"),
        }.items():
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            await self._listen(name, healthy, context)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            _Nxdomain, local_addr=("127.0.0.1", 0)
        )
        self._name_server = transport
        self._ports["dns"] = transport.get_extra_info("sockname")[1]
        app = web.Application()
        app.router.add_get("/silent", _ws_silent)
        app.router.add_get("/closes", _ws_closes)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ports["ws"] = port

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        if self._name_server is not None:
            self._name_server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
