"""How long a journey would take a customer on a mobile network, estimated from one real run.

Probes run from a data centre, so their own timings say little about a customer on a train.
Each engine records what every step cost in network terms (``StepTraffic``: round trips,
connections, bytes); ``estimate`` replays that cost on a network profile, the way Lighthouse's
simulated throttling (Lantern) replays a page load. Real traffic is never slowed down.

## Estimated experience on a mobile network

`carewatch_journey_experience_seconds{network="4g"}` estimates how long the journey would have
taken on that network. It is computed, not measured: each engine records, for every step it
ran, the round trips, connections and bytes it observed and the server's own think time; the
estimate charges those to the network's round-trip time and bandwidth. Real traffic is not
slowed down.

### The formula

For each step, summed over the steps of the run:

```
seconds     = round_trips * rtt
            + server_seconds
            + bytes_sent * 8 / (up_kbps * 1000)
            + bytes_received * 8 / (down_kbps * 1000)

round_trips = dns_lookups                          (1 round trip each)
            + new_connections                      (TCP handshake: 1 each)
            + tls_handshakes * tls_round_trips     (1 for TLS 1.3, 2 for TLS 1.2)
            + requests                             (request out, first byte back: 1 each)
            + new_connections * slow_start_round_trips(bytes_received / new_connections)
```

`server_seconds` is the server's think time as the engine observed it: time to first byte minus
the observed network round trip, never below 0. `slow_start_round_trips(n)` is the number of
extra round trips TCP slow start needs to deliver `n` bytes on a fresh connection: the first
window is 10 segments of 1,460 bytes (14,600 bytes) and it doubles every round trip, so
14,600 bytes need no extra round trip, 14,601 to 43,800 bytes (10 + 20 segments) need one,
and 1 MB needs six. A step's received bytes are assumed to be split evenly over its new
connections; a step on a reused connection pays no slow start.

### Network profiles

| network | rtt | down | up | Lighthouse preset (`core/config/constants.js`, `throttling`) |
|---|---|---|---|---|
| `wifi` | 40 ms | 10,240 kbps | 10,240 kbps | `desktopDense4G`, "Dense 4G 25th percentile" |
| `4g` | 150 ms | 1,638.4 kbps | 750 kbps | `mobileSlow4G`, "Slow 4G", the default |
| `3g` | 300 ms | 700 kbps | 700 kbps | `mobileRegular3G`, "Regular 3G" |

The round-trip times and download rates are the presets' `rttMs` and `throughputKbps` (`40`,
`10 * 1024`; `150`, `1.6 * 1024`; `300`, `700`), which Lighthouse's simulated throttling uses.
Simulation models downloads only, so the presets give no upload rate for it. The `4g` and `3g`
upload rates are the presets' DevTools-throttling `uploadThroughputKbps` (`750 * 0.9` and
`700 * 0.9`) without the `0.9` DevTools adjustment factor, matching the unadjusted download
rates; `desktopDense4G` has none, so `wifi` uploads at its download rate.

A custom profile is written `{rtt: 100ms, down_kbps: 5000, up_kbps: 1000}`: `rtt` is a
duration (`0` or more), the rates are kilobits (1,000 bits) per second and must be above 0.

### What is and is not modelled

Modelled: DNS lookups, TCP and TLS handshakes, one round trip per request/response exchange
(each redirect and each WebSocket message exchange counts), TCP slow start on new connections,
serialization of the bytes sent and received at the profile's bandwidth, and the server's
observed think time.

Not modelled: CPU slowdown (Lighthouse scales main-thread work by 4 on mobile; carewatch has no
page to render, and client-side processing time is not counted), packet loss, jitter and
retransmission, cellular radio wake-up, bandwidth shared with other traffic, TCP receive-window
limits, HTTP/2 multiplexing and parallel requests (steps and their requests are charged one
after another, so an engine that overlaps requests within a step is over-estimated), QUIC /
HTTP/3 and 0-RTT resumption (unless the engine reports fewer round trips), DNS caching (unless
the engine reports no lookup). The server time is the probe's own observation: a slow backend
is slow on every profile, and a server that is slower for mobile clients is not modelled.

### Where this differs from Lighthouse's simulator (Lantern)

Lantern (`core/lib/lantern/simulator/`) simulates a page's request graph; carewatch journeys
are sequential, so this model is a sum. Per request, the differences are:

- **DNS**: Lantern charges 2 round trips per new host (`DNS_RESOLUTION_RTT_MULTIPLIER = 2`);
  this model charges 1 per lookup the engine performed.
- **Connection set-up**: Lantern charges 1.5 round trips for the TCP handshake with the request
  riding on the final ACK, 1 for TLS whatever the version (it assumes TLS False Start), and
  0.5 for the first byte to come back: 3 round trips to the first byte on a new HTTPS
  connection. This model charges 1 (TCP) + 1 or 2 (TLS, as observed) + 1 (request): 3 for
  TLS 1.3, 4 for TLS 1.2.
- **Bandwidth**: Lantern has no transfer-time term. It caps the congestion window at the
  bandwidth-delay product (`throughput * rtt / 8 / 1460` segments) and counts round trips
  until the bytes are delivered, sharing the throughput among requests in flight. This model
  lets slow start grow without a cap and adds the bytes' serialization time at the profile's
  bandwidth. A response that fits in the first window (<= 14,600 bytes) costs nothing extra in
  Lantern and `bytes * 8 / bandwidth` here (5 KB on `4g`: 24 ms). For large responses this
  model is higher by about the slow-start round trips: 1 MB on `4g` after the first byte takes
  5.8 s here (6 round trips and 4.9 s of transfer) and 5.0 s in Lantern (33 round trips, the
  window capped at 21 segments).
- **Warm connections**: Lantern keeps a reused connection's congestion window, which grows
  across requests; this model assumes a reused connection is already at full speed.
- **Uploads**: Lantern ignores request bodies; this model charges `bytes_sent` at `up_kbps`.
- **Units**: Lantern converts `throughputKbps` with 1,024 bits per kilobit; this model uses
  1,000, so the same profile is 2.4 % slower here for bandwidth-bound transfers.
- **Per-origin latency**: Lantern adds each origin's observed extra round-trip time; this model
  removes the observed network (server time is time to first byte minus the observed round
  trip) and charges the profile's round-trip time alone.
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
    the server thinking for 120 ms::

        StepTraffic(dns_lookups=1, new_connections=1, tls_handshakes=1, requests=1,
                    bytes_sent=1200, bytes_received=20_000, server_seconds=0.120)
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
    """Network round trips a step costs, slow start included (see the module docstring)."""
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
