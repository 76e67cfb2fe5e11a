"""The exporter's server against clients that hold connections: idle, half-sent, too many
(``probes.service.connections``; issue 12, defect 3). Real sockets on loopback throughout."""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

import pytest
from aiohttp import web

from probes.service.connections import (
    DESCRIPTOR_BASE,
    DESCRIPTORS_PER_RUN,
    MIN_CONNECTIONS,
    REFUSAL,
    LimitedRunner,
    ServerLimits,
    server_limits,
)
from tests._support.processes import Process, get, wait_until
from tests._support.scrape import value
from tests._support.servers import free_port
from tests._support.timing import SLACK

#: The cap and read timeout of the in-process tests: small, so that they run fast.
CAP: Final = 3
READ_TIMEOUT: Final = 0.3
#: How long a test waits for something that should happen at once.
PROMPT: Final = 2.0
#: The exporter subprocess: its descriptors, the runs it may start at once, its read timeout.
EXPORTER_DESCRIPTORS: Final = 160
EXPORTER_CONCURRENCY: Final = 4
EXPORTER_READ_TIMEOUT: Final = "1s"
READ_SECONDS: Final = 1.0
#: Idle connections the flood opens: above the exporter's cap, and above its descriptors.
FLOOD: Final = 300
START_SECONDS: Final = 20.0


# --- the limits ---------------------------------------------------------------------------


def test_the_cap_leaves_descriptors_for_every_run_that_may_be_in_progress() -> None:
    limits = server_limits(max_concurrency=256, max_connections=512, descriptors=1024)

    assert limits.max_connections == 1024 - DESCRIPTOR_BASE - DESCRIPTORS_PER_RUN * 256
    assert server_limits(max_concurrency=4, descriptors=65536).max_connections == 512
    assert server_limits(max_concurrency=4, max_connections=20, descriptors=65536) == ServerLimits(
        max_connections=20
    )


def test_the_cap_never_falls_below_a_few_connections_for_metrics() -> None:
    limits = server_limits(max_concurrency=1000, descriptors=256)

    assert limits.max_connections == MIN_CONNECTIONS


# --- one server, in process ---------------------------------------------------------------


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


@pytest.fixture
async def limited() -> AsyncIterator[tuple[int, LimitedRunner]]:
    """A ``LimitedRunner`` serving ``GET /`` on loopback with ``CAP`` and ``READ_TIMEOUT``."""
    app = web.Application()
    app.router.add_get("/", hello)
    runner = LimitedRunner(
        app, limits=ServerLimits(max_connections=CAP, read_timeout=READ_TIMEOUT), access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site.port, runner
    finally:
        await runner.cleanup()


async def hello_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(PROMPT):
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(len(b"hello"))
    return head


async def closed_by_server(reader: asyncio.StreamReader) -> float:
    """Seconds until the server closes the connection (EOF or a reset)."""
    started = time.monotonic()
    async with asyncio.timeout(PROMPT):
        try:
            while await reader.read(1024):
                pass
        except ConnectionResetError:
            pass
    return time.monotonic() - started


async def test_beyond_the_cap_a_connection_is_answered_503_and_closed(
    limited: tuple[int, LimitedRunner],
) -> None:
    port, runner = limited
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CAP)]
    for reader, writer in held:
        assert (await hello_over(reader, writer)).startswith(b"HTTP/1.1 200")

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(PROMPT):
        refused = await reader.read()  # everything, until the server closes

    assert refused == REFUSAL
    assert runner.refused == 1
    writer.close()
    held[0][1].close()
    await closed_by_server(held[0][0])  # our own close, seen through
    await asyncio.sleep(SLACK)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await hello_over(reader, writer)).startswith(b"HTTP/1.1 200")  # a place again
    for _, other in [*held, (reader, writer)]:
        other.close()


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "],
    ids=["silent", "half-sent-head"],
)
async def test_a_connection_without_a_whole_request_is_closed_after_the_read_timeout(
    limited: tuple[int, LimitedRunner], sent: bytes
) -> None:
    port, _ = limited
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)

    waited = await closed_by_server(reader)

    assert READ_TIMEOUT - SLACK < waited < READ_TIMEOUT + SLACK
    writer.close()


