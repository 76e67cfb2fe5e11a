"""The metric contract's pure parts: the ``message`` label stays bounded and stable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from probes import metrics as m
from probes.metrics import MESSAGE_LABEL_CHARS, message_label


def _iso(moment: datetime, offset_minutes: int | None, sep: str) -> str:
    if offset_minutes is None:
        return moment.isoformat(sep=sep) + "Z"
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat(sep=sep)


#: Each kind of value that varies from run to run, as a failure message may embed it.
UUIDS = st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
HEX = st.text("0123456789abcdef", min_size=16, max_size=64) | st.text(
    "0123456789ABCDEF", min_size=16, max_size=64
)
TIMES = st.builds(
    _iso,
    st.datetimes(),
    st.none() | st.integers(-14 * 60, 14 * 60),
    st.sampled_from(["T", " "]),
) | st.dates().map(lambda d: d.isoformat())
NUMBERS = st.integers(10**5, 10**15 - 1).map(str) | st.builds(
    lambda whole, fraction: f"{whole}.{fraction}",
    st.integers(10**5, 10**15 - 1),
    st.integers(0, 10**6),
)
#: The same, cut short by the probe's own message (``probes.runs.expect.describe`` keeps 16
#: characters of an operand, ``_show`` 80 of a value) after the start of the time of day.
CUT_UUIDS = st.builds(lambda u: str(u)[:16] + "…", st.uuids())
CUT_TIMES = st.builds(
    lambda moment, end: moment.isoformat()[:end] + "…",
    st.datetimes(min_value=datetime(1000, 1, 1)),
    st.integers(12, 40),
)
VARYING = [UUIDS, HEX, TIMES, NUMBERS, CUT_UUIDS, CUT_TIMES]


@given(st.text())
@example("x" * 1000)
@example(" \n\t " * 100)
def test_the_label_is_bounded_and_idempotent(text: str) -> None:
    label = message_label(text)
    assert len(label) <= MESSAGE_LABEL_CHARS
    assert message_label(label) == label
    assert "\n" not in label
    assert label == label.strip()


@given(st.data(), st.text(max_size=200), st.text(max_size=200))
def test_messages_differing_only_in_an_id_or_a_time_give_one_label(
    data: st.DataObject, before: str, after: str
) -> None:
    kind = data.draw(st.sampled_from(VARYING))
    one, other = data.draw(kind), data.draw(kind)
    assert message_label(f"{before} {one} {after}") == message_label(f"{before} {other} {after}")


@given(st.text(max_size=100), st.sampled_from(VARYING).flatmap(lambda kind: kind))
def test_a_varying_value_never_shows(before: str, varying: str) -> None:
    assert varying not in message_label(f"{before} {varying}")


def test_status_codes_ports_and_limits_stay_readable() -> None:
    for message in (
        "expected status 200, got 503",
        "expected status 200 or 3xx, got 404",
        "cannot connect to 127.0.0.1:8900: [Errno 111] Connection refused",
        "step timeout 900ms reached while waiting for the response",
        "no sms callback within 30s (none came)",
        "$.total: expected > 0, got 0",
    ):
        assert message_label(message) == message


def test_a_cut_label_ends_with_an_ellipsis() -> None:
    label = message_label("expected status 200, got 503: " + "body " * 100)
    assert len(label) == MESSAGE_LABEL_CHARS
    assert label.endswith(m.ELLIPSIS)
    assert label.startswith("expected status 200, got 503: body body")
    assert message_label("short") == "short"
