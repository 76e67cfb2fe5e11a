"""Durations as written in checks.yaml: ``250ms``, ``2s``, ``1.5s``, ``1m``, ``1h`` or a bare
number of seconds. They become float seconds in the model."""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
EXPECTED: Final = "expected a duration such as 500ms, 2s, 1.5s, 1m or 1h"


def parse_duration(value: object) -> float:
    """Seconds for a duration value; raises ValueError with the accepted forms.

    >>> parse_duration("1.5s"), parse_duration("250ms"), parse_duration(3)
    (1.5, 0.25, 3.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"{EXPECTED}; got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{EXPECTED}; got {value!r}")
    if seconds < 0:
        raise ValueError(f"{EXPECTED}, not negative; got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest checks.yaml spelling of a duration, for messages: ``0.25 -> '250ms'``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
