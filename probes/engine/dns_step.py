"""DNS steps on dnspython: ask a name server for a name's records and check its answer.

The query goes to the step's ``server``, or to the name servers of the system's resolver
configuration in order (the next is tried when one does not answer within the configuration's
per-server timeout, the last gets what is left of the step's time). Phases: ``wait`` (query
sent -> answer), and ``dns`` when ``server`` is a name that must be resolved first.

Answers are compared as text, one string per record of the asked type: ``10.0.0.1``,
``10 mx.example.com.``, and for TXT the record's text unquoted, its strings joined.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
from collections.abc import Mapping
from typing import Final

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.txtbase import TXTBase

from probes.engine.runner import StepContext
from probes.model.addresses import join_address, split_address
from probes.model.steps import DnsSpec, DnsStep, Matcher
from probes.model.templating import render, render_str
from probes.net.sockets import os_message
from probes.net.timing import Timer
from probes.runs.reasons import Caught, classify
from probes.runs.results import Failure, Phase, Reason

DNS_PORT: Final = 53
#: The EDNS buffer size of the 2020 DNS flag day: most answers fit in one UDP datagram.
EDNS_PAYLOAD: Final = 1232
#: Where the system's name servers are listed; a test points this at its own file.
RESOLV_CONF = "/etc/resolv.conf"
_SHOWN_CHARS: Final = 120

Server = tuple[str, int]

#: What a name server's failure to answer means, by what dnspython (or the socket under it)
#: raised. An unreachable server (reason ``connect``) is passed over for the next one.
QUERY_FAILURES: Final[tuple[Caught[Server], ...]] = (
    Caught(
        OSError,
        Reason.CONNECT,
        lambda exc, server: (
            f"cannot reach the name server {join_address(*server)}: {os_message(exc)}"
        ),
    ),
    Caught(
        dns.exception.DNSException,  # an answer dnspython cannot read
        Reason.PROTOCOL,
        lambda exc, server: f"malformed answer from {server[0]}: {exc}",
    ),
)


async def run_dns(step: DnsStep, ctx: StepContext) -> Failure | None:
    """Resolve ``step``'s name and check the response code and the answers."""
    spec = step.dns
    ctx.timer = Timer((Phase.WAIT,), first=Phase.WAIT)
    name = render_str(spec.name, ctx.scope)
    asked = f"{name} {spec.type}"
    try:
        query = dns.message.make_query(
            dns.name.from_text(name), spec.type, use_edns=0, payload=EDNS_PAYLOAD
        )
    except dns.exception.DNSException as exc:
        return Failure(Reason.PROTOCOL, f"{asked}: not a valid DNS name ({exc})")
    servers, per_server, failure = await _servers(spec, ctx)
    if failure is not None:
        return failure
    ctx.timer.enter(Phase.WAIT)
    answered = await _ask_in_turn(query, servers, per_server, spec, ctx)
    if isinstance(answered, Failure):
        return answered
    response = answered
    meter = ctx.timer.traffic  # for the network-experience estimate
    meter.requests += 1
    meter.new_connections += spec.protocol == "tcp"
    meter.bytes_sent += len(query.to_wire())
    meter.bytes_received += len(response.wire or b"")
    rcode = dns.rcode.to_text(response.rcode())
    if rcode != spec.expect.rcode:
        return Failure(Reason.DNS, f"{asked}: {rcode} (expected {spec.expect.rcode})")
    if spec.expect.answers is None:
        return None
    rdtype = dns.rdatatype.from_text(spec.type)
    answers = sorted(
        answer_text(rdata) for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    )
    problem = check_answers(spec.expect.answers, answers, ctx.scope)
    return Failure(Reason.ASSERTION, f"{asked}: {problem}") if problem else None


