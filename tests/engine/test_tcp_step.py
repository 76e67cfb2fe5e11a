"""TCP steps against raw ``asyncio`` servers on loopback: a SIP-like port that answers
``OPTIONS`` with ``SIP/2.0 200 OK``, and servers that answer wrong, hang up, stay silent, or
speak TLS with a certificate made by ``trustme``."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import pytest
import trustme

from probes.errors import ConfigError
from probes.runs.results import Outcome, Phase, Reason, RunResult
from tests._support import journeys
from tests._support.journeys import UNRESOLVABLE, VOICE, Step, failed, one_journey
from tests._support.servers import free_port
from tests._support.timing import CLOCK_SLACK

#: How long a test server waits for the probe before giving up on it.
STALL_LIMIT: Final = 5.0
SIP_OK: Final = b"SIP/2.0 200 OK\r\nCall-ID: c-42@care\r\nContent-Length: 0\r\n\r\n"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Serve = Callable[..., Awaitable[int]]


async def run(*steps: Step, **options: Any) -> RunResult:
    """Run one journey of ``steps`` on the voice channel with a fresh engine."""
    return await journeys.run(*steps, channel=VOICE, **options)


def options(address: str, **fields: Any) -> dict[str, Any]:
    """A step sending a SIP OPTIONS to ``address`` and expecting ``SIP/2.0 200``."""
    tcp = {"address": address, "send": "OPTIONS sip:care@127.0.0.1 SIP/2.0\r\n\r\n"}
    tcp["expect"] = {"contains": "SIP/2.0 200"}
    tcp.update(fields.pop("tcp", {}))
    return {"name": "sip-options", "tcp": tcp, **fields}


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start raw TCP (or TLS) servers on 127.0.0.1: ``port = await serve(handler, ssl=...)``."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, *, ssl: ssl.SSLContext | None = None) -> int:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                async with asyncio.timeout(STALL_LIMIT):
                    await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
                pass  # the probe hung up, or never did: this connection is over either way
            finally:
                writer.close()

        server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=ssl)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def sip(answer: bytes, *, then: str = "close") -> Handler:
    """Reads one request (up to the blank line), answers ``answer``, then closes or waits."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if then == "wait":
            await reader.read()  # until the probe hangs up

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")


# --- a working exchange ---------------------------------------------------------------------


async def test_the_expected_answer_passes_and_is_timed(serve: Serve) -> None:
    port = await serve(sip(SIP_OK, then="wait"))
    result = await run(options(f"127.0.0.1:{port}"))
    assert result.ok, result.to_dict()
    step = result.final.steps[0]
    assert step.status is None
    phases = step.phases
    assert set(phases) == {Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.RECEIVE, Phase.TOTAL}
    assert all(seconds >= 0 for seconds in phases.values())
    parts = phases[Phase.DNS] + phases[Phase.CONNECT] + phases[Phase.WAIT] + phases[Phase.RECEIVE]
    assert parts == pytest.approx(phases[Phase.TOTAL], abs=1e-6)
    traffic = step.traffic  # for the network-experience estimate
    assert traffic is not None
    sent = len(options("x")["tcp"]["send"])
    assert (traffic.dns_lookups, traffic.new_connections, traffic.tls_handshakes) == (0, 1, 0)
    assert (traffic.requests, traffic.bytes_sent, traffic.bytes_received) == (1, sent, len(SIP_OK))


async def test_the_step_stops_reading_once_the_expectation_holds(serve: Serve) -> None:
    """The server keeps the connection open: the step must not wait for it to close."""
    port = await serve(sip(SIP_OK, then="wait"))
    started = time.perf_counter()
    result = await run(options(f"127.0.0.1:{port}", timeout="3s"))
    assert result.ok
    assert time.perf_counter() - started < 1.0


async def test_a_regex_capture_reaches_a_later_step(serve: Serve) -> None:
    heard: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.readuntil(b"\r\n"))
        writer.write(b"ECHO " + heard[-1])
        await writer.drain()

    sip_port = await serve(sip(SIP_OK))
    echo_port = await serve(echo)
    steps = [
        options(f"127.0.0.1:{sip_port}", capture={"call_id": {"regex": r"Call-ID: (\S+)"}}),
        {
            "name": "echo",
            "tcp": {
                "address": f"127.0.0.1:{echo_port}",
                "send": "call ${call_id}\r\n",
                "expect": {"regex": r"ECHO call \S+@care"},
            },
        },
    ]
    result = await run(*steps)
    assert result.ok, result.to_dict()
    assert heard == [b"call c-42@care\r\n"]


