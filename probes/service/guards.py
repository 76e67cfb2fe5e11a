"""Bounded defences for endpoints that face whoever can reach the agent: a token bucket, one per
source address (``SourceLimiter``), a memory of recent signatures (``RecentSignatures``) and a
log that says what it rejected without flooding (``ThrottledLog``).

Each holds at most a fixed number of entries whatever a client sends, so a flood costs the
agent a bounded amount of memory.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

#: An IPv6 client holds a /64 at least: limited per address, it would get a fresh budget for
#: each of its 2**64 addresses.
IPV6_PREFIX: Final = 64

Clock = Callable[[], float]


class TokenBucket:
    """``burst`` actions at once, then one per ``interval`` seconds.

    >>> bucket = TokenBucket(interval=60, burst=2)
    >>> [bucket.take() for _ in range(3)]
    [True, True, False]
    """

    def __init__(self, *, interval: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self.burst = max(burst, 1)
        self._clock = clock
        self.tokens = float(self.burst)
        self.updated = clock()

    def take(self) -> bool:
        """Spend a token if there is one; whether there was."""
        if not self.has():
            return False
        self.tokens -= 1
        return True

    def has(self) -> bool:
        """Whether a token is left (refilled for the time since the last look)."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.interval)
        self.updated = now
        return self.tokens >= 1


class SourceLimiter:
    """A ``TokenBucket`` per source address (per /64 for IPv6), for at most ``sources`` of them:
    past that, the source seen longest ago is forgotten (and starts again with a full bucket).
    """

    def __init__(
        self, *, interval: float, burst: int, sources: int, clock: Clock = time.monotonic
    ) -> None:
        self.interval = interval
        self.burst = burst
        self.sources = sources
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allows(self, address: str | None) -> bool:
        """Whether ``address`` has a token left (without spending it)."""
        bucket = self._buckets.get(source_of(address))
        return bucket is None or bucket.has()

    def charge(self, address: str | None) -> None:
        """Spend one of ``address``'s tokens."""
        key = source_of(address)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(interval=self.interval, burst=self.burst, clock=self._clock)
        self._buckets[key] = bucket
        bucket.take()
        while len(self._buckets) > self.sources:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def source_of(address: str | None) -> str:
    """What a client is limited as: its IPv4 address, or its IPv6 /64.

    >>> source_of("192.0.2.7"), source_of("2001:db8::1"), source_of("::ffff:192.0.2.7")
    ('192.0.2.7', '2001:db8::/64', '192.0.2.7')
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # an IPv4 client of a dual-stack socket
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


class RecentSignatures:
    """Signatures seen, each until its time is up, at most ``size`` of them (the oldest seen is
    forgotten first): what tells a replayed callback from a new one."""

    def __init__(self, *, size: int, clock: Clock = time.time) -> None:
        self.size = size
        self._clock = clock
        self._until: OrderedDict[Hashable, float] = OrderedDict()

    def seen(self, key: Hashable, *, until: float) -> bool:
        """Whether ``key`` was seen and is still remembered; remembers it until ``until`` (a
        Unix time) either way."""
        now = self._clock()
        while self._until:  # entries are added in time order, so expired ones come first
            oldest, expiry = next(iter(self._until.items()))
            if expiry > now:
                break
            del self._until[oldest]
        known = key in self._until and self._until[key] > now
        self._until[key] = max(until, self._until.get(key, until))
        self._until.move_to_end(key)
        while len(self._until) > self.size:
            self._until.popitem(last=False)
        return known

    def __len__(self) -> int:
        return len(self._until)


class ThrottledLog:
    """At most one line per key every ``interval`` seconds; a line says how many it left out
    since the last one."""

    def __init__(
        self, logger: logging.Logger, *, interval: float, clock: Clock = time.monotonic
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` at WARNING unless ``key`` logged less than ``interval``
        seconds ago; whether it did. ``key`` must come from a bounded set (callback names)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return False
        left_out = self._left_out.pop(key, 0)
        if left_out:
            message += " (and %d more not logged in the last %.0fs)"
            args = (*args, left_out, now - last if last is not None else 0.0)
        self.logger.warning(message, *args)
        self._last[key] = now
        return True
