"""Opening hours of a staffed channel (voice call-back, live chat): when it is open.

A journey on a channel that keeps hours runs only while the channel is open: at each of the
journey's ticks the scheduler asks ``is_open`` and skips the run while the channel is closed, and
the exposition publishes it as ``carewatch_channel_open``. ``is_open`` is pure: the time is an
argument, never read from a clock.

Example, on a channel in checks.yaml::

    hours:
      tz: Europe/Paris
      weekly:
        mon-fri: "08:00-20:00"
        sat: ["09:00-12:00", "14:00-18:00"]
        sun: closed
      closed: [2026-12-25, 2027-01-01]   # holidays: whole local dates

The rules:

* ``tz`` is an IANA time zone name. Every time and date is local to it.
* A ``weekly`` key is a day (``mon`` .. ``sun``), a range of days (``mon-fri``; ``fri-mon``
  wraps over the weekend) or a comma list (``sat,sun``). A day not listed is closed. A day listed
  twice is an error.
* A value is a range ``"HH:MM-HH:MM"``, a list of ranges, or ``closed``. A range includes its
  start and excludes its end. ``24:00`` may end a range. A range that ends before it starts
  crosses midnight: ``fri: "22:00-02:00"`` is open until 02:00 on Saturday. Overlapping ranges
  are an error, including a night range running into the next day's first range; ranges that
  touch (``20:00-24:00`` and the next day's ``00:00-08:00``) join up.
* A ``closed`` date is closed from 00:00 to 24:00 local, whatever range would cover it,
  including the tail of the previous night's range. The day after it follows the weekly
  schedule, including the tail of the holiday's own night range.
* Times are wall-clock times. On the day clocks go forward, times in the skipped hour never
  happen: ``02:00-03:00`` is not open that day in Europe/Paris, and ``02:30-05:00`` opens at
  03:00 when the clock jumps. On the day clocks go back, the repeated hour is covered twice:
  ``08:00-20:00`` is still open for 12 h of wall clock (and of real time), while ``00:00-12:00``
  is open for 13 h of real time, and ``02:30-05:00`` opens at the first 02:30, closes when the
  clock goes back to 02:00 and opens again at the second 02:30.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Final, Literal, TypeAlias, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, field_validator

from probes.model.types import Frozen

Day: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: In ``date.weekday()`` order: ``DAYS[0]`` is Monday.
DAYS: Final[tuple[Day, ...]] = get_args(Day)
#: The value for a day with no opening.
CLOSED: Final = "closed"
MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
_MICROSECONDS_PER_MINUTE: Final = 60 * 1_000_000

_RANGE: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
RANGE_EXPECTED: Final = "expected a time range such as '08:00-20:00', a list of them, or 'closed'"
DAYS_EXPECTED: Final = (
    "expected a day such as mon, a range such as mon-fri, or a list such as sat,sun"
)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """An opening on one day, in minutes after local midnight: ``08:00-20:00`` is (480, 1200).

    ``end`` is 1..1440; an ``end`` below ``start`` means the range crosses midnight and ends on
    the next day.
    """

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- parsing ----------------------------------------------------------------------------------


def _day_index(name: str, key: str) -> int:
    try:
        return DAYS.index(cast(Day, name))
    except ValueError:
        raise ValueError(
            f"unknown day {name!r} in {key!r}: expected one of {', '.join(DAYS)}"
        ) from None


def _parse_days(key: object) -> list[int]:
    """Weekday indexes for a ``weekly`` key: ``mon``, ``mon-fri``, ``fri-mon`` or ``sat,sun``."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{DAYS_EXPECTED}; got {key!r}")
    days: list[int] = []
    for part in (p.strip().lower() for p in key.split(",")):
        if not part:
            raise ValueError(f"{DAYS_EXPECTED}; got {key!r}")
        if "-" in part:
            first_name, _, last_name = (s.strip() for s in part.partition("-"))
            first, last = _day_index(first_name, key), _day_index(last_name, key)
            if first == last:
                raise ValueError(f"{part!r} starts and ends on the same day; write {first_name!r}")
            span = [first]
            while span[-1] != last:
                span.append((span[-1] + 1) % len(DAYS))
        else:
            span = [_day_index(part, key)]
        for day in span:
            if day in days:
                raise ValueError(f"{DAYS[day]} is given twice in {key!r}")
            days.append(day)
    return days


