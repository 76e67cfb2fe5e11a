"""probes.runs.experience: network profiles, TCP slow start and the journey estimate, by hand."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from probes.model.networks import PROFILES, NetworkProfile
from probes.runs.experience import (
    TLS12_ROUND_TRIPS,
    StepTraffic,
    estimate,
    round_trips,
    slow_start_round_trips,
)


def test_builtin_profiles_are_lighthouse_presets() -> None:
    assert dict(PROFILES) == {
        "wifi": NetworkProfile(rtt=0.040, down_kbps=10_240, up_kbps=10_240),
        "4g": NetworkProfile(rtt=0.150, down_kbps=1_638.4, up_kbps=750),
        "3g": NetworkProfile(rtt=0.300, down_kbps=700, up_kbps=700),
    }


def test_builtin_profiles_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        PROFILES["5g"] = PROFILES["wifi"]  # type: ignore[index]
    with pytest.raises(ValidationError, match="frozen"):
        PROFILES["4g"].rtt = 0.0  # type: ignore[misc]


def test_custom_profile_from_yaml() -> None:
    spec = yaml.safe_load("{rtt: 100ms, down_kbps: 5000, up_kbps: 1000}")
    assert NetworkProfile.model_validate(spec) == NetworkProfile(
        rtt=0.1, down_kbps=5000, up_kbps=1000
    )


@pytest.mark.parametrize(
    ("rtt", "seconds"), [("100ms", 0.1), ("1.5s", 1.5), (0.25, 0.25), (0, 0.0), ("0ms", 0.0)]
)
def test_custom_rtt_is_a_duration(rtt: object, seconds: float) -> None:
    profile = NetworkProfile.model_validate({"rtt": rtt, "down_kbps": 1, "up_kbps": 1})
    assert profile.rtt == seconds


GOOD = {"rtt": "100ms", "down_kbps": 5000, "up_kbps": 1000}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rtt": "fast"}, "rtt\n  Value error, expected a duration such as 500ms"),
        ({"rtt": "-5ms"}, "rtt\n  Value error, expected a duration such as 500ms"),
        ({"rtt": -1}, "not negative; got -1"),
        ({"rtt": float("inf")}, "rtt\n  Value error, expected a duration such as 500ms"),
        ({"down_kbps": 0}, "down_kbps\n  Input should be greater than 0"),
        ({"up_kbps": -1}, "up_kbps\n  Input should be greater than 0"),
        ({"down_kbps": "5000"}, "down_kbps\n  Input should be a valid number"),
        ({"down_kbps": True}, "down_kbps\n  Input should be a valid number"),
        ({"up_kbps": float("nan")}, "up_kbps\n  Input should be a finite number"),
        ({"up_kbps": None}, "up_kbps\n  Input should be a valid number"),
        ({"loss": "1%"}, "loss\n  Extra inputs are not permitted"),
    ],
)
def test_bad_custom_profiles(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        NetworkProfile.model_validate({**GOOD, **change})
    assert message in str(info.value)


def test_a_custom_profile_needs_every_field() -> None:
    with pytest.raises(ValidationError, match="up_kbps\n  Field required"):
        NetworkProfile.model_validate({"rtt": "100ms", "down_kbps": 5000})


# --- slow start -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_bytes", "extra"),
    [
        (0, 0),
        (1, 0),
        (14_600, 0),  # 10 segments of 1,460 bytes: the first window
        (14_601, 1),  # 11 segments: a second window (20 segments)
        (43_800, 1),  # 30 segments = 10 + 20
        (43_801, 2),  # 31 segments: a third window (40 segments)
        (102_200, 2),  # 70 segments = 10 + 20 + 40
        (1_000_000, 6),  # 685 segments; 10 + 20 + 40 + 80 + 160 + 320 = 630 < 685 <= 1,270
        (1_048_576, 6),  # 719 segments
    ],
)
def test_slow_start_round_trips(n_bytes: int, extra: int) -> None:
    assert slow_start_round_trips(n_bytes) == extra


def test_slow_start_window_and_segment_size_can_be_chosen() -> None:
    assert slow_start_round_trips(4_000, initial_window=4, mss=1_000) == 0
    assert slow_start_round_trips(4_001, initial_window=4, mss=1_000) == 1  # 4 + 8 segments
    assert slow_start_round_trips(12_001, initial_window=4, mss=1_000) == 2


@pytest.mark.parametrize(
    "kwargs", [{"n_bytes": -1}, {"n_bytes": 1, "initial_window": 0}, {"n_bytes": 1, "mss": 0}]
)
def test_slow_start_refuses_nonsense(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="expected n_bytes >= 0"):
        slow_start_round_trips(**kwargs)


# --- steps and estimates ----------------------------------------------------------------------

#: Log in: a new host (DNS), a new connection with TLS 1.3, one request; 1,200 bytes up,
#: 20,000 bytes down (14 segments: one slow-start round trip), 120 ms of server time.
LOGIN = StepTraffic(
    dns_lookups=1,
    new_connections=1,
    tls_handshakes=1,
    tls_round_trips=1,
    requests=1,
    bytes_sent=1_200,
    bytes_received=20_000,
    server_seconds=0.120,
)
#: Open a ticket on the same connection, after one redirect: 2 exchanges, 800 bytes up,
#: 3,000 bytes down, 30 ms of server time.
TICKET = StepTraffic(requests=2, bytes_sent=800, bytes_received=3_000, server_seconds=0.030)


def test_round_trips_by_hand() -> None:
    assert round_trips(LOGIN) == 1 + 1 + 1 * 1 + 1 + 1  # DNS, TCP, TLS, request, slow start
    assert round_trips(TICKET) == 2  # reused connection: no handshakes, no slow start
    tls12 = dataclasses.replace(LOGIN, tls_round_trips=TLS12_ROUND_TRIPS)
    assert round_trips(tls12) == 6


def test_received_bytes_are_split_over_new_connections() -> None:
    # 60,000 bytes over 2 connections: 30,000 each, 1 slow-start round trip each.
    step = StepTraffic(new_connections=2, requests=2, bytes_received=60_000)
    assert round_trips(step) == 2 + 2 + 2 * 1
    # The same bytes on one connection: 42 segments, past 10 + 20: 2 slow-start round trips.
    assert round_trips(dataclasses.replace(step, new_connections=1)) == 1 + 2 + 2


# Both steps: 5 + 2 = 7 round trips, 0.120 + 0.030 = 0.150 s of server time,
# 1,200 + 800 = 2,000 bytes = 16,000 bits up, 20,000 + 3,000 = 23,000 bytes = 184,000 bits down.
@pytest.mark.parametrize(
    ("network", "expected"),
    [
        # 7 x 0.040 + 0.150 + 16,000 / 10,240,000 + 184,000 / 10,240,000
        # = 0.280 + 0.150 + 0.0015625 + 0.01796875
        ("wifi", 0.44953125),
        # 7 x 0.150 + 0.150 + 16,000 / 750,000 + 184,000 / 1,638,400
        # = 1.050 + 0.150 + 0.0213333... + 0.1123046875
        ("4g", 1.3336380208333333),
        # 7 x 0.300 + 0.150 + 16,000 / 700,000 + 184,000 / 700,000
        # = 2.100 + 0.150 + 0.0228571... + 0.2628571... = 2.25 + 200,000 / 700,000
        ("3g", 2.5357142857142856),
    ],
)
def test_two_step_journey_by_hand(network: str, expected: float) -> None:
    assert estimate([LOGIN, TICKET], PROFILES[network]) == pytest.approx(expected, abs=1e-12)


def test_custom_profile_estimate_by_hand() -> None:
    profile = NetworkProfile.model_validate({"rtt": "100ms", "down_kbps": 5000, "up_kbps": 1000})
    # 5 x 0.1 + 0.120 + 9,600 / 1,000,000 + 160,000 / 5,000,000 = 0.5 + 0.12 + 0.0096 + 0.032
    assert estimate([LOGIN], profile) == pytest.approx(0.6616, abs=1e-12)


def test_no_steps_take_no_time() -> None:
    assert estimate([], PROFILES["3g"]) == 0.0


def test_negative_server_time_counts_as_zero() -> None:
    step = StepTraffic(requests=1, server_seconds=-0.004)  # TTFB a hair under the observed RTT
    assert estimate([step], PROFILES["4g"]) == pytest.approx(0.150)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("requests", -1, "requests must be 0 or more; got -1"),
        ("bytes_received", -5, "bytes_received must be 0 or more"),
        ("tls_round_trips", -1, "tls_round_trips must be 0 or more"),
        ("server_seconds", float("nan"), "server_seconds must be finite"),
    ],
)
def test_step_traffic_refuses_nonsense(field: str, value: float, message: str) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=message):
        StepTraffic(**kwargs)


# --- monotonic --------------------------------------------------------------------------------

_counts = st.integers(0, 5)
_steps = st.lists(
    st.builds(
        StepTraffic,
        dns_lookups=_counts,
        new_connections=_counts,
        tls_handshakes=_counts,
        tls_round_trips=st.integers(0, 2),
        requests=st.integers(1, 5),
        bytes_sent=st.integers(0, 2_000_000),
        bytes_received=st.integers(0, 5_000_000),
        server_seconds=st.floats(-0.01, 5.0),
    ),
    max_size=6,
)
_rtt = st.floats(0.0, 2.0)
_kbps = st.floats(1.0, 100_000.0)
_more = st.integers(0, 10_000_000)


@given(steps=_steps, rtt=_rtt, extra=st.floats(0.0, 2.0), down=_kbps, up=_kbps)
def test_estimate_grows_with_rtt(
    steps: list[StepTraffic], rtt: float, extra: float, down: float, up: float
) -> None:
    slow = NetworkProfile(rtt=rtt + extra, down_kbps=down, up_kbps=up)
    fast = NetworkProfile(rtt=rtt, down_kbps=down, up_kbps=up)
    assert estimate(steps, slow) >= estimate(steps, fast)


@given(
    steps=_steps.filter(bool),
    which=st.integers(0, 5),
    more_received=_more,
    more_sent=_more,
    profile=st.sampled_from(list(PROFILES.values())),
)
def test_estimate_grows_with_bytes(
    steps: list[StepTraffic],
    which: int,
    more_received: int,
    more_sent: int,
    profile: NetworkProfile,
) -> None:
    i = which % len(steps)
    bigger = list(steps)
    bigger[i] = dataclasses.replace(
        steps[i],
        bytes_received=steps[i].bytes_received + more_received,
        bytes_sent=steps[i].bytes_sent + more_sent,
    )
    assert estimate(bigger, profile) >= estimate(steps, profile)


@given(steps=_steps, rtt=_rtt, down=_kbps, up=_kbps, factor=st.floats(1.0, 100.0))
def test_estimate_shrinks_with_bandwidth(
    steps: list[StepTraffic], rtt: float, down: float, up: float, factor: float
) -> None:
    narrow = NetworkProfile(rtt=rtt, down_kbps=down, up_kbps=up)
    wide = NetworkProfile(rtt=rtt, down_kbps=down * factor, up_kbps=up * factor)
    assert estimate(steps, wide) <= estimate(steps, narrow)
