"""probes.model.hours: opening hours parsed and checked, evaluated against a fixed clock.

Every instant here is a constant: nothing reads the clock and nothing sleeps. Where the channel
opens and closes is found by asking ``is_open`` minute after minute of real time. Clock changes
used:

* Europe/Paris 2026: forward on Sun 29 March at 01:00 UTC (02:00 CET -> 03:00 CEST), back on
  Sun 25 October at 01:00 UTC (03:00 CEST -> 02:00 CET).
* America/New_York 2026: forward on Sun 8 March at 07:00 UTC (02:00 EST -> 03:00 EDT), back on
  Sun 1 November at 06:00 UTC (02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from probes.model.hours import DAYS, OpeningHours, TimeRange, is_open

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MICROSECOND = timedelta(microseconds=1)


def make(weekly: Any, tz: str = "Europe/Paris", closed: Any = ()) -> OpeningHours:
    return OpeningHours.model_validate({"tz": tz, "weekly": weekly, "closed": closed})


def paris(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int = 0,
    us: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=PARIS, fold=fold)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def changes(
    hours: OpeningHours, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)
) -> list[datetime]:
    """The instants in ``(start, end]``, in UTC, at which the channel opens or closes: where
    ``is_open`` differs from ``step`` of real time before (every change here is on a minute)."""
    at, end = start.astimezone(UTC), end.astimezone(UTC)  # add real time, not wall time
    state = is_open(hours, at)
    found: list[datetime] = []
    while at < end:
        at += step
        if is_open(hours, at) is not state:
            state = not state
            found.append(at)
    return found


OFFICE = make({"mon-fri": "08:00-20:00", "sat": "09:00-13:00", "sun": "closed"})


# --- parsing ----------------------------------------------------------------------------------


def test_weekly_is_normalized_to_every_day() -> None:
    weekly = {day: [str(r) for r in ranges] for day, ranges in OFFICE.weekly.items()}
    assert weekly == {
        "mon": ["08:00-20:00"],
        "tue": ["08:00-20:00"],
        "wed": ["08:00-20:00"],
        "thu": ["08:00-20:00"],
        "fri": ["08:00-20:00"],
        "sat": ["09:00-13:00"],
        "sun": [],
    }
    assert OFFICE.weekly["mon"] == (TimeRange(8 * 60, 20 * 60),)


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon", ["mon"]),
        ("mon-fri", ["mon", "tue", "wed", "thu", "fri"]),
        ("fri-mon", ["fri", "sat", "sun", "mon"]),
        ("sat,sun", ["sat", "sun"]),
        ("mon-wed, fri", ["mon", "tue", "wed", "fri"]),
        ("Mon-Tue", ["mon", "tue"]),
        ("sun-sat", list(DAYS)),
    ],
)
def test_day_keys(key: str, days: list[str]) -> None:
    hours = make({key: "10:00-11:00"})
    assert [d for d in DAYS if hours.weekly[d]] == sorted(days, key=DAYS.index)


def test_values_ranges_lists_closed_24h_and_midnight() -> None:
    hours = make(
        {
            "mon": ["09:00-12:00", "14:00-18:00"],
            "tue": "00:00-24:00",
            "wed": "22:00-02:00",
            "thu": "closed",
            "fri": "20:00-00:00",  # ends at midnight: the same as 20:00-24:00
            "sat": " 8:30 - 9:45 ",
        }
    )
    assert [str(r) for r in hours.weekly["mon"]] == ["09:00-12:00", "14:00-18:00"]
    assert hours.weekly["tue"] == (TimeRange(0, 1440),)
    assert str(hours.weekly["tue"][0]) == "00:00-24:00"
    assert hours.weekly["wed"][0].crosses_midnight
    assert hours.weekly["thu"] == ()
    assert hours.weekly["fri"] == (TimeRange(1200, 1440),)
    assert not hours.weekly["fri"][0].crosses_midnight
    assert hours.weekly["sat"] == (TimeRange(8 * 60 + 30, 9 * 60 + 45),)
    assert hours.weekly["sun"] == ()


def test_touching_ranges_are_allowed() -> None:
    hours = make(
        {"mon": ["08:00-12:00", "12:00-14:00"], "tue": "20:00-24:00", "wed": "00:00-08:00"}
    )
    assert len(hours.weekly["mon"]) == 2


def test_closed_dates_from_yaml_dates_or_strings() -> None:
    hours = make({}, closed=[date(2026, 12, 25), "2027-01-01"])
    assert hours.closed == (date(2026, 12, 25), date(2027, 1, 1))


def test_hours_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        OFFICE.tz = "UTC"  # type: ignore[misc]


BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"tz": "Europe/Pariss", "weekly": {}}, "unknown time zone 'Europe/Pariss'"),
    ({"tz": "../../etc/passwd", "weekly": {}}, "unknown time zone '../../etc/passwd'"),
    ({"tz": "", "weekly": {}}, "unknown time zone ''"),
    ({"weekly": {}}, "tz\n  Field required"),
    ({"tz": "UTC"}, "weekly\n  Field required"),
    ({"tz": "UTC", "weekly": {}, "holidays": []}, "holidays\n  Extra inputs are not permitted"),
    ({"tz": "UTC", "weekly": "08:00-20:00"}, "expected days mapped to opening times"),
    (
        {"tz": "UTC", "weekly": {"mon-fri": "08:00-20:00", "wed": "closed"}},
        "wed is given twice: in 'mon-fri' and in 'wed'",
    ),
    (
        {"tz": "UTC", "weekly": {"mon-fri,wed": "08:00-20:00"}},
        "wed is given twice in 'mon-fri,wed'",
    ),
    ({"tz": "UTC", "weekly": {"sat,sat": "08:00-20:00"}}, "sat is given twice in 'sat,sat'"),
    (
        {"tz": "UTC", "weekly": {"mon-mon": "08:00-20:00"}},
        "'mon-mon' starts and ends on the same day; write 'mon'",
    ),
    (
        {"tz": "UTC", "weekly": {"mnday": "08:00-20:00"}},
        "unknown day 'mnday' in 'mnday': expected one of mon, tue, wed, thu, fri, sat, sun",
    ),
    ({"tz": "UTC", "weekly": {"mon-fry": "08:00-20:00"}}, "unknown day 'fry' in 'mon-fry'"),
    (
        {"tz": "UTC", "weekly": {"": "08:00-20:00"}},
        "expected a day such as mon, a range such as mon-fri, or a list such as sat,sun; got ''",
    ),
    ({"tz": "UTC", "weekly": {"sat,": "08:00-20:00"}}, "or a list such as sat,sun; got 'sat,'"),
    ({"tz": "UTC", "weekly": {1: "08:00-20:00"}}, "or a list such as sat,sun; got 1"),
    (
        {"tz": "UTC", "weekly": {"mon": "8am-5pm"}},
        "mon: expected a time range such as '08:00-20:00', a list of them, or 'closed'; "
        "got '8am-5pm'",
    ),
    ({"tz": "UTC", "weekly": {"mon": False}}, "mon: expected a time range such as"),  # YAML off
    ({"tz": "UTC", "weekly": {"mon": ["closed"]}}, "got 'closed'"),
    ({"tz": "UTC", "weekly": {"mon": []}}, "mon: expected at least one time range; write 'closed'"),
    (
        {"tz": "UTC", "weekly": {"mon": "25:00-26:00"}},
        "mon: 25:00 is not a time of day; expected 00:00 to 23:59, or 24:00 to end a range",
    ),
    ({"tz": "UTC", "weekly": {"mon": "08:60-09:00"}}, "mon: 08:60 is not a time of day"),
    ({"tz": "UTC", "weekly": {"mon": "08:00-24:30"}}, "mon: 24:30 is not a time of day"),
    (
        {"tz": "UTC", "weekly": {"mon": "24:00-02:00"}},
        "mon: 24:00 can only end a range; got '24:00-02:00'",
    ),
    (
        {"tz": "UTC", "weekly": {"sat": "08:00-08:00"}},
        "sat: '08:00-08:00' starts and ends at the same time; "
        "write '00:00-24:00' for the whole day",
    ),
    (
        {"tz": "UTC", "weekly": {"mon": ["08:00-12:00", "11:00-13:00"]}},
        "mon: 08:00-12:00 overlaps 11:00-13:00",
    ),
    (
        {"tz": "UTC", "weekly": {"tue-wed": ["08:00-12:00", "08:00-12:00"]}},
        "tue: 08:00-12:00 overlaps 08:00-12:00",
    ),
    (
        {"tz": "UTC", "weekly": {"mon": "22:00-02:00", "tue": "01:00-05:00"}},
        "mon 22:00-02:00 overlaps tue 01:00-05:00",
    ),
    (
        {"tz": "UTC", "weekly": {"sun": "22:00-02:00", "mon": "01:00-05:00"}},
        "sun 22:00-02:00 overlaps mon 01:00-05:00",
    ),
    ({"tz": "UTC", "weekly": {}, "closed": ["2026-13-01"]}, "closed.0\n  Input should be a valid"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_bad_specs_are_explained(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        OpeningHours.model_validate(spec)
    assert message in str(info.value)


# --- is_open ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (paris(2026, 6, 1, 7, 59, 59), False),  # Monday, before opening
        (paris(2026, 6, 1, 8, 0), True),  # the start is included
        (paris(2026, 6, 3, 12, 0), True),  # Wednesday
        (paris(2026, 6, 5, 19, 59, 59, 999_999), True),
        (paris(2026, 6, 5, 20, 0), False),  # the end is excluded
        (paris(2026, 6, 6, 9, 30), True),  # Saturday morning
        (paris(2026, 6, 6, 13, 0), False),
        (paris(2026, 6, 7, 12, 0), False),  # Sunday: closed
        (utc(2026, 6, 1, 6, 0), True),  # Monday 08:00 in Paris, given in UTC
        (datetime(2026, 6, 1, 2, 0, tzinfo=NEW_YORK), True),  # the same instant, from New York
        (utc(2026, 6, 1, 5, 59), False),
    ],
)
def test_is_open_weekdays_and_weekends(at: datetime, expected: bool) -> None:
    assert is_open(OFFICE, at) is expected


def test_is_open_on_holidays() -> None:
    hours = make({"mon-fri": "08:00-20:00"}, closed=["2026-12-25"])  # a Friday
    assert is_open(hours, paris(2026, 12, 24, 12, 0))
    assert not is_open(hours, paris(2026, 12, 25, 12, 0))
    assert is_open(hours, paris(2026, 12, 28, 12, 0))


def test_is_open_across_midnight() -> None:
    hours = make({"fri": "22:00-02:00", "sun": "23:00-01:00"})
    assert not is_open(hours, paris(2026, 6, 5, 21, 59))
    assert is_open(hours, paris(2026, 6, 5, 22, 0))
    assert is_open(hours, paris(2026, 6, 6, 0, 0))  # Saturday, after midnight
    assert is_open(hours, paris(2026, 6, 6, 1, 59, 59))
    assert not is_open(hours, paris(2026, 6, 6, 2, 0))
    assert not is_open(hours, paris(2026, 6, 12, 1, 0))  # not on a Friday morning
    assert is_open(hours, paris(2026, 6, 8, 0, 30))  # Sunday's night runs into Monday


def test_a_holiday_is_closed_all_day_even_under_a_night_range() -> None:
    night = make({"thu-fri": "22:00-02:00"}, closed=["2026-12-25"])  # Friday 25
    assert is_open(night, paris(2026, 12, 24, 23, 0))
    assert not is_open(night, paris(2026, 12, 25, 1, 0))  # Thursday's tail, on the holiday
    assert not is_open(night, paris(2026, 12, 25, 23, 0))
    assert is_open(night, paris(2026, 12, 26, 1, 0))  # the holiday's own tail, on Saturday
    assert changes(night, paris(2026, 12, 24, 23, 0), paris(2026, 12, 25, 0, 0)) == [
        paris(2026, 12, 25, 0, 0)
    ]


def test_is_open_until_24_00_and_joined_with_the_next_day() -> None:
    hours = make({"mon": "20:00-24:00", "tue": "00:00-08:00", "sat": "12:00-00:00"})
    assert is_open(hours, paris(2026, 6, 1, 23, 59, 59, 999_999))
    assert is_open(hours, paris(2026, 6, 2, 0, 0))
    assert changes(hours, paris(2026, 6, 1, 21, 0), paris(2026, 6, 2, 8, 0)) == [
        paris(2026, 6, 2, 8, 0)
    ]
    assert is_open(hours, paris(2026, 6, 6, 23, 59))
    assert not is_open(hours, paris(2026, 6, 7, 0, 0))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected an aware datetime"):
        is_open(OFFICE, datetime(2026, 6, 1, 8, 0))


# --- opening and closing over days -----------------------------------------------------------


def test_changes_through_a_week() -> None:
    assert changes(OFFICE, paris(2026, 6, 5, 12, 0), paris(2026, 6, 8, 20, 0)) == [
        paris(2026, 6, 5, 20, 0),  # Friday close
        paris(2026, 6, 6, 9, 0),  # Saturday
        paris(2026, 6, 6, 13, 0),
        paris(2026, 6, 8, 8, 0),  # Monday: Sunday is closed
        paris(2026, 6, 8, 20, 0),
    ]


def test_holidays_stay_closed_until_the_next_open_day() -> None:
    hours = make({"mon-fri": "08:00-20:00"}, closed=["2026-12-25", "2027-01-01"])
    assert changes(hours, paris(2026, 12, 24, 21, 0), paris(2026, 12, 28, 8, 0)) == [
        paris(2026, 12, 28, 8, 0)
    ]
    assert changes(hours, paris(2026, 12, 31, 21, 0), paris(2027, 1, 4, 8, 0)) == [
        paris(2027, 1, 4, 8, 0)
    ]


@pytest.mark.parametrize(
    "weekly",
    [
        {"mon-sun": "00:00-24:00"},
        {"mon-sun": ["00:00-12:00", "12:00-24:00"]},
        {"mon,wed,fri": "00:00-24:00", "tue,thu,sat,sun": ["00:00-06:00", "06:00-24:00"]},
    ],
)
def test_always_open_never_closes(weekly: dict[str, Any]) -> None:
    hours = make(weekly)
    for at in (paris(2026, 6, 1, 8, 0), paris(2026, 3, 28, 23, 0), paris(2026, 10, 25, 2, 30)):
        assert is_open(hours, at)
        assert changes(hours, at, at + timedelta(days=8), timedelta(minutes=15)) == []


@pytest.mark.parametrize("weekly", [{}, {"mon-sun": "closed"}])
def test_never_open_never_opens(weekly: dict[str, Any]) -> None:
    hours = make(weekly, closed=["2026-06-02"])
    assert not is_open(hours, paris(2026, 6, 1, 8, 0))
    assert changes(hours, paris(2026, 6, 1, 8, 0), paris(2026, 6, 9, 8, 0)) == []


def test_always_open_but_for_a_holiday() -> None:
    hours = make({"mon-sun": "00:00-24:00"}, closed=["2026-12-25"])
    week = changes(hours, paris(2026, 12, 21, 0, 0), paris(2026, 12, 28, 0, 0), timedelta(hours=1))
    assert week == [paris(2026, 12, 25, 0, 0), paris(2026, 12, 26, 0, 0)]


# --- clock changes ----------------------------------------------------------------------------


def test_paris_spring_forward_day() -> None:
    daily = make({"mon-sun": "08:00-20:00"})
    # 07:00 CEST is 05:00 UTC; 08:00 CEST is 06:00 UTC.
    assert changes(daily, paris(2026, 3, 29, 7, 0), utc(2026, 3, 29, 6, 0)) == [
        utc(2026, 3, 29, 6, 0)
    ]
    # From Saturday 21:00 CET (20:00 UTC): 10 h of real time to Sunday 08:00 CEST, then 12 h open.
    assert changes(daily, paris(2026, 3, 28, 21, 0), utc(2026, 3, 29, 18, 0)) == [
        utc(2026, 3, 29, 6, 0),
        utc(2026, 3, 29, 18, 0),
    ]
    mornings = make({"mon-sun": "00:00-12:00"})
    opened, closed = changes(mornings, paris(2026, 3, 28, 23, 0), utc(2026, 3, 29, 10, 0))
    assert (opened, closed) == (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 10, 0))
    assert closed - opened == timedelta(hours=11)


def test_paris_fall_back_day() -> None:
    daily = make({"mon-sun": "08:00-20:00"})
    # 07:00 CET is 06:00 UTC; 08:00 CET is 07:00 UTC.
    assert changes(daily, paris(2026, 10, 25, 7, 0), utc(2026, 10, 25, 7, 0)) == [
        utc(2026, 10, 25, 7, 0)
    ]
    # From Saturday 21:00 CEST (19:00 UTC): 12 h of real time to Sunday 08:00 CET, then 12 h open.
    assert changes(daily, paris(2026, 10, 24, 21, 0), utc(2026, 10, 25, 19, 0)) == [
        utc(2026, 10, 25, 7, 0),
        utc(2026, 10, 25, 19, 0),
    ]
    mornings = make({"mon-sun": "00:00-12:00"})
    opened, closed = changes(mornings, paris(2026, 10, 24, 23, 0), utc(2026, 10, 25, 11, 0))
    assert (opened, closed) == (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 11, 0))
    assert closed - opened == timedelta(hours=13)


def test_a_range_inside_the_skipped_hour_never_opens_that_day() -> None:
    hours = make({"sun": "02:00-03:00"})
    # The day is 23 h long and never opens; the next opening is a week later: 02:00 CEST is
    # 00:00 UTC.
    assert changes(hours, paris(2026, 3, 29, 0, 0), utc(2026, 4, 5, 0, 0)) == [
        utc(2026, 4, 5, 0, 0)
    ]


def test_a_range_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    hours = make({"sun": "02:30-05:00"})
    assert changes(hours, paris(2026, 3, 29, 0, 0), utc(2026, 3, 29, 3, 0)) == [
        utc(2026, 3, 29, 1, 0),  # the clock jumps from 02:00 CET to 03:00 CEST
        utc(2026, 3, 29, 3, 0),  # 05:00 CEST
    ]


def test_a_range_starting_in_the_repeated_hour_opens_twice() -> None:
    hours = make({"sun": "02:30-05:00"})
    assert changes(hours, paris(2026, 10, 25, 0, 0), utc(2026, 10, 25, 4, 0)) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 0),  # back to 02:00 CET: before the range again
        utc(2026, 10, 25, 1, 30),  # 02:30 CET
        utc(2026, 10, 25, 4, 0),  # 05:00 CET
    ]
    assert is_open(hours, paris(2026, 10, 25, 2, 45, fold=0))
    assert not is_open(hours, paris(2026, 10, 25, 2, 15, fold=1))


def test_new_york_clock_changes() -> None:
    daily = make({"mon-sun": "08:00-20:00"}, tz="America/New_York")
    # From Saturday 21:00 EST (Sunday 02:00 UTC) to 08:00 EDT (12:00 UTC).
    assert changes(daily, utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 12, 0)) == [utc(2026, 3, 8, 12, 0)]
    # 07:00 EST is 12:00 UTC; 08:00 EST is 13:00 UTC.
    assert changes(daily, utc(2026, 11, 1, 12, 0), utc(2026, 11, 1, 13, 0)) == [
        utc(2026, 11, 1, 13, 0)
    ]
    nights = make({"mon-sun": "22:00-06:00"}, tz="America/New_York")
    # Open from Saturday 22:00 EDT until Sunday 06:00 EST: 9 h of real time.
    assert changes(nights, utc(2026, 11, 1, 1, 0), utc(2026, 11, 1, 11, 0)) == [
        utc(2026, 11, 1, 2, 0),
        utc(2026, 11, 1, 11, 0),
    ]
    # Open from Saturday 22:00 EST until Sunday 06:00 EDT: 7 h of real time.
    assert changes(nights, utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 10, 0)) == [
        utc(2026, 3, 8, 3, 0),
        utc(2026, 3, 8, 10, 0),
    ]
