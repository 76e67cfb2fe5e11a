"""Durations as written in checks.yaml: ``250ms``, ``2s``, ``1.5s``, ``1m``, ``1h`` or a bare
number of seconds. They become float seconds in the model.

Every duration is finite, not negative and at most ``MAX_DURATION_SECONDS``; most keys also
refuse zero and have a lower ceiling of their own (``probes.model.types``: ``Seconds``,
``Interval``, ``Timeout``). The limits are listed in docs/checks-yaml.md, "Limits".
"""

from __future__ import annotations

import math
import re
from typing import Final

from probes.errors import shorten

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
EXPECTED: Final = "expected a duration such as 500ms, 2s, 1.5s, 1m or 1h"
#: The longest duration any key takes (30 days): longer is a typo, and its arithmetic
#: (deadlines, timers) must stay exact.
MAX_DURATION_SECONDS: Final = 30 * 24 * 3600.0
#: A value quoted in a message is cut to this many characters.
MAX_SHOWN_CHARS: Final = 40


def shown(value: object) -> str:
    """``repr(value)``, cut to ``MAX_SHOWN_CHARS`` for a message.

    >>> shown("1" * 100)
    "'1111111111111111111111111111…(73 more)"
    """
    return shorten(repr(value), MAX_SHOWN_CHARS)


def parse_duration(value: object, *, at_most: float = MAX_DURATION_SECONDS) -> float:
    """Seconds for a duration value; raises ValueError with the accepted forms.

    >>> parse_duration("1.5s"), parse_duration("250ms"), parse_duration(3)
    (1.5, 0.25, 3.0)
    >>> parse_duration(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: expected a duration such as 500ms, 2s, 1.5s, 1m or 1h, a finite one; got nan
    """
    if isinstance(value, bool):
        raise ValueError(f"{EXPECTED}; got {shown(value)}")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        else:
            raise ValueError(f"{EXPECTED}; got {shown(value)}")
    except OverflowError:  # an integer of hundreds of digits: too large, said as such below
        seconds = math.inf if isinstance(value, int) and value > 0 else -math.inf
    # .inf as written is "not finite"; digits too many for a float are "more than at_most".
    written_infinite = isinstance(value, float) or not math.isfinite(at_most)
    if math.isnan(seconds) or (math.isinf(seconds) and written_infinite):
        raise ValueError(f"{EXPECTED}, a finite one; got {shown(value)}")
    if seconds < 0:
        raise ValueError(f"{EXPECTED}, not negative; got {shown(value)}")
    if seconds > at_most:
        raise ValueError(
            f"expected a duration of at most {format_limit(at_most)}; got {shown(value)}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest checks.yaml spelling of a duration, for messages: ``0.25 -> '250ms'``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def format_limit(seconds: float) -> str:
    """A limit as written in the docs: whole hours in hours, ``86400 -> '24h'``."""
    return f"{seconds / 3600:g}h" if seconds >= 3600 else format_duration(seconds)