async def test_a_finally_step_needing_an_uncaptured_value_is_skipped(serve: Serve) -> None:
    port = await serve(hang_up)
    main = options(f"127.0.0.1:{port}", capture={"call_id": {"regex": r"Call-ID: (\S+)"}})
    bye = {"name": "bye", "tcp": {"address": f"127.0.0.1:{port}", "send": "BYE ${call_id}\r\n"}}
    result = await run(main, cleanup=[bye])
    assert result.final.failed_step is not None
    assert result.final.failed_step.name == "sip-options"
    assert result.final.steps[1].outcome is Outcome.SKIPPED
    assert result.final.steps[1].message.startswith("not run: ${call_id} has no value")


async def test_a_banner_is_read_without_sending(serve: Serve) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 ivr.care ready\r\n")
        await writer.drain()
        await reader.read()

    port = await serve(banner)
    step = {"name": "ivr", "tcp": {"address": f"127.0.0.1:{port}", "expect": {"regex": "^220 "}}}
    assert (await run(step)).ok


async def test_without_expect_a_connection_is_enough(serve: Serve) -> None:
    port = await serve(silent)
    result = await run({"name": "port-open", "tcp": {"address": f"127.0.0.1:{port}"}})
    assert result.ok


async def test_an_ipv6_address_in_brackets(serve: Serve) -> None:
    try:
        server = await asyncio.start_server(sip(SIP_OK), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with server:
        port = server.sockets[0].getsockname()[1]
        assert (await run(options(f"[::1]:{port}"))).ok


# --- failures -------------------------------------------------------------------------------


async def test_a_wrong_answer_before_close_is_an_assertion(serve: Serve) -> None:
    port = await serve(sip(b"SIP/2.0 503 Service Unavailable\r\n\r\n"))
    step = failed(await run(options(f"127.0.0.1:{port}")))
    assert step.reason is Reason.ASSERTION
    assert step.message == (
        "the server closed the connection; expected to contain 'SIP/2.0 200', "
        "received 'SIP/2.0 503 Service Unavailable\\r\\n\\r\\n'"
    )


async def test_what_was_received_is_shown_truncated(serve: Serve) -> None:
    port = await serve(sip(b"x" * 5000))
    step = failed(await run(options(f"127.0.0.1:{port}")))
    assert step.reason is Reason.ASSERTION
    assert step.message.endswith("'...")
    assert len(step.message) < 300


async def test_a_peer_that_closes_without_a_word_is_connect(serve: Serve) -> None:
    port = await serve(hang_up)
    step = failed(await run(options(f"127.0.0.1:{port}")))
    assert step.reason is Reason.CONNECT
    assert step.message == "the server closed the connection without answering"


async def test_a_silent_peer_times_out_within_the_budget(serve: Serve) -> None:
    port = await serve(silent)
    started = time.perf_counter()
    step = failed(await run(options(f"127.0.0.1:{port}", timeout="300ms")))
    elapsed = time.perf_counter() - started
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the response"
    assert 0.3 - CLOCK_SLACK <= elapsed < 0.4
    assert step.phases[Phase.WAIT] == pytest.approx(0.3, abs=0.1)


async def test_a_slow_trickle_times_out_while_receiving(serve: Serve) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for _ in range(50):
            writer.write(b"SIP/2.0 100 Trying\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    port = await serve(trickle)
    step = failed(await run(options(f"127.0.0.1:{port}", timeout="300ms")))
    assert step.reason is Reason.TIMEOUT
    assert "reading the response" in step.message
    assert step.phases[Phase.RECEIVE] > 0.1


async def test_a_closed_port_is_connect() -> None:
    port = free_port()
    step = failed(await run(options(f"127.0.0.1:{port}")))
    assert step.reason is Reason.CONNECT
    assert step.message == f"cannot connect to 127.0.0.1:{port}: Connection refused"


async def test_a_name_that_does_not_resolve_is_dns() -> None:
    step = failed(await run(options(f"{UNRESOLVABLE}:5060")))
    assert step.reason is Reason.DNS
    assert step.message.startswith(f"cannot resolve {UNRESOLVABLE}: ")


async def test_more_than_the_byte_cap_is_protocol(serve: Serve) -> None:
    port = await serve(sip(b"SIP/2.0 100 Trying\r\n" * 200, then="wait"))
    step = failed(await run(options(f"127.0.0.1:{port}"), max_body_bytes=1024))
    assert step.reason is Reason.PROTOCOL
    assert step.message == "received more than 1024 bytes without the expected text"


async def test_a_capture_that_finds_nothing(serve: Serve) -> None:
    port = await serve(sip(SIP_OK))
    step = failed(await run(options(f"127.0.0.1:{port}", capture={"x": {"regex": "Via: (.*)"}})))
    assert step.reason is Reason.CAPTURE
    assert step.message == "x: /Via: (.*)/ matched nothing"


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "sip.care.test").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "care-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_tls_with_a_private_ca(
    serve: Serve, tls_server: ssl.SSLContext, ca_file: str
) -> None:
    port = await serve(sip(SIP_OK), ssl=tls_server)
    result = await run(options(f"127.0.0.1:{port}", tcp={"tls": {"ca_file": ca_file}}))
    assert result.ok, result.to_dict()
    step = result.final.steps[0]
    assert step.phases[Phase.TLS] > 0
    assert step.traffic is not None
    assert step.traffic.tls_handshakes == 1
    assert step.cert_expiry is not None
    assert step.cert_expiry > time.time()
    assert sum(v for p, v in step.phases.items() if p is not Phase.TOTAL) == pytest.approx(
        step.phases[Phase.TOTAL], abs=1e-6
    )


