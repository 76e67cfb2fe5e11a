"""DNS steps against a small name server on loopback, built in the test with dnspython's message
API: it answers A, MX, TXT and CNAME from a dict, NXDOMAIN for names it does not know, and can
be told to stay silent or to send truncated UDP answers (the step then asks again over TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from probes.engine import dns_step
from probes.errors import ConfigError
from probes.runs.results import Phase, Reason, RunResult
from tests._support import journeys
from tests._support.journeys import UNRESOLVABLE, VOICE, Step, failed, one_journey
from tests._support.servers import free_port
from tests._support.timing import CLOCK_SLACK

#: name -> type -> records, as zone files write them.
ZONE: Final = {
    "care.test": {
        "A": ["10.0.0.1", "10.0.0.2"],
        "MX": ["10 mx1.care.test.", "20 mx2.care.test."],
        "TXT": ['"v=spf1 include:mail.care.test -all"'],
    },
    "www.care.test": {"CNAME": ["care.test."]},
    "voice.care.test": {"A": ["10.0.1.5"]},
    "big.care.test": {"TXT": ['"' + "x" * 200 + '"'] * 10},
    "broken.care.test": {},  # SERVFAIL
}


@dataclass
class NameServer:
    """A name server on 127.0.0.1 (UDP and TCP on one port) answering from ``ZONE``."""

    port: int = 0
    silent: bool = False
    truncate: bool = False  # UDP answers carry TC and nothing else
    asked: list[tuple[str, str, str]] = field(default_factory=list)  # (protocol, name, type)

    def answer(self, wire: bytes, protocol: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.asked.append((protocol, name, kind))
        if self.silent:
            return None
        response = dns.message.make_response(query)
        if protocol == "udp" and self.truncate:
            response.flags |= dns.flags.TC
            return response.to_wire()
        if name == "broken.care.test":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in ZONE:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            records = ZONE[name]
            if kind not in records and "CNAME" in records:  # follow the alias, as resolvers do
                response.answer.append(_rrset(name, "CNAME", records["CNAME"]))
                name = records["CNAME"][0].rstrip(".")
                records = ZONE[name]
            if kind in records:
                response.answer.append(_rrset(name, kind, records[kind]))
        return response.to_wire(max_size=65535)


def _rrset(name: str, kind: str, texts: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name + ".", 60, "IN", kind, texts)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: NameServer) -> None:
        self.server = server
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # asyncio's datagram transports do not subclass its ABC

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data, "udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


StartServer = Callable[..., Awaitable[NameServer]]


@pytest.fixture
async def name_server() -> AsyncIterator[StartServer]:
    """``server = await name_server(silent=..., host=...)``: UDP and TCP on one loopback port."""
    closers: list[Callable[[], Awaitable[None]]] = []

    async def start(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> NameServer:
        loop = asyncio.get_running_loop()
        server = NameServer(**options)
        for _ in range(20):  # the UDP port just bound may be taken for TCP: pick another
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(server), local_addr=(host, port)
            )
            server.port = transport.get_extra_info("sockname")[1]

            async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    async with asyncio.timeout(5):
                        (size,) = struct.unpack("!H", await reader.readexactly(2))
                        reply = server.answer(await reader.readexactly(size), "tcp")
                        if reply is None:
                            await reader.read()
                            return
                        writer.write(struct.pack("!H", len(reply)) + reply)
                        await writer.drain()
                writer.close()

            try:
                tcp = await asyncio.start_server(serve_tcp, host, server.port)
            except OSError:
                transport.close()
                if port:
                    raise
                continue

            async def close(udp: asyncio.BaseTransport = transport, t: Any = tcp) -> None:
                udp.close()
                t.close()
                await t.wait_closed()

            closers.append(close)
            return server
        raise RuntimeError("no free port for both UDP and TCP")

    yield start
    for close in closers:
        await close()


async def run(*steps: Step) -> RunResult:
    """Run one journey of ``steps`` on the voice channel with a fresh engine."""
    return await journeys.run(*steps, channel=VOICE)


def query(ns: NameServer | None, name: str, **fields: Any) -> dict[str, Any]:
    """A step asking ``ns`` (or ``fields["server"]``, or the system's) for ``name``."""
    spec: dict[str, Any] = {"name": name, **fields}
    if ns is not None:
        spec["server"] = f"127.0.0.1:{ns.port}"
    return {"name": "lookup", "dns": spec}


# --- answers ----------------------------------------------------------------------------------


async def test_an_answer_that_contains_the_address(name_server: StartServer) -> None:
    server = await name_server()
    result = await run(query(server, "care.test", expect={"answers": {"contains": "10.0.0.2"}}))
    assert result.ok, result.to_dict()
    step = result.final.steps[0]
    assert set(step.phases) == {Phase.WAIT, Phase.TOTAL}
    assert step.phases[Phase.WAIT] == pytest.approx(step.phases[Phase.TOTAL], abs=1e-6)
    assert step.status is None
    assert server.asked == [("udp", "care.test", "A")]
    assert step.traffic is not None  # for the network-experience estimate
    assert (step.traffic.requests, step.traffic.new_connections) == (1, 0)
    assert step.traffic.bytes_received > step.traffic.bytes_sent > 0


async def test_mx_answers_equal_a_list_in_any_order(name_server: StartServer) -> None:
    server = await name_server()
    wanted = {"equals": ["20 mx2.care.test.", "10 mx1.care.test."]}
    assert (await run(query(server, "care.test", type="MX", expect={"answers": wanted}))).ok


async def test_txt_answers_are_unquoted_text(name_server: StartServer) -> None:
    server = await name_server()
    expect = {"answers": {"regex": r"^v=spf1 .* -all$"}}
    assert (await run(query(server, "care.test", type="TXT", expect=expect))).ok


async def test_an_alias_is_followed_and_only_the_asked_type_compared(
    name_server: StartServer,
) -> None:
    server = await name_server()
    expect = {"answers": {"equals": ["10.0.0.1", "10.0.0.2"]}}
    assert (await run(query(server, "www.care.test", expect=expect))).ok
    cname = {"answers": {"equals": "care.test."}}
    assert (await run(query(server, "www.care.test", type="CNAME", expect=cname))).ok


async def test_templates_in_the_name_and_the_matcher(name_server: StartServer) -> None:
    server = await name_server()
    steps = [
        query(server, "${channel}.care.test", expect={"answers": {"equals": "10.0.1.5"}}),
    ]
    assert (await run(*steps)).ok
    assert server.asked == [("udp", "voice.care.test", "A")]


async def test_nxdomain_expected_and_met(name_server: StartServer) -> None:
    server = await name_server()
    expect = {"rcode": "NXDOMAIN", "answers": {"exists": False}}
    assert (await run(query(server, "old.care.test", expect=expect))).ok


async def test_over_tcp(name_server: StartServer) -> None:
    server = await name_server()
    step = query(server, "care.test", protocol="tcp", expect={"answers": {"contains": "10.0.0.1"}})
    assert (await run(step)).ok
    assert server.asked == [("tcp", "care.test", "A")]


async def test_a_truncated_udp_answer_is_asked_again_over_tcp(name_server: StartServer) -> None:
    server = await name_server(truncate=True)
    step = query(server, "big.care.test", type="TXT", expect={"answers": {"regex": "^x{200}$"}})
    assert (await run(step)).ok
    assert server.asked == [("udp", "big.care.test", "TXT"), ("tcp", "big.care.test", "TXT")]


# --- failures ---------------------------------------------------------------------------------


async def test_an_unexpected_nxdomain_is_dns(name_server: StartServer) -> None:
    server = await name_server()
    step = failed(await run(query(server, "nope.care.test")))
    assert step.reason is Reason.DNS
    assert step.message == "nope.care.test A: NXDOMAIN (expected NOERROR)"


async def test_servfail_is_dns(name_server: StartServer) -> None:
    server = await name_server()
    step = failed(await run(query(server, "broken.care.test", type="MX")))
    assert step.reason is Reason.DNS
    assert step.message == "broken.care.test MX: SERVFAIL (expected NOERROR)"


async def test_a_wrong_answer_is_an_assertion(name_server: StartServer) -> None:
    server = await name_server()
    step = failed(
        await run(query(server, "care.test", expect={"answers": {"contains": "10.0.0.9"}}))
    )
    assert step.reason is Reason.ASSERTION
    assert step.message == (
        'care.test A: expected an answer \'10.0.0.9\', got ["10.0.0.1", "10.0.0.2"]'
    )


async def test_no_answer_when_one_is_expected(name_server: StartServer) -> None:
    server = await name_server()
    step = failed(
        await run(query(server, "voice.care.test", type="MX", expect={"answers": {"exists": True}}))
    )
    assert step.reason is Reason.ASSERTION
    assert step.message == "voice.care.test MX: expected an answer"


async def test_a_silent_server_times_out_within_the_budget(name_server: StartServer) -> None:
    server = await name_server(silent=True)
    started = time.perf_counter()
    step = failed(await run({**query(server, "care.test"), "timeout": "300ms"}))
    elapsed = time.perf_counter() - started
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the response"
    assert 0.3 - CLOCK_SLACK <= elapsed < 0.4


async def test_tcp_to_a_closed_port_is_connect() -> None:
    port = free_port()
    step = failed(await run(query(None, "care.test", server=f"127.0.0.1:{port}", protocol="tcp")))
    assert step.reason is Reason.CONNECT
    assert step.message == f"cannot reach the name server 127.0.0.1:{port}: Connection refused"


async def test_a_server_name_that_does_not_resolve_is_dns() -> None:
    step = failed(await run(query(None, "care.test", server=UNRESOLVABLE)))
    assert step.reason is Reason.DNS
    assert step.message.startswith(f"cannot resolve the name server {UNRESOLVABLE}: ")


async def test_an_invalid_name_is_protocol() -> None:
    step = failed(await run(query(None, "a" * 64 + ".care.test", server="127.0.0.1")))
    assert step.reason is Reason.PROTOCOL
    assert "not a valid DNS name" in step.message


# --- the system's resolver configuration ------------------------------------------------------

#: Loopback addresses for name servers on the standard port (resolv.conf cannot name a port).
SYSTEM_SERVER: Final = "127.0.0.153"
DEAD_SERVER: Final = "127.0.0.154"


@pytest.fixture
def resolv_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``resolv_conf(text)``: the system resolver configuration the DNS runner reads."""
    path = tmp_path / "resolv.conf"
    monkeypatch.setattr(dns_step, "RESOLV_CONF", str(path))

    def write(text: str) -> None:
        path.write_text(text, encoding="utf-8")

    return write


async def _on_port_53(
    name_server: StartServer, host: str = SYSTEM_SERVER, **options: Any
) -> NameServer:
    try:
        return await name_server(host=host, port=dns_step.DNS_PORT, **options)
    except OSError as exc:  # not root, or the port is taken
        pytest.skip(f"cannot serve DNS on {host}:53 here: {exc}")


async def test_without_server_the_system_name_servers_are_asked(
    name_server: StartServer, resolv_conf: Callable[[str], None]
) -> None:
    server = await _on_port_53(name_server)
    resolv_conf(f"nameserver {SYSTEM_SERVER}\n")
    step = query(None, "care.test", expect={"answers": {"contains": "10.0.0.1"}})
    assert (await run(step)).ok
    assert server.asked == [("udp", "care.test", "A")]


async def test_the_next_system_name_server_is_asked_when_one_is_silent(
    name_server: StartServer, resolv_conf: Callable[[str], None]
) -> None:
    answering = await _on_port_53(name_server)
    silent = await _on_port_53(name_server, DEAD_SERVER, silent=True)
    resolv_conf(f"nameserver {DEAD_SERVER}\nnameserver {SYSTEM_SERVER}\noptions timeout:1\n")
    started = time.perf_counter()
    assert (await run(query(None, "care.test"))).ok
    assert 1.0 - CLOCK_SLACK <= time.perf_counter() - started < 1.5
    assert silent.asked == answering.asked == [("udp", "care.test", "A")]


async def test_no_system_name_server(resolv_conf: Callable[[str], None]) -> None:
    resolv_conf("search care.test\n")
    step = failed(await run(query(None, "care.test")))
    assert step.reason is Reason.DNS
    assert step.message.startswith("no name server listed in ")


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "care.test", "expect": {"answers": {"gt": 1}}}, "answers are text"),
        ({"name": "care.test", "server": "::1"}, "an IPv6 address goes in brackets"),
        ({"name": "care.test", "type": "AXFR"}, "expected 'A', 'AAAA'"),
        ({"name": "care.test", "expect": {"rcode": "YXDOMAIN"}}, "expected 'NOERROR'"),
    ],
)
def test_bad_dns_steps_are_config_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one_journey({"name": "s", "dns": spec}, channel=VOICE)
    assert message in str(caught.value)
