"""Field types shared by every part of the checks.yaml model."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Final, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from probes.model.durations import MAX_DURATION_SECONDS, format_duration, parse_duration
from probes.model.jsonpath import compile_path

#: Names of channels, journeys, steps, devices and locations: they become metric labels and
#: ``channel/journey/step`` paths, so no slash and no spaces.
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name: TypeAlias = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: Names of variables and captures: they are written inside ``${...}``.
VARIABLE_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
VariableName: TypeAlias = Annotated[str, StringConstraints(pattern=VARIABLE_PATTERN)]
#: The shortest ``interval``: faster would hammer the target.
MIN_INTERVAL_SECONDS: Final = 1.0
#: The longest ``interval``: one run a day. Longer is most likely a typo (``240h`` for ``24h``),
#: and a monitor that looks less than daily does not watch.
MAX_INTERVAL_SECONDS: Final = 24 * 3600.0
#: The longest timeout of a journey, a step or a wait (``within``), and the longest latency a
#: check compares with (``apdex_t``, ``latency_threshold``, ``max_duration``): one hour.
MAX_TIMEOUT_SECONDS: Final = 3600.0


def _duration(*, at_most: float, zero: bool) -> Callable[[object], float]:
    def parse(value: object) -> float:
        seconds = parse_duration(value, at_most=at_most)
        if seconds == 0 and not zero:
            raise ValueError("expected a duration longer than 0s; got 0s")
        return seconds

    return parse


def _interval(value: object) -> float:
    seconds = parse_duration(value, at_most=MAX_INTERVAL_SECONDS)
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValueError(
            f"expected an interval of at least {format_duration(MIN_INTERVAL_SECONDS)}; "
            f"got {seconds:g}s"
        )
    return seconds


#: A duration longer than 0s (``probes.model.durations``: finite, at most 30 days).
Seconds: TypeAlias = Annotated[
    float, BeforeValidator(_duration(at_most=MAX_DURATION_SECONDS, zero=False))
]
#: A duration where 0s means "none": a wait between runs, an Alertmanager group_wait.
SecondsOrZero: TypeAlias = Annotated[
    float, BeforeValidator(_duration(at_most=MAX_DURATION_SECONDS, zero=True))
]
Interval: TypeAlias = Annotated[float, BeforeValidator(_interval)]
Timeout: TypeAlias = Annotated[
    float, BeforeValidator(_duration(at_most=MAX_TIMEOUT_SECONDS, zero=False))
]
Percent: TypeAlias = Annotated[float, Field(gt=0, le=100)]
Scalar: TypeAlias = str | int | float | bool


class Frozen(BaseModel):
    """Base of every checks.yaml mapping: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)


def _compile_regex(value: object) -> object:
    if not isinstance(value, str):
        return value  # not text: the str type reports it
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return value


Regex: TypeAlias = Annotated[str, BeforeValidator(_compile_regex)]


def _json_path(value: object) -> object:
    if isinstance(value, str):  # anything else, the str type reports
        compile_path(value)
    return value


JsonPath: TypeAlias = Annotated[str, BeforeValidator(_json_path)]
