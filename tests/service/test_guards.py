"""The bounded defences of the agent's public endpoints, each on a clock the test turns: the
token bucket, the budget per source, the memory of signatures and the throttled log. (The
receiver uses them over real HTTP in tests/service/test_receiver.py.)"""

from __future__ import annotations

import logging

import pytest

from probes.service.guards import (
    RecentSignatures,
    SourceLimiter,
    ThrottledLog,
    TokenBucket,
    source_of,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(interval=0.5, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0  # two tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 3600
    assert sum(bucket.take() for _ in range(10)) == 3  # never more than the burst


def test_a_source_limiter_holds_a_bounded_number_of_sources() -> None:
    clock = Clock()
    limiter = SourceLimiter(interval=1.0, burst=2, sources=3, clock=clock)
    for _ in range(2):
        limiter.charge("192.0.2.1")
    assert not limiter.allows("192.0.2.1")
    assert limiter.allows("192.0.2.2")
    for host in range(2, 10_000):
        limiter.charge(f"10.0.{host // 256}.{host % 256}")
    assert len(limiter) == 3
    assert limiter.allows("192.0.2.1")  # forgotten, with its debt


def test_ipv6_clients_are_limited_per_64() -> None:
    limiter = SourceLimiter(interval=60.0, burst=2, sources=10, clock=Clock())
    limiter.charge("2001:db8:0:1::1")
    limiter.charge("2001:db8:0:1::ffff")
    assert not limiter.allows("2001:db8:0:1:dead:beef::1")
    assert limiter.allows("2001:db8:0:2::1")
    # an IPv4 client of a dual-stack socket is limited as its IPv4 address, not as ::/64
    assert (source_of("::ffff:192.0.2.1"), source_of("::ffff:192.0.2.2")) == (
        "192.0.2.1",
        "192.0.2.2",
    )


def test_recent_signatures_expire_and_stay_bounded() -> None:
    clock = Clock()
    recent = RecentSignatures(size=100, clock=clock)
    assert not recent.seen("a", until=clock.now + 300)
    assert recent.seen("a", until=clock.now + 300)
    clock.now += 301
    assert not recent.seen("a", until=clock.now + 300)  # its time is up: the tolerance says no
    for key in range(1000):
        recent.seen(key, until=clock.now + 300)
    assert len(recent) == 100
    assert recent.seen(999, until=clock.now + 300)
    assert not recent.seen(0, until=clock.now + 300)  # the oldest went first


def test_a_throttled_log_says_how_many_lines_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttled = ThrottledLog(logging.getLogger("test.guards"), interval=10.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="test.guards")
    logged = [throttled.warning("sms", "rejected: %s", cause) for cause in "abcde"]
    other = throttled.warning("push", "rejected: %s", "z")
    clock.now += 10
    later = throttled.warning("sms", "rejected: %s", "f")
    assert logged == [True, False, False, False, False]
    assert (other, later) == (True, True)
    assert [record.getMessage() for record in caplog.records] == [
        "rejected: a",
        "rejected: z",
        "rejected: f (and 4 more not logged in the last 10s)",
    ]
