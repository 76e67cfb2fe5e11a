"""The error tree of ``probes.errors``: one root, and a drawing that stays true."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import probes
from probes import errors
from probes.errors import CarewatchError

#: A line of the tree in the module docstring: ``  * DnsFailed       -- its name did not ...``.
TREE_LINE = re.compile(r"^(?P<indent> *)\* (?P<name>\w+)", re.MULTILINE)


def exception_classes() -> list[type[BaseException]]:
    """Every exception class a module under probes/ defines, private ones included."""
    found = []
    for info in pkgutil.walk_packages(probes.__path__, "probes."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(value)
    return found


def test_every_exception_probes_defines_descends_from_carewatch_error() -> None:
    classes = exception_classes()

    assert len(classes) >= 20  # the walk sees them all, private ones included
    assert [c.__qualname__ for c in classes if not issubclass(c, CarewatchError)] == []


def test_the_docstring_draws_every_exception_under_its_parent() -> None:
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in TREE_LINE.finditer(errors.__doc__):
        depth, name = len(line["indent"]), line["name"]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))

    drawn = {c.__name__: c.__mro__[1].__name__ for c in exception_classes()}
    drawn.pop("CarewatchError")
    assert parents == drawn
