"""How long a journey would take a customer on a mobile network, estimated from one real run.

Probes run from a data centre, so their own timings say little about a customer on a train.
Each engine records what every step cost in network terms (``StepTraffic``: round trips,
connections, bytes, the server's think time); ``estimate`` charges that cost to a network
profile's round-trip time and bandwidth (``probes.model.networks``), the way Lighthouse's
simulated throttling (Lantern) replays a page load. Real traffic is never slowed down. The
exporter publishes the result as ``carewatch_journey_experience_seconds{network="4g"}``.

The formula, the network profiles, what is and is not modelled, and how this differs from
Lantern: docs/experience.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Final

from probes.model.networks import NetworkProfile

#: TCP slow start: segments in the first congestion window (RFC 6928; Lantern's
#: ``INITIAL_CONGESTION_WINDOW``), and bytes per segment (Lantern's ``TCP_SEGMENT_SIZE``).
INITIAL_WINDOW_SEGMENTS: Final = 10
SEGMENT_BYTES: Final = 1460
#: Slow start doubles the window every round trip.
WINDOW_GROWTH: Final = 2
BITS_PER_BYTE: Final = 8
BITS_PER_KILOBIT: Final = 1000
#: Round trips per DNS lookup, per TCP handshake, and per request/response exchange.
DNS_ROUND_TRIPS: Final = 1
TCP_HANDSHAKE_ROUND_TRIPS: Final = 1
REQUEST_ROUND_TRIPS: Final = 1
#: Round trips of one TLS handshake (a full one; resumption with 0-RTT is 0).
TLS13_ROUND_TRIPS: Final = 1
TLS12_ROUND_TRIPS: Final = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTraffic:
    """What one step cost in network terms: what an engine records for each step it ran.

    Example: a first HTTPS request to a new host over TLS 1.3, 1.2 kB sent, 20 kB received,
    the server thinking for 120 ms:

    >>> first = StepTraffic(dns_lookups=1, new_connections=1, tls_handshakes=1, requests=1,
    ...                     bytes_sent=1200, bytes_received=20_000, server_seconds=0.120)
    >>> round_trips(first)  # DNS, TCP, TLS 1.3, the request, and one more for slow start
    5
    """

    dns_lookups: int = 0
    new_connections: int = 0
    tls_handshakes: int = 0
    #: Per handshake: ``TLS13_ROUND_TRIPS`` or ``TLS12_ROUND_TRIPS``.
    tls_round_trips: int = TLS13_ROUND_TRIPS
    #: Request/response exchanges: one per redirect followed, one per WebSocket message exchange.
    requests: int = 0
    #: Headers and bodies, as near as the engine can tell.
    bytes_sent: int = 0
    bytes_received: int = 0
    #: The server's think time: time to first byte minus the observed round trip. Negative
    #: values (clock noise) count as 0.
    server_seconds: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "server_seconds" and value < 0:
                raise ValueError(f"{f.name} must be 0 or more; got {value}")
        if not math.isfinite(self.server_seconds):
            raise ValueError(f"server_seconds must be finite; got {self.server_seconds}")


def slow_start_round_trips(
    n_bytes: int, *, initial_window: int = INITIAL_WINDOW_SEGMENTS, mss: int = SEGMENT_BYTES
) -> int:
    """Extra round trips TCP slow start needs to deliver ``n_bytes`` on a fresh connection.

    The first window (``initial_window`` segments of ``mss`` bytes) arrives with the first
    round trip; each further round trip delivers a window twice the size of the last.

    >>> [slow_start_round_trips(n) for n in (0, 14_600, 14_601, 43_800, 43_801, 1_000_000)]
    [0, 0, 1, 1, 2, 6]
    """
    if n_bytes < 0 or initial_window < 1 or mss < 1:
        raise ValueError(
            f"expected n_bytes >= 0, initial_window >= 1 and mss >= 1; "
            f"got {n_bytes}, {initial_window}, {mss}"
        )
    segments = math.ceil(n_bytes / mss)
    window = delivered = initial_window
    extra = 0
    while delivered < segments:
        window *= WINDOW_GROWTH
        delivered += window
        extra += 1
    return extra


def round_trips(step: StepTraffic) -> int:
    """Network round trips a step costs, slow start included (docs/experience.md)."""
    slow_start = 0
    if step.new_connections:
        per_connection = math.ceil(step.bytes_received / step.new_connections)
        slow_start = step.new_connections * slow_start_round_trips(per_connection)
    return (
        step.dns_lookups * DNS_ROUND_TRIPS
        + step.new_connections * TCP_HANDSHAKE_ROUND_TRIPS
        + step.tls_handshakes * step.tls_round_trips
        + step.requests * REQUEST_ROUND_TRIPS
        + slow_start
    )


def _transfer_seconds(n_bytes: int, kbps: float) -> float:
    return n_bytes * BITS_PER_BYTE / (kbps * BITS_PER_KILOBIT)


def estimate(steps: Sequence[StepTraffic], profile: NetworkProfile) -> float:
    """Seconds the steps would take on ``profile``: the journey's estimated experience.

    >>> from probes.model.networks import PROFILES
    >>> step = StepTraffic(new_connections=1, requests=1, bytes_received=1000)
    >>> round(estimate([step], PROFILES["3g"]), 6)  # 2 x 0.3 s + 8,000 bits / 700,000 bit/s
    0.611429
    """
    return sum(
        (
            round_trips(step) * profile.rtt
            + max(step.server_seconds, 0.0)
            + _transfer_seconds(step.bytes_sent, profile.up_kbps)
            + _transfer_seconds(step.bytes_received, profile.down_kbps)
            for step in steps
        ),
        0.0,
    )
