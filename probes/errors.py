"""The one error root of carewatch, drawn as a tree.

* CarewatchError
  * ConfigError         -- checks.yaml is unreadable or invalid; carries every Problem found
  * MissingVariable     -- a template names a variable that has no value in this run (a capture
                           that an earlier, failed step never took); engines skip the step

Probe failures are not exceptions: a failed step is a result (see ``probes.runs.results``) with a
``reason`` from a closed enum and a human message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CarewatchError(Exception):
    """Root of every error carewatch raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in a config file.

    Example: ``Problem("checks.yaml", 12, 9, "channels[0].journeys[1].steps[2].expect.status",
    "expected an HTTP status such as 200, [200, 201] or 2xx; got 'ok'")`` prints as
    ``checks.yaml:12:9: channels[0].journeys[1].steps[2].expect.status: expected ...``.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(CarewatchError):
    """checks.yaml could not be turned into a model. ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in config"
        super().__init__("\n".join([head, *(str(p) for p in self.problems)]))


class MissingVariable(CarewatchError):
    """A ``${name}`` had no value when a step was rendered.

    Validation guarantees every name is defined somewhere, so at run time this only happens when
    the step that captures it did not run: a ``finally`` step is then skipped, not failed.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"${{{name}}} has no value in this run")