async def test_tls_verifies_the_server_name(
    serve: Serve, tls_server: ssl.SSLContext, ca_file: str
) -> None:
    port = await serve(sip(SIP_OK), ssl=tls_server)
    good = {"tls": {"ca_file": ca_file, "server_name": "sip.care.test"}}
    assert (await run(options(f"127.0.0.1:{port}", tcp=good))).ok
    bad = {"tls": {"ca_file": ca_file, "server_name": "other.care.test"}}
    step = failed(await run(options(f"127.0.0.1:{port}", tcp=bad)))
    assert step.reason is Reason.TLS
    assert step.message == (
        "hostname mismatch: certificate is for sip.care.test, 127.0.0.1, not other.care.test"
    )
    assert step.cert_expiry is not None  # read over a second handshake


async def test_an_untrusted_certificate_is_tls(serve: Serve, tls_server: ssl.SSLContext) -> None:
    port = await serve(sip(SIP_OK), ssl=tls_server)
    step = failed(await run(options(f"127.0.0.1:{port}", tcp={"tls": {}})))
    assert step.reason is Reason.TLS
    assert step.message.startswith("untrusted issuer: self-signed or unknown CA for 127.0.0.1 (")


async def test_insecure_skips_verification(serve: Serve, tls_server: ssl.SSLContext) -> None:
    port = await serve(sip(SIP_OK), ssl=tls_server)
    assert (await run(options(f"127.0.0.1:{port}", tcp={"tls": {"insecure": True}}))).ok


async def test_tls_against_a_plain_port_is_tls(serve: Serve, ca_file: str) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SIP/2.0 400 Bad Request\r\n\r\n")  # to the ClientHello
        await writer.drain()
        await reader.read()

    port = await serve(banner)
    step = failed(await run(options(f"127.0.0.1:{port}", tcp={"tls": {"ca_file": ca_file}})))
    assert step.reason is Reason.TLS
    assert step.message == "TLS handshake failed: the server did not answer in TLS (127.0.0.1)"


async def test_a_missing_ca_file_is_tls(serve: Serve, tmp_path: Path) -> None:
    port = await serve(sip(SIP_OK))
    missing = str(tmp_path / "nope.pem")
    step = failed(await run(options(f"127.0.0.1:{port}", tcp={"tls": {"ca_file": missing}})))
    assert step.reason is Reason.TLS
    assert step.message.startswith(f"cannot load tls.ca_file {missing}: ")


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tcp", "extra", "message"),
    [
        ({"address": "127.0.0.1"}, {}, "the port is missing"),
        ({"address": "::1:5060"}, {}, "an IPv6 address goes in brackets"),
        ({"address": "127.0.0.1:70000"}, {}, "with a port from 1 to 65535"),
        ({"address": "h:1", "expect": {}}, {}, "expected contains, regex or both"),
        ({"address": "h:1"}, {"capture": {"x": {"regex": "(.)"}}}, "capture needs tcp.expect"),
        (
            {"address": "h:1", "expect": {"contains": "x"}},
            {"capture": {"x": {"header": "Via"}}},
            "a TCP step captures with regex only",
        ),
    ],
)
def test_bad_tcp_steps_are_config_errors(
    tcp: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        one_journey({"name": "s", "tcp": tcp, **extra}, channel=VOICE)
    assert message in str(caught.value)


def test_a_templated_address_is_checked_when_rendered() -> None:
    config = one_journey({"name": "s", "tcp": {"address": "${location}:5060"}}, channel=VOICE)
    assert config.journeys[0].steps[0].tcp.address == "${location}:5060"


async def test_a_templated_address_that_renders_wrong_is_protocol() -> None:
    step = failed(await run({"name": "s", "tcp": {"address": "${location}"}}))
    assert step.reason is Reason.PROTOCOL
    assert step.message.startswith("invalid address: expected host:port")
