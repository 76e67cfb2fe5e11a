"""Field types shared by every part of the checks.yaml model."""

from __future__ import annotations

import re
from typing import Annotated, Final, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from probes.model.durations import parse_duration
from probes.model.jsonpath import compile_path

#: Names of channels, journeys, steps, devices and locations: they become metric labels and
#: ``channel/journey/step`` paths, so no slash and no spaces.
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name: TypeAlias = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: Names of variables and captures: they are written inside ``${...}``.
VARIABLE_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
VariableName: TypeAlias = Annotated[str, StringConstraints(pattern=VARIABLE_PATTERN)]
Seconds: TypeAlias = Annotated[float, BeforeValidator(parse_duration)]
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
