"""The table every benchmark prints: the figure, the anchor's figure from the same run, the
ratio, and the goal, with a verdict per goal.

>>> print_table("B9 example", [Row("p99 (ms)", 12.0, anchor=24.0, goal="<= 0.5x", met=True)])
... # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: Shown where a row has no anchor, ratio or goal.
NONE: Final = "—"
_WIDTHS: Final = (44, 12, 12, 9)


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's table. ``ratio`` defaults to carewatch / anchor."""

    figure: str
    ours: float | str
    anchor: float | str | None = None
    ratio: float | None = None
    goal: str = NONE
    met: bool | None = None  # None: the row has no goal of its own
    digits: int = 2

    def cells(self) -> tuple[str, str, str, str, str]:
        ratio = self.ratio
        if ratio is None and isinstance(self.ours, float) and isinstance(self.anchor, float):
            ratio = self.ours / self.anchor if self.anchor else math.nan
        verdict = "" if self.met is None else ("  met" if self.met else "  NOT MET")
        return (
            self.figure,
            _number(self.ours, self.digits),
            NONE if self.anchor is None else _number(self.anchor, self.digits),
            NONE if ratio is None else f"{ratio:.2f}x",
            self.goal + verdict,
        )


def _number(value: float | str, digits: int) -> str:
    return value if isinstance(value, str) else f"{value:.{digits}f}"


def render_table(title: str, rows: Sequence[Row]) -> str:
    """The table as text: a title line, a header and one line per row."""
    header = ("figure", "carewatch", "anchor", "ratio", "goal")
    lines = [title, _line(header), _line(tuple("-" * len(h) for h in header))]
    lines += [_line(row.cells()) for row in rows]
    return "\n".join(lines)


def _line(cells: tuple[str, ...]) -> str:
    figure, ours, anchor, ratio, goal = cells
    w = _WIDTHS
    return f"{figure:<{w[0]}}{ours:>{w[1]}}{anchor:>{w[2]}}{ratio:>{w[3]}}  {goal}".rstrip()


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(render_table(title, rows), flush=True)


def goals_met(rows: Sequence[Row]) -> bool:
    """True when no row with a goal missed it."""
    return all(row.met is not False for row in rows)