async def test_a_kept_alive_connection_is_closed_after_the_read_timeout_idle(
    limited: tuple[int, LimitedRunner],
) -> None:
    port, _ = limited
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert b"200 OK" in await hello_over(reader, writer)

    waited = await closed_by_server(reader)

    assert waited < READ_TIMEOUT + SLACK
    writer.close()


# --- the exporter, flooded ------------------------------------------------------------------


class _Target(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def target() -> Iterator[str]:
    """A plain HTTP target in a thread: ``200 ok`` to every GET."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def exporter_with_few_descriptors(config: Path, listen: str, log: Path) -> Process:
    """``exporter.py`` with a soft ``RLIMIT_NOFILE`` of ``EXPORTER_DESCRIPTORS``."""
    wrapper = textwrap.dedent(
        f"""
        import resource, runpy, sys
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, ({EXPORTER_DESCRIPTORS}, hard))
        sys.argv = ["exporter.py", *sys.argv[1:]]
        runpy.run_path("exporter.py", run_name="__main__")
        """
    )
    return Process(
        [
            sys.executable,
            "-c",
            wrapper,
            "--config",
            str(config),
            "--listen",
            listen,
            "--max-concurrency",
            str(EXPORTER_CONCURRENCY),
            "--web.read-timeout",
            EXPORTER_READ_TIMEOUT,
        ],
        log,
    )


def runs(metrics: str, result: str) -> float:
    return value(metrics, "carewatch_journey_runs_total", journey="ping", result=result) or 0.0


def test_idle_clients_neither_silence_metrics_nor_stop_probing(tmp_path: Path) -> None:
    """Issue 12: 1,010 idle sockets made /metrics unreachable and every probe fail with "Too many
    open files". Now the exporter refuses what is beyond its cap, closes the idle connections it
    holds after the read timeout, and keeps descriptors for its runs."""
    listen = f"127.0.0.1:{free_port()}"
    metrics_url = f"http://{listen}/metrics"
    with target() as url, ExitStack() as stack:
        config = tmp_path / "checks.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                channels:
                  - name: app
                    kind: app
                    team: care
                    journeys:
                      - name: ping
                        interval: 1s
                        timeout: 900ms
                        retries: 0
                        steps:
                          - name: ping
                            url: {url}
                """
            )
        )
        exporter = exporter_with_few_descriptors(config, listen, tmp_path / "exporter.log")
        stack.callback(exporter.stop)
        wait_until(lambda: runs(get(metrics_url)[1], "success") >= 1, START_SECONDS, "a first run")

        flood = []
        for _ in range(FLOOD):
            sock = socket.socket()
            stack.callback(sock.close)
            sock.settimeout(PROMPT)
            try:
                sock.connect(("127.0.0.1", int(listen.rsplit(":", 1)[1])))
            except OSError:
                continue  # the backlog is full: refused by the kernel, as good
            flood.append(sock)
        assert len(flood) > EXPORTER_DESCRIPTORS  # more than the exporter could ever hold
        # Refused at once beyond the cap; the idle ones it holds go after the read timeout.
        answered = wait_until(
            lambda: (answer := get(metrics_url))[0] == 200 and answer[1],
            READ_SECONDS + PROMPT,
            "/metrics answering under the flood",
        )
        before = runs(answered, "success")
        wait_until(
            lambda: runs(get(metrics_url)[1], "success") >= before + 2,
            START_SECONDS,
            "runs going on under the flood",
        )
        text = get(metrics_url)[1]
        assert runs(text, "failure") == 0, exporter.output()
        assert "Too many open files" not in exporter.output()
        assert "refused" in exporter.output()  # the cap was reached, and said so
        assert exporter.handle.poll() is None