def _minutes(hours: str, minutes: str, *, text: str, key: str, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0 and not end:
        raise ValueError(f"{key}: 24:00 can only end a range; got {text!r}")
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise ValueError(
            f"{key}: {hours}:{minutes} is not a time of day; expected 00:00 to 23:59, "
            f"or 24:00 to end a range"
        )
    return h * 60 + m


def _parse_range(value: object, key: str) -> TimeRange:
    if isinstance(value, TimeRange):
        return value
    match = _RANGE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{key}: {RANGE_EXPECTED}; got {value!r}")
    text = cast(str, value).strip()
    start = _minutes(match[1], match[2], text=text, key=key, end=False)
    end = _minutes(match[3], match[4], text=text, key=key, end=True)
    if start == end:
        raise ValueError(
            f"{key}: {text!r} starts and ends at the same time; "
            f"write '00:00-24:00' for the whole day"
        )
    return TimeRange(start, MINUTES_PER_DAY if end == 0 else end)  # "20:00-00:00" ends at 24:00


def _parse_ranges(value: object, key: str) -> tuple[TimeRange, ...]:
    if isinstance(value, str) and value.strip().lower() == CLOSED:
        return ()
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{key}: expected at least one time range; write 'closed' instead")
        return tuple(_parse_range(item, key) for item in value)
    return (_parse_range(value, key),)


def _week_segments(
    weekly: Mapping[int, Sequence[TimeRange]],
) -> Iterator[tuple[int, int, int, TimeRange]]:
    """``(start, end, day, range)`` in minutes since Monday 00:00, split where a week wraps."""
    for day, ranges in weekly.items():
        for r in ranges:
            start = day * MINUTES_PER_DAY + r.start
            end = (day + r.crosses_midnight) * MINUTES_PER_DAY + r.end
            if end <= MINUTES_PER_WEEK:
                yield start, end, day, r
            else:
                yield start, MINUTES_PER_WEEK, day, r
                yield 0, end - MINUTES_PER_WEEK, day, r


def _check_overlaps(weekly: Mapping[int, Sequence[TimeRange]]) -> None:
    segments = sorted(_week_segments(weekly), key=lambda s: (s[0], s[1]))
    for (_, end, day, r), (start, _, next_day, next_r) in itertools.pairwise(segments):
        if start < end:
            if day == next_day:
                raise ValueError(f"{DAYS[day]}: {r} overlaps {next_r}")
            raise ValueError(f"{DAYS[day]} {r} overlaps {DAYS[next_day]} {next_r}")


def _parse_weekly(value: object) -> object:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"expected days mapped to opening times, such as {{mon-fri: '08:00-20:00'}}; "
            f"got {value!r}"
        )
    given: dict[int, str] = {}
    weekly: dict[int, tuple[TimeRange, ...]] = {}
    for key, spec in value.items():
        days = _parse_days(key)
        ranges = _parse_ranges(spec, key)
        for day in days:
            if day in given:
                raise ValueError(f"{DAYS[day]} is given twice: in {given[day]!r} and in {key!r}")
            given[day] = key
            weekly[day] = ranges
    _check_overlaps(weekly)
    return {name: weekly.get(day, ()) for day, name in enumerate(DAYS)}


Weekly: TypeAlias = Annotated[Mapping[Day, tuple[TimeRange, ...]], BeforeValidator(_parse_weekly)]


class OpeningHours(Frozen):
    """When a staffed channel is open; see the module docstring for the rules.

    ``weekly`` is normalized: every day is a key, with its ranges as written (``()`` when
    closed)::

        >>> hours = OpeningHours.model_validate(
        ...     {"tz": "Europe/Paris", "weekly": {"mon-fri": "08:00-20:00", "sat": "09:00-13:00"}}
        ... )
        >>> [str(r) for r in hours.weekly["wed"]], hours.weekly["sun"]
        (['08:00-20:00'], ())
    """

    tz: str
    weekly: Weekly
    closed: tuple[date, ...] = ()

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected an IANA name such as Europe/Paris"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone (``ZoneInfo`` caches instances, so this is cheap)."""
        return ZoneInfo(self.tz)


# --- evaluation -------------------------------------------------------------------------------


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime (with a time zone); got {at.isoformat()}")


def _open_minutes(hours: OpeningHours, day: date) -> list[tuple[int, int]]:
    """The open spans of one local date, in minutes 0..1440, sorted, touching spans joined."""
    if day in hours.closed:
        return []
    weekday = day.weekday()
    own = hours.weekly[DAYS[weekday]]
    previous = hours.weekly[DAYS[weekday - 1]]  # DAYS[-1] is Sunday
    spans = sorted(
        [(r.start, MINUTES_PER_DAY if r.crosses_midnight else r.end) for r in own]
        + [(0, r.end) for r in previous if r.crosses_midnight]
    )
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def is_open(hours: OpeningHours, at: datetime) -> bool:
    """Whether the channel is open at the instant ``at`` (an aware datetime, any zone).

    >>> from datetime import UTC
    >>> spec = {"tz": "Europe/Paris", "weekly": {"mon": "08:00-20:00"}}
    >>> hours = OpeningHours.model_validate(spec)
    >>> is_open(hours, datetime(2026, 6, 1, 6, 0, tzinfo=UTC))  # Monday 08:00 in Paris
    True
    """
    _require_aware(at)
    local = at.astimezone(hours.zone)
    since_midnight = (
        (local.hour * 60 + local.minute) * 60 + local.second
    ) * 1_000_000 + local.microsecond
    return any(
        start * _MICROSECONDS_PER_MINUTE <= since_midnight < end * _MICROSECONDS_PER_MINUTE
        for start, end in _open_minutes(hours, local.date())
    )