async def _servers(
    spec: DnsSpec, ctx: StepContext
) -> tuple[list[Server], float | None, Failure | None]:
    """The name servers to ask in turn, how long each but the last may take, or why none."""
    if spec.server is None:
        try:
            resolver = dns.resolver.Resolver(filename=RESOLV_CONF)
        except dns.resolver.NoResolverConfiguration:
            return [], None, Failure(Reason.DNS, f"no name server listed in {RESOLV_CONF}")
        listed = _listed(resolver)
        if not listed:
            return [], None, Failure(Reason.DNS, f"no name server listed in {RESOLV_CONF}")
        return listed, float(resolver.timeout), None
    address = render_str(spec.server, ctx.scope)
    try:
        host, port = split_address(address, default_port=DNS_PORT)
    except ValueError as exc:
        return [], None, Failure(Reason.PROTOCOL, f"invalid server: {exc}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [(host, port)], None, None
    ctx.timer.enter(Phase.DNS)
    kind = socket.SOCK_STREAM if spec.protocol == "tcp" else socket.SOCK_DGRAM
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        failure = Failure(Reason.DNS, f"cannot resolve the name server {host}: {exc.strerror}")
        return [], None, failure
    return list(dict.fromkeys((str(info[4][0]), port) for info in infos)), None, None


def _listed(resolver: dns.resolver.Resolver) -> list[Server]:
    servers: list[Server] = []
    for server in resolver.nameservers:
        if isinstance(server, str):
            servers.append((server, resolver.port))
        elif isinstance(server, dns.nameserver.Do53Nameserver):
            servers.append((server.address, server.port))
    return servers


async def _ask_in_turn(
    query: dns.message.Message,
    servers: list[Server],
    per_server: float | None,
    spec: DnsSpec,
    ctx: StepContext,
) -> dns.message.Message | Failure:
    """The first answer of ``servers``, asked in turn; the last one has no limit of its own."""
    failure = Failure(Reason.DNS, "no name server to ask")
    name = query.question[0].name.to_text(omit_final_dot=True)
    for number, (where, port) in enumerate(servers, start=1):
        ctx.target = f"dns://{join_address(where, port)}/{name}/{spec.type}"
        last = number == len(servers)
        try:
            async with asyncio.timeout(None if last else per_server):
                return await _ask(query, where, port, spec.protocol)
        except TimeoutError:
            if last:
                raise  # the step's own time ran out: the engine reports it
        except Exception as exc:
            found = classify(exc, QUERY_FAILURES, (where, port))
            if found is None:
                raise
            if found.reason is not Reason.CONNECT:
                return found
            failure = found  # unreachable: the next server may answer
    return failure


async def _ask(
    query: dns.message.Message, where: str, port: int, protocol: str
) -> dns.message.Message:
    if protocol == "tcp":
        return await dns.asyncquery.tcp(query, where, port=port)
    # a truncated UDP answer is asked again over TCP, as resolvers do
    response, _ = await dns.asyncquery.udp_with_fallback(
        query, where, port=port, ignore_unexpected=True
    )
    return response


def answer_text(rdata: dns.rdata.Rdata) -> str:
    """A record as the step compares it: presentation format, TXT unquoted."""
    if isinstance(rdata, TXTBase):
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return rdata.to_text()


def check_answers(matcher: Matcher, answers: list[str], scope: Mapping[str, object]) -> str | None:
    """Why ``answers`` (sorted) break ``matcher``, or None.

    ``equals`` compares the whole set of answers (one value, or a list in any order),
    ``contains`` asks for one answer equal to the operand, ``regex`` for one answer matching it,
    ``exists`` for at least one answer (or, ``false``, none).
    """
    for op, operand in matcher.operators():
        if op == "exists":
            if bool(answers) != operand:
                return (
                    "expected an answer" if operand else f"expected no answer, got {_show(answers)}"
                )
            continue
        value = render(operand, scope)
        if op == "equals":
            wanted = sorted(_plain(v) for v in (value if isinstance(value, list) else [value]))
            if answers != wanted:
                return f"expected {_show(wanted)}, got {_show(answers)}"
        elif op == "contains":
            if _plain(value) not in answers:
                return f"expected an answer {_plain(value)!r}, got {_show(answers)}"
        elif op == "regex":
            pattern = _plain(value)
            try:
                found = any(re.search(pattern, answer) for answer in answers)
            except re.error as exc:  # a templated value made it invalid
                return f"/{pattern}/ is not a valid regular expression ({exc})"
            if not found:
                return f"expected an answer matching /{pattern}/, got {_show(answers)}"
    return None


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _show(answers: list[str]) -> str:
    text = json.dumps(answers, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
