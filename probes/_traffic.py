"""Counting what an HTTP step costs in network terms, from aiohttp's tracing signals.

The counts feed ``probes.experience.estimate``: how long the journey would take on a mobile
network. Headers are counted as aiohttp saw them (request headers as sent, response headers as
received, each line with its CRLF); request bodies chunk by chunk, and response bodies by the
runner that reads them (``meter.bytes_received``), since aiohttp signals only its own reads.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Final

import aiohttp

from probes.experience import TLS12_ROUND_TRIPS, TLS13_ROUND_TRIPS, StepTraffic
from probes.results import Phase

_REQUEST_LINE_BYTES: Final = 16  # "GET  HTTP/1.1\r\n" without the path
_CRLF: Final = 2
_HEADER_SEPARATOR: Final = 2  # ": "


class TrafficMeter:
    """What one step sent and received, and how many round trips its set-up took."""

    def __init__(self) -> None:
        self.dns_lookups = 0
        self.new_connections = 0
        self.tls_handshakes = 0
        self.tls_round_trips = TLS13_ROUND_TRIPS
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def traffic(self, phases: dict[Phase, float]) -> StepTraffic:
        """The step's traffic; the server's think time is the wait less one observed round trip
        per request, the round trip being the TCP connect time when a connection was made."""
        connects = max(1, self.new_connections)
        rtt = phases.get(Phase.CONNECT, 0.0) / connects if self.new_connections else 0.0
        server = max(0.0, phases.get(Phase.WAIT, 0.0) - rtt * max(1, self.requests))
        return StepTraffic(
            dns_lookups=self.dns_lookups,
            new_connections=self.new_connections,
            tls_handshakes=self.tls_handshakes,
            tls_round_trips=self.tls_round_trips,
            requests=self.requests,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            server_seconds=server,
        )


def _meter(ctx: SimpleNamespace) -> TrafficMeter | None:
    meter = getattr(ctx.trace_request_ctx, "traffic", None)
    return meter if isinstance(meter, TrafficMeter) else None


def _headers_size(headers: Any) -> int:
    return sum(len(k) + len(v) + _HEADER_SEPARATOR + _CRLF for k, v in headers.items()) + _CRLF


async def _on_request_start(_: object, ctx: SimpleNamespace, params: Any) -> None:
    if meter := _meter(ctx):
        meter.requests += 1
        meter.bytes_sent += _REQUEST_LINE_BYTES + len(str(params.url.raw_path_qs))


async def _on_headers_sent(_: object, ctx: SimpleNamespace, params: Any) -> None:
    if meter := _meter(ctx):
        meter.bytes_sent += _headers_size(params.headers)


async def _on_chunk_sent(_: object, ctx: SimpleNamespace, params: Any) -> None:
    if meter := _meter(ctx):
        meter.bytes_sent += len(params.chunk)


async def _on_response(_: object, ctx: SimpleNamespace, params: Any) -> None:
    if meter := _meter(ctx):
        response = params.response
        meter.bytes_received += _REQUEST_LINE_BYTES + _headers_size(response.headers)
        if response.url.scheme in ("https", "wss") and response.connection is not None:
            ssl_object = response.connection.transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.version() not in (None, "TLSv1.3"):
                meter.tls_round_trips = TLS12_ROUND_TRIPS


async def _on_dns(_: object, ctx: SimpleNamespace, __: object) -> None:
    if meter := _meter(ctx):
        meter.dns_lookups += 1


async def _on_connection(_: object, ctx: SimpleNamespace, __: object) -> None:
    if meter := _meter(ctx):
        meter.new_connections += 1


async def _on_request_end_tls(_: object, ctx: SimpleNamespace, params: Any) -> None:
    if (meter := _meter(ctx)) and params.url.scheme in ("https", "wss"):
        meter.tls_handshakes = meter.new_connections


def add_traffic_signals(trace: aiohttp.TraceConfig) -> None:
    """Make ``trace`` count traffic into ``trace_request_ctx.traffic`` when it has a meter."""
    trace.on_request_start.append(_on_request_start)
    trace.on_request_headers_sent.append(_on_headers_sent)
    trace.on_request_chunk_sent.append(_on_chunk_sent)
    trace.on_request_end.append(_on_response)
    trace.on_request_end.append(_on_request_end_tls)
    trace.on_dns_resolvehost_end.append(_on_dns)
    trace.on_connection_create_end.append(_on_connection)
