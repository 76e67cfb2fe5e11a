"""The loopback target the benchmarks probe, served by its own process so that its CPU is
charged to neither side.

>>> with Target() as url:            # doctest: +SKIP
...     ...                          # GET url -> 200 "ok"
>>> with Target(hold=0.05) as url:   # doctest: +SKIP
...     ...                          # held 50 ms; Server-Timing: app;dur=50.3

Every answer carries a ``Server-Timing`` header with the target's own handling time, from the
moment its handler began to just before it returns, in milliseconds: the time a prober cannot
be blamed for (B4).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from multiprocessing.connection import Connection
from typing import Final

from aiohttp import web

START_TIMEOUT_SECONDS: Final = 10.0
STOP_TIMEOUT_SECONDS: Final = 5.0
BACKLOG: Final = 1024
SERVER_TIMING: Final = "Server-Timing"


def _serve(conn: Connection, hold: float) -> None:
    """Answer every GET with 200 on a loopback port sent back on ``conn``, until told to stop."""

    async def ok(_: web.Request) -> web.Response:
        started = time.perf_counter()
        if hold > 0:
            await asyncio.sleep(hold)
        took_ms = (time.perf_counter() - started) * 1000
        return web.Response(text="ok", headers={SERVER_TIMING: f"app;dur={took_ms:.3f}"})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=BACKLOG).start()
        conn.send(sock.getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # the stop message
        await runner.cleanup()

    asyncio.run(serve())


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
