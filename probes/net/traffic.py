"""Counting what an HTTP step costs in network terms.

The counts feed ``probes.runs.experience.estimate``: how long the journey would take on a mobile
network. ``probes.net.client`` counts the bytes as they went on the wire (request line, headers
and body sent; status line, headers and body received, before decompression), and each DNS
lookup, new connection and TLS handshake.
"""

from __future__ import annotations

from probes.runs.experience import TLS13_ROUND_TRIPS, StepTraffic
from probes.runs.results import Phase


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
