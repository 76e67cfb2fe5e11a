"""The aiohttp engine against real servers on loopback: captures, phases, failure reasons,
retries, ``finally`` steps, and targets that misbehave on purpose.

Well-behaved targets are aiohttp test servers; misbehaving ones are raw ``asyncio`` TCP servers
that answer exactly the bytes a test needs (or nothing at all).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import pytest
from aiohttp import web
from multidict import MultiDict

from probes.engine.engine import FAILURES, RUNNERS, Engine
from probes.runs.results import Outcome, Phase, Reason
from tests._support.journeys import (
    UNRESOLVABLE,
    VOICE,
    failed,
    one_journey,
    one_step,
    run,
    run_journey,
)
from tests._support.servers import ServerFactory, free_port, serve
from tests._support.timing import CLOCK_SLACK, SLACK

USER_AGENT: Final = "CareApp/5.2.0 (Android 14; Pixel 8)"
USERNAME: Final = "demo@carewatch.example"
#: How long a raw server waits for the client to hang up before giving up on it.
STALL_LIMIT: Final = 10.0

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawServer = Callable[[RawHandler], Awaitable[str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- checking phases ------------------------------------------------------------------------------


def assert_sane(phases: object) -> None:
    """Every phase is present and non-negative, and they add up to the total."""
    assert isinstance(phases, dict)
    assert set(phases) >= {Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.RECEIVE, Phase.TOTAL}
    assert all(seconds >= 0 for seconds in phases.values())
    parts = phases[Phase.DNS] + phases[Phase.CONNECT] + phases[Phase.WAIT] + phases[Phase.RECEIVE]
    assert parts == pytest.approx(phases[Phase.TOTAL], abs=1e-6)
    assert phases[Phase.TOTAL] >= phases[Phase.WAIT]


# --- raw TCP servers for misbehaving targets ------------------------------------------------------


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """Start raw TCP servers on 127.0.0.1: ``base_url = await raw_server(handler)``."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: RawHandler) -> str:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                pass  # the client hung up, or never did: either way this connection is over
            finally:
                writer.close()

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers."""
    async with asyncio.timeout(STALL_LIMIT):
        return await reader.readuntil(b"\r\n\r\n")


async def until_hangup(reader: asyncio.StreamReader) -> None:
    """Read and drop everything until the client closes the connection (bounded)."""
    async with asyncio.timeout(STALL_LIMIT):
        while await reader.read(64 * 1024):
            pass


def answering(raw: bytes, *, then_wait: bool = False) -> RawHandler:
    """A handler that reads the request head, writes ``raw``, then closes (or waits)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(raw)
        await writer.drain()
        if then_wait:
            await until_hangup(reader)

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts the connection and the request, and never answers."""
    await until_hangup(reader)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request, then closes the connection without a word."""
    await read_head(reader)


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request, then resets the connection (RST, not FIN)."""
    await read_head(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port that listens but whose accept queue is full, so a new connect hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # the queue is full: this connect, like the engine's, hangs
        else:
            pytest.skip("this kernel accepts connections beyond the listen backlog")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# --- a journey threading captures into later steps ------------------------------------------------


async def test_captures_and_device_profile_reach_later_requests(
    aiohttp_server: ServerFactory,
) -> None:
    seen: list[dict[str, Any]] = []

    async def login(request: web.Request) -> web.Response:
        seen.append({"headers": request.headers.copy(), "json": await request.json()})
        body = {"token": "tok-123", "user": {"id": 42}, "note": "ticket T-77 opened"}
        return web.json_response(body, headers={"X-Session": "sess-9"})

    async def echo(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": MultiDict(request.query),
                "headers": request.headers.copy(),
                "content_type": request.content_type,
                "text": await request.text(),
            }
        )
        return web.json_response({"ok": True})

    base = await serve(aiohttp_server, login=login, **{"echo__{tail}": echo})
    result = await run(
        {
            "name": "login",
            "method": "POST",
            "url": "${base}/login",
            "json": {"username": "${username}"},
            "capture": {
                "token": {"json": "$.token"},
                "user_id": {"json": "$.user.id"},
                "session": {"header": "X-Session"},
                "ticket": {"regex": r"ticket (T-\d+)"},
            },
        },
        {
            "name": "by-json",
            "method": "POST",
            "url": "${base}/echo/${ticket}",
            "headers": {"Authorization": "Bearer ${token}", "X-Session": "${session}"},
            "query": {"user": "${user_id}", "tag": ["care", "${ticket}"]},
            "json": {"user": "${user_id}", "token": "${token}", "note": "for ${ticket}"},
        },
        {
            "name": "by-form",
            "method": "POST",
            "url": "${base}/echo/form",
            "form": {"ticket": "${ticket}", "user": "${user_id}"},
        },
        {
            "name": "by-body",
            "method": "PUT",
            "url": "${base}/echo/body",
            "body": "ticket=${ticket};user=${user_id}",
        },
        name="open-ticket",
        device="android",
        base=base,
        username=USERNAME,
    )

    assert result.ok, result.to_dict()
    assert [s.name for s in result.final.steps] == ["login", "by-json", "by-form", "by-body"]
    login_seen, by_json, by_form, by_body = seen
    assert login_seen["json"] == {"username": USERNAME}
    for request in seen:
        assert request["headers"].getall("User-Agent") == [USER_AGENT]
        assert request["headers"].getall("X-App-Version") == ["5.2.0"]
        assert request["headers"].getall("X-Platform") == ["android"]

    assert by_json["method"] == "POST"
    assert by_json["path"] == "/echo/T-77"
    assert by_json["query"].getall("user") == ["42"]
    assert by_json["query"].getall("tag") == ["care", "T-77"]
    assert by_json["headers"]["Authorization"] == "Bearer tok-123"
    assert by_json["headers"]["X-Session"] == "sess-9"
    assert by_json["content_type"] == "application/json"
    # a lone ${user_id} keeps the captured number a number inside a JSON body
    assert json.loads(by_json["text"]) == {"user": 42, "token": "tok-123", "note": "for T-77"}

    assert by_form["content_type"] == "application/x-www-form-urlencoded"
    assert by_form["text"] in ("ticket=T-77&user=42", "user=42&ticket=T-77")

    assert by_body["method"] == "PUT"
    assert by_body["text"] == "ticket=T-77;user=42"


async def test_a_step_header_overrides_a_device_header_whatever_its_case(
    aiohttp_server: ServerFactory,
) -> None:
    seen: list[web.Request] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(text="ok")

    base = await serve(aiohttp_server, echo=echo)
    result = await run(
        {
            "name": "same-case",
            "url": "${base}/echo",
            "headers": {"X-Platform": "ios", "User-Agent": "CareApp-Beta/6.0"},
        },
        {
            "name": "other-case",
            "url": "${base}/echo",
            "headers": {"x-platform": "harmony", "user-agent": "CareApp-Beta/6.1"},
        },
        device="android",
        base=base,
    )

    assert result.ok, result.to_dict()
    same_case, other_case = (request.headers for request in seen)
    assert same_case.getall("X-Platform") == ["ios"]
    assert same_case.getall("User-Agent") == ["CareApp-Beta/6.0"]
    assert other_case.getall("X-Platform") == ["harmony"]
    assert other_case.getall("User-Agent") == ["CareApp-Beta/6.1"]
    assert other_case.getall("X-App-Version") == ["5.2.0"]  # untouched device headers stay


async def test_cookies_and_connections_last_one_attempt(aiohttp_server: ServerFactory) -> None:
    """Steps of one attempt share cookies and the run id; the next attempt starts afresh."""
    seen: list[tuple[str, str | None, str]] = []

    async def step(request: web.Request) -> web.Response:
        seen.append((request.path, request.cookies.get("sid"), request.headers["X-Run"]))
        response = web.Response(text="ok", status=200 if request.path == "/first" else 503)
        if request.path == "/first":
            response.set_cookie("sid", f"cookie-{len(seen)}")
        return response

    base = await serve(aiohttp_server, first=step, second=step)
    result = await run(
        {"name": "first", "url": "${base}/first", "headers": {"X-Run": "${run_id}"}},
        {"name": "second", "url": "${base}/second", "headers": {"X-Run": "${run_id}"}},
        retries=1,
        base=base,
    )

    assert len(result.attempts) == 2
    (p1, c1, run1), (p2, c2, run2), (p3, c3, run3), (p4, c4, run4) = seen
    assert (p1, p2, p3, p4) == ("/first", "/second", "/first", "/second")
    assert (c1, c2) == (None, "cookie-1")  # the cookie set by step 1 reaches step 2
    assert (c3, c4) == (None, "cookie-3")  # ...but not the next attempt
    assert run1 == run2 != run3 == run4
    for attempt in result.attempts:
        first, second = attempt.steps
        assert first.phases[Phase.CONNECT] > 0  # a new connection for each attempt
        assert second.phases[Phase.CONNECT] == 0  # reused within it


# --- phases ---------------------------------------------------------------------------------------


async def test_phases_are_present_and_add_up(aiohttp_server: ServerFactory) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    base = await serve(aiohttp_server, hello=hello)
    result = await run(one_step("${base}/hello"), base=base)

    step = result.final.steps[0]
    assert step.outcome is Outcome.PASSED
    assert_sane(step.phases)
    assert step.phases[Phase.DNS] == 0  # an IP literal is never resolved
    assert step.phases[Phase.CONNECT] > 0
    assert step.phases[Phase.WAIT] > 0
    assert 0 < step.phases[Phase.TOTAL] <= result.duration


async def test_a_host_name_is_resolved_and_timed(aiohttp_server: ServerFactory) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    base = await serve(aiohttp_server, hello=hello)
    port = base.rsplit(":", 1)[1]
    result = await run(one_step(f"http://localhost:{port}/hello"))

    step = result.final.steps[0]
    assert step.outcome is Outcome.PASSED, step
    assert_sane(step.phases)
    assert step.phases[Phase.DNS] > 0


async def test_a_slow_answer_shows_as_wait(aiohttp_server: ServerFactory) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response(text="late")

    base = await serve(aiohttp_server, slow=slow)
    result = await run(one_step("${base}/slow"), base=base)

    step = result.final.steps[0]
    assert step.outcome is Outcome.PASSED
    assert_sane(step.phases)
    assert 0.2 - CLOCK_SLACK <= step.phases[Phase.WAIT] < 0.2 + SLACK
    assert step.phases[Phase.RECEIVE] < step.phases[Phase.WAIT]


async def test_a_slowly_streamed_body_shows_as_receive(aiohttp_server: ServerFactory) -> None:
    chunks, pause = 3, 0.1

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # the headers leave now; the body follows slowly
        for _ in range(chunks):
            await asyncio.sleep(pause)
            await response.write(b"x" * 100)
        await response.write_eof()
        return response

    base = await serve(aiohttp_server, trickle=trickle)
    result = await run(one_step("${base}/trickle"), base=base)

    step = result.final.steps[0]
    assert step.outcome is Outcome.PASSED
    assert_sane(step.phases)
    # the body cannot end sooner than the pauses after the headers, less loopback latency
    assert chunks * pause - 0.05 <= step.phases[Phase.RECEIVE] < chunks * pause + SLACK
    assert step.phases[Phase.WAIT] < step.phases[Phase.RECEIVE]


async def test_the_second_step_reuses_the_connection(aiohttp_server: ServerFactory) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    base = await serve(aiohttp_server, hello=hello)
    result = await run(
        {"name": "first", "url": "${base}/hello"},
        {"name": "second", "url": "${base}/hello"},
        base=base,
    )

    first, second = result.final.steps
    assert result.ok
    assert_sane(first.phases)
    assert_sane(second.phases)
    assert first.phases[Phase.CONNECT] > 0
    assert second.phases[Phase.CONNECT] == 0


async def test_redirects_are_followed_and_timed_unless_told_not_to(
    aiohttp_server: ServerFactory,
) -> None:
    async def moved(request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)
        raise web.HTTPFound("/here")

    async def here(request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)
        return web.Response(text="here")

    base = await serve(aiohttp_server, moved=moved, here=here)
    result = await run(
        {"name": "follow", "url": "${base}/moved", "expect": {"body": {"contains": "here"}}},
        {
            "name": "stay",
            "url": "${base}/moved",
            "follow_redirects": False,
            "expect": {"status": 302},
        },
        base=base,
    )

    follow, stay = result.final.steps
    assert result.ok, result.to_dict()
    assert (follow.status, stay.status) == (200, 302)
    assert_sane(follow.phases)
    # Both answers were waited for, each 0.1 s.
    assert follow.phases[Phase.WAIT] >= 0.2 - CLOCK_SLACK
    assert stay.phases[Phase.WAIT] >= 0.1 - CLOCK_SLACK


async def test_timeout_after_a_redirect_on_the_same_connection(raw_server: RawServer) -> None:
    async def redirect_then_stall(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n")
        await read_head(reader)  # the redirected request, on the same kept-alive connection
        await until_hangup(reader)

    base = await raw_server(redirect_then_stall)
    result = await run(one_step("${base}/", timeout="300ms"), base=base)

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the response"
    assert step.phases[Phase.WAIT] >= 0.25 - CLOCK_SLACK


# --- failure reasons: timeout ---------------------------------------------------------------------


async def test_journey_timeout_against_a_silent_server(raw_server: RawServer) -> None:
    base = await raw_server(silent)
    config = one_journey({"name": "ask", "url": "${base}/"}, timeout="500ms", base=base)
    engine = Engine(config.variables, location="test")

    began = time.perf_counter()
    result = await engine.run(config.journeys[0])
    elapsed = time.perf_counter() - began

    step = failed(result)
    assert step.name == "ask"
    assert step.reason is Reason.TIMEOUT
    assert step.message == "journey timeout 500ms reached while waiting for the response"
    assert step.status is None
    assert_sane(step.phases)
    assert 0.5 - CLOCK_SLACK <= result.duration <= 0.6
    assert 0.5 - CLOCK_SLACK <= elapsed <= 0.6


async def test_step_timeout_shorter_than_the_journeys(raw_server: RawServer) -> None:
    base = await raw_server(silent)
    result = await run(
        {"name": "ask", "url": "${base}/", "timeout": "300ms"}, timeout="3s", base=base
    )

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the response"
    assert 0.3 - CLOCK_SLACK <= step.phases[Phase.TOTAL] <= 0.4
    assert 0.3 - CLOCK_SLACK <= result.duration <= 0.4


async def test_journey_timeout_wins_when_less_of_it_is_left(
    aiohttp_server: ServerFactory, raw_server: RawServer
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="ok")

    slow_base = await serve(aiohttp_server, slow=slow)
    silent_base = await raw_server(silent)
    result = await run(
        {"name": "first", "url": "${slow}/slow"},
        {"name": "second", "url": "${silent}/", "timeout": "2s"},
        timeout="600ms",
        slow=slow_base,
        silent=silent_base,
    )

    first, second = result.final.steps
    assert first.outcome is Outcome.PASSED
    assert second.reason is Reason.TIMEOUT
    assert second.message == "journey timeout 600ms reached while waiting for the response"
    assert 0.6 - CLOCK_SLACK <= result.duration <= 0.7


async def test_timeout_while_reading_the_body(raw_server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly the beginning"
    base = await raw_server(answering(head, then_wait=True))
    result = await run(one_step("${base}/", timeout="300ms"), base=base)

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while reading the response body"
    assert step.status == 200
    assert step.phases[Phase.RECEIVE] > step.phases[Phase.WAIT]


async def test_timeout_while_connecting(unaccepting_port: int) -> None:
    result = await run(one_step(f"http://127.0.0.1:{unaccepting_port}/", timeout="300ms"))

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while connecting"
    assert step.phases[Phase.CONNECT] >= 0.25 - CLOCK_SLACK


# --- failure reasons: connect, tls, dns -----------------------------------------------------------


async def test_connect_to_a_closed_port() -> None:
    port = free_port()
    result = await run(one_step(f"http://127.0.0.1:{port}/"))

    step = failed(result)
    assert step.reason is Reason.CONNECT
    assert step.message.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert step.status is None


async def test_connect_when_the_server_hangs_up(raw_server: RawServer) -> None:
    base = await raw_server(hang_up)
    result = await run(one_step("${base}/"), base=base)

    step = failed(result)
    assert step.reason is Reason.CONNECT
    assert step.message == "the server closed the connection without answering"


async def test_tls_against_a_plain_http_port(aiohttp_server: ServerFactory) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    base = await serve(aiohttp_server, hello=hello)
    result = await run(one_step(base.replace("http://", "https://") + "/hello"))

    step = failed(result)
    assert step.reason is Reason.TLS
    assert step.message.startswith("TLS handshake failed: ")


async def test_dns_for_a_name_that_cannot_resolve() -> None:
    began = time.perf_counter()
    result = await run(one_step(f"http://{UNRESOLVABLE}/"))

    step = failed(result)
    assert step.reason is Reason.DNS
    assert step.message.startswith(f"cannot resolve {UNRESOLVABLE}: ")
    assert_sane(step.phases)
    assert time.perf_counter() - began < 2  # the choice of name keeps this off the network


# --- failure reasons: the response ----------------------------------------------------------------


async def body_handler(request: web.Request) -> web.Response:
    """A small JSON document with a header, for expectation tests."""
    return web.json_response({"state": "open", "count": 3}, headers={"X-Env": "prod"})


async def test_http_status(aiohttp_server: ServerFactory) -> None:
    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    base = await serve(aiohttp_server, down=down)
    single = await run(one_step("${base}/down", expect={"status": 200}), base=base)
    several = await run(one_step("${base}/down", expect={"status": [200, "3xx"]}), base=base)
    default = await run(one_step("${base}/down"), base=base)

    assert failed(single).reason is Reason.HTTP_STATUS
    assert failed(single).status == 503
    assert failed(single).message == "expected status 200, got 503"
    assert failed(several).message == "expected status 200 or 3xx, got 503"
    assert failed(default).message == "expected status 2xx, got 503"


@pytest.mark.parametrize(
    ("expect", "fragments"),
    [
        pytest.param({"headers": {"X-Env": "staging"}}, ["X-Env", "staging", "prod"], id="header"),
        pytest.param({"body": {"contains": "closed"}}, ["body", "closed"], id="body"),
        pytest.param({"json": [{"path": "$.count", "gt": 5}]}, ["$.count", "5", "3"], id="json"),
    ],
)
async def test_assertion(
    aiohttp_server: ServerFactory, expect: dict[str, Any], fragments: list[str]
) -> None:
    base = await serve(aiohttp_server, doc=body_handler)
    result = await run(one_step("${base}/doc", expect=expect), base=base)

    step = failed(result)
    assert step.reason is Reason.ASSERTION
    assert step.status == 200
    for fragment in fragments:
        assert fragment in step.message


async def test_slow_when_over_max_duration(aiohttp_server: ServerFactory) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="ok")

    base = await serve(aiohttp_server, slow=slow)
    result = await run(one_step("${base}/slow", expect={"max_duration": "100ms"}), base=base)

    step = failed(result)
    assert step.reason is Reason.SLOW
    assert step.status == 200
    assert "100ms" in step.message


@pytest.mark.parametrize(
    ("capture", "fragments"),
    [
        pytest.param({"token": {"json": "$.token"}}, ["token", "$.token"], id="json"),
        pytest.param({"session": {"header": "X-Session"}}, ["session", "X-Session"], id="header"),
        pytest.param({"ticket": {"regex": r"T-\d+"}}, ["ticket", r"T-\d+"], id="regex"),
    ],
)
async def test_capture(
    aiohttp_server: ServerFactory, capture: dict[str, Any], fragments: list[str]
) -> None:
    base = await serve(aiohttp_server, doc=body_handler)
    result = await run(one_step("${base}/doc", capture=capture), base=base)

    step = failed(result)
    assert step.reason is Reason.CAPTURE
    for fragment in fragments:
        assert fragment in step.message


async def test_protocol_for_a_garbage_status_line(raw_server: RawServer) -> None:
    base = await raw_server(answering(b"HTTP/1.1 abc\r\n\r\n"))
    result = await run(one_step("${base}/"), base=base)

    step = failed(result)
    assert step.reason is Reason.PROTOCOL
    assert step.message.startswith("malformed response: ")


@pytest.mark.parametrize(
    ("size", "passes"), [(1023, True), (1024, True), (1025, False), (100_000, False)]
)
async def test_protocol_for_a_body_over_the_limit(
    aiohttp_server: ServerFactory, size: int, passes: bool
) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * size)

    base = await serve(aiohttp_server, big=big)
    result = await run(one_step("${base}/big"), base=base, max_body_bytes=1024)

    assert result.ok is passes
    if not passes:
        step = failed(result)
        assert step.reason is Reason.PROTOCOL
        assert step.message == "response body larger than 1024 bytes"


# --- retries --------------------------------------------------------------------------------------


@pytest.fixture
def flaky() -> Callable[[int], Handler]:
    """``flaky(n)``: a handler answering 503 to its first ``n`` requests, then 200."""

    def make(failures: int) -> Handler:
        count = 0

        async def handle(request: web.Request) -> web.Response:
            nonlocal count
            count += 1
            return web.Response(status=503 if count <= failures else 200, text=str(count))

        return handle

    return make


async def test_retries_until_success(
    aiohttp_server: ServerFactory, flaky: Callable[[int], Handler]
) -> None:
    base = await serve(aiohttp_server, flaky=flaky(2))
    result = await run(one_step("${base}/flaky"), retries=2, base=base)

    assert result.ok
    assert result.retries == 2
    assert [a.number for a in result.attempts] == [1, 2, 3]
    assert [a.ok for a in result.attempts] == [False, False, True]
    assert [a.steps[0].reason for a in result.attempts[:2]] == [Reason.HTTP_STATUS] * 2
    assert result.final.failed_step is None


async def test_retries_exhausted(
    aiohttp_server: ServerFactory, flaky: Callable[[int], Handler]
) -> None:
    base = await serve(aiohttp_server, flaky=flaky(3))
    result = await run(one_step("${base}/flaky"), retries=2, base=base)

    assert not result.ok
    assert result.retries == 2
    assert len(result.attempts) == 3
    assert failed(result).message == "expected status 2xx, got 503"


async def test_no_retries_fails_at_once(
    aiohttp_server: ServerFactory, flaky: Callable[[int], Handler]
) -> None:
    base = await serve(aiohttp_server, flaky=flaky(1))
    result = await run(one_step("${base}/flaky"), retries=0, base=base)

    assert not result.ok
    assert result.retries == 0
    assert len(result.attempts) == 1
    assert failed(result).reason is Reason.HTTP_STATUS


# --- finally steps --------------------------------------------------------------------------------


@pytest.fixture
async def care_desk(aiohttp_server: ServerFactory) -> tuple[str, list[str]]:
    """A server with /open (a ticket), /fail (503), /close (204) and /broken (500), and the
    list of paths it was asked for."""
    asked: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        asked.append(request.path_qs)
        if request.path == "/open":
            return web.json_response({"ticket": "T-1"})
        if request.path == "/close":
            return web.Response(status=204)
        return web.Response(status=503 if request.path == "/fail" else 500)

    base = await serve(aiohttp_server, open=handle, fail=handle, close=handle, broken=handle)
    return base, asked


#: The care desk's journey: open a ticket, capturing its number, and close it in ``finally``.
OPEN: Final = {"name": "open", "url": "${base}/open", "capture": {"ticket": {"json": "$.ticket"}}}
CLOSE: Final = {"name": "close", "method": "DELETE", "url": "${base}/close?ticket=${ticket}"}


async def test_finally_runs_after_a_failure(care_desk: tuple[str, list[str]]) -> None:
    base, asked = care_desk
    result = await run(
        OPEN,
        {"name": "fail", "url": "${base}/fail"},
        {"name": "never", "url": "${base}/open"},
        cleanup=[CLOSE],
        base=base,
    )

    assert asked == ["/open", "/fail", "/close?ticket=T-1"]
    assert [(s.name, s.outcome, s.cleanup) for s in result.final.steps] == [
        ("open", Outcome.PASSED, False),
        ("fail", Outcome.FAILED, False),
        ("close", Outcome.PASSED, True),
    ]
    assert failed(result).name == "fail"


async def test_finally_runs_after_success(care_desk: tuple[str, list[str]]) -> None:
    base, asked = care_desk
    result = await run(OPEN, cleanup=[CLOSE], base=base)

    assert result.ok
    assert asked == ["/open", "/close?ticket=T-1"]
    assert result.final.steps[-1].cleanup
    assert result.final.steps[-1].status == 204


async def test_finally_runs_after_a_timeout_with_its_own_budget(
    care_desk: tuple[str, list[str]], raw_server: RawServer
) -> None:
    base, asked = care_desk
    silent_base = await raw_server(silent)
    result = await run(
        {"name": "hangs", "url": "${silent}/"},
        cleanup=[{"name": "close", "method": "DELETE", "url": "${base}/close"}],
        timeout="300ms",
        base=base,
        silent=silent_base,
    )

    hangs, close = result.final.steps
    assert hangs.reason is Reason.TIMEOUT
    assert close.outcome is Outcome.PASSED
    assert asked == ["/close"]


async def test_finally_with_an_uncaptured_variable_is_skipped(
    care_desk: tuple[str, list[str]],
) -> None:
    base, asked = care_desk
    result = await run(
        {"name": "fail", "url": "${base}/fail"},
        OPEN,
        cleanup=[
            CLOSE,
            {"name": "always", "method": "DELETE", "url": "${base}/close?run=${run_id}"},
        ],
        base=base,
    )

    fail, close, always = result.final.steps
    assert close.outcome is Outcome.SKIPPED
    assert close.cleanup
    assert close.reason is None
    assert "${ticket}" in close.message
    assert always.outcome is Outcome.PASSED  # a skipped cleanup does not stop the next one
    assert asked[:1] == ["/fail"]
    assert len(asked) == 2
    assert asked[1].startswith("/close?run=")
    assert failed(result) is fail


async def test_finally_whose_expectation_needs_an_uncaptured_value_is_skipped(
    care_desk: tuple[str, list[str]],
) -> None:
    base, asked = care_desk
    result = await run(
        {"name": "fail", "url": "${base}/fail"},
        OPEN,
        cleanup=[
            {
                "name": "close",
                "url": "${base}/close",
                "expect": {"headers": {"X-Ticket": "${ticket}"}},
            }
        ],
        base=base,
    )

    close = result.final.steps[-1]
    assert close.outcome is Outcome.SKIPPED
    assert "${ticket}" in close.message
    assert asked == ["/fail"]  # the cleanup request was never sent


async def test_a_failing_finally_step_fails_the_run(care_desk: tuple[str, list[str]]) -> None:
    base, _ = care_desk
    result = await run(
        {"name": "open", "url": "${base}/open"},
        cleanup=[{"name": "cleanup", "url": "${base}/broken"}],
        base=base,
    )

    step = failed(result)
    assert step.name == "cleanup"
    assert step.cleanup
    assert step.message == "expected status 2xx, got 500"
    assert result.to_dict()["failed_step"] == "cleanup"


async def test_a_failing_finally_step_is_not_retried(care_desk: tuple[str, list[str]]) -> None:
    base, asked = care_desk
    result = await run(
        {"name": "open", "url": "${base}/open"},
        cleanup=[{"name": "cleanup", "url": "${base}/broken"}],
        retries=2,
        base=base,
    )

    assert not result.ok
    assert len(result.attempts) == 1  # running the journey again would only open more tickets
    assert asked == ["/open", "/broken"]


async def test_failed_step_prefers_the_main_failure(care_desk: tuple[str, list[str]]) -> None:
    base, _ = care_desk
    result = await run(
        {"name": "fail", "url": "${base}/fail"},
        cleanup=[{"name": "cleanup", "url": "${base}/broken"}],
        base=base,
    )

    assert [s.outcome for s in result.final.steps] == [Outcome.FAILED, Outcome.FAILED]
    step = failed(result)
    assert step.name == "fail"
    assert not step.cleanup
    assert result.to_dict()["message"] == "expected status 2xx, got 503"


# --- hostile targets ------------------------------------------------------------------------------


def _deep_json() -> bytes:
    body = b"[" * 200_000 + b"]" * 200_000
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


HOSTILE: Final = [
    pytest.param(reset, Reason.CONNECT, id="reset"),
    pytest.param(
        answering(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
        Reason.PROTOCOL,
        id="huge-header",
    ),
    pytest.param(
        answering(b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 20_000 + b"\r\n"),
        Reason.PROTOCOL,
        id="many-headers",
    ),
    pytest.param(answering(bytes(range(256)) * 4), Reason.PROTOCOL, id="binary-junk"),
    pytest.param(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
        Reason.PROTOCOL,
        id="truncated-body",
    ),
    pytest.param(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"),
        Reason.PROTOCOL,
        id="bad-chunk",
    ),
    pytest.param(
        answering(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
        ),
        Reason.PROTOCOL,
        id="bad-gzip",
    ),
    pytest.param(
        answering(b"HTTP/1.1 302 Found\r\nLocation: /\r\nConnection: close\r\n\r\n"),
        Reason.PROTOCOL,
        id="redirect-loop",
    ),
    pytest.param(answering(_deep_json()), Reason.PROTOCOL, id="deeply-nested-json"),
]


@pytest.mark.parametrize(("handler", "reason"), HOSTILE)
async def test_a_hostile_target_becomes_a_failed_step(
    raw_server: RawServer, handler: RawHandler, reason: Reason
) -> None:
    base = await raw_server(handler)
    ask = one_step("${base}/", expect={"json": [{"path": "$.state", "exists": True}]})
    result = await run(ask, base=base)  # must not raise, whatever the target does

    step = failed(result)
    assert step.reason is reason, step
    assert step.message
    json.dumps(result.to_dict())


async def test_a_json_path_the_response_breaks_does_not_escape(
    aiohttp_server: ServerFactory,
) -> None:
    """jsonpath-ng raises TypeError sorting a list of mixed types: the step fails, no more."""

    async def mixed(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"p": "x"}, {"p": 3}]})

    base = await serve(aiohttp_server, mixed=mixed)
    expect = {"json": [{"path": r"$.items[\p]", "exists": True}]}
    result = await run(one_step("${base}/mixed", expect=expect), base=base)

    step = failed(result)
    assert step.reason in (Reason.INTERNAL, Reason.ASSERTION)
    assert step.message


# --- results as data ------------------------------------------------------------------------------


async def test_to_dict_is_json_and_names_the_failure(aiohttp_server: ServerFactory) -> None:
    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503)

    base = await serve(aiohttp_server, down=down)
    result = await run({"name": "status", "url": "${base}/down"}, retries=1, base=base)

    data = json.loads(json.dumps(result.to_dict()))
    assert data["channel"] == "app"
    assert data["journey"] == "j"
    assert data["location"] == "test"
    assert data["success"] is False
    assert data["failed_step"] == "status"
    assert data["reason"] == "http_status"
    assert data["message"] == "expected status 2xx, got 503"
    assert len(data["attempts"]) == 2
    step = data["attempts"][-1]["steps"][0]
    assert step["status"] == 503
    assert step["outcome"] == "failed"
    assert set(step["phases_seconds"]) == {"dns", "connect", "wait", "receive", "total"}


async def test_to_dict_of_a_success(aiohttp_server: ServerFactory) -> None:
    base = await serve(aiohttp_server, doc=body_handler)
    result = await run(one_step("${base}/doc"), base=base)

    data = json.loads(json.dumps(result.to_dict()))
    assert data["success"] is True
    assert (data["failed_step"], data["reason"], data["message"]) == (None, None, "")
    assert data["duration_seconds"] > 0


def test_every_step_kind_has_a_runner_and_a_table_for_what_it_raises() -> None:
    assert FAILURES.keys() == RUNNERS.keys()


#: Descriptors left below the lowered limit while a test exhausts them (then filled up).
SPARE_DESCRIPTORS: Final = 32


@contextmanager
def no_descriptor_left() -> Iterator[None]:
    """Inside, this process cannot open one more file descriptor (EMFILE): the soft limit is
    lowered just above those open, and the rest are taken by /dev/null."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + SPARE_DESCRIPTORS, hard))
    taken: list[int] = []
    try:
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(
    "step",
    [
        one_step("http://127.0.0.1:${port}/"),
        {"name": "s", "tcp": {"address": "127.0.0.1:${port}", "send": "x"}},
    ],
    ids=["http", "tcp"],
)
async def test_a_step_the_agent_has_no_descriptor_for_fails_as_the_agents(
    step: dict[str, Any],
) -> None:
    """Issue 12: with its descriptors gone, every probe failed with "connect ... Too many open
    files", blaming the target. The reason says it is the agent's."""
    journey = one_journey(step, channel=VOICE, port=free_port())

    with no_descriptor_left():
        result = await run_journey(journey)

    step_result = failed(result)
    assert step_result.reason is Reason.AGENT_RESOURCES
    assert step_result.message == (
        "the agent ran out of file descriptors (Too many open files): "
        "this agent's failure, not the target's"
    )
