"""The loopback target the benchmarks probe, served by its own process so that its CPU is
charged to neither side.

>>> with Target() as url:            # doctest: +SKIP
...     ...                          # GET url -> 200 "ok"
>>> with Target(hold=0.05) as url:   # doctest: +SKIP
...     ...                          # held 50 ms; Server-Timing: app;dur=50.3

Every answer carries a ``Server-Timing`` header with the target's own handling time, in
milliseconds, from the moment the request's last byte was read to just before the answer is
written: the time a prober cannot be blamed for (B4). The server is a bare asyncio Protocol on
uvloop, so that little of the target's work falls outside that window.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Final

from probes.engine import run_on_uvloop

START_TIMEOUT_SECONDS: Final = 10.0
STOP_TIMEOUT_SECONDS: Final = 5.0
BACKLOG: Final = 1024
SERVER_TIMING: Final = "Server-Timing"
_HEAD: Final = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"


class _Answer(asyncio.Protocol):
    """Answers each GET on a connection (kept alive) with 200 "ok", after holding it."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]  # GETs only: no body follows the head
            started = time.perf_counter()
            if self.hold > 0:
                asyncio.get_running_loop().call_later(self.hold, self._answer, started)
            else:
                self._answer(started)

    def _answer(self, started: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        took_ms = (time.perf_counter() - started) * 1000
        timing = f"{SERVER_TIMING}: app;dur={took_ms:.3f}".encode()
        self.transport.write(_HEAD + timing + b"\r\n\r\nok")


def _serve(conn: Connection, hold: float) -> None:
    """Answer every GET on a loopback port sent back on ``conn``, until told to stop."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Answer(hold), "127.0.0.1", 0, backlog=BACKLOG, reuse_address=True
        )
        conn.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, conn.recv)  # the stop message
        server.close()

    run_on_uvloop(serve())


def server_timing_seconds(header: str) -> float:
    """The ``dur`` of a ``Server-Timing: app;dur=12.5`` header, in seconds."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "dur":
            return float(value) / 1000
    raise ValueError(f"no dur in Server-Timing {header!r}")


class Target:
    """The target process: ``with Target(hold=seconds) as url: ...``."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold

    def __enter__(self) -> str:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, self.hold), daemon=True)
        self._process.start()
        if not self._conn.poll(START_TIMEOUT_SECONDS):
            self._process.kill()
            raise RuntimeError("the bench target did not start")
        return f"http://127.0.0.1:{self._conn.recv()}/"

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def __exit__(self, *_: object) -> None:
        self._conn.send(None)
        self._process.join(STOP_TIMEOUT_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_TIMEOUT_SECONDS)
