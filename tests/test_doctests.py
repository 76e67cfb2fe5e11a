"""The examples in the docstrings of probes, alerts and dashboards run as doctests, so an
example that no longer matches the code fails here instead of misleading its reader.

Every module under ``probes/``, ``alerts/`` and ``dashboards/`` is searched, so a new module's
examples run the day it is written. An example that needs an event loop or a network
(``await``, a server to talk to) is marked ``# doctest: +SKIP``; every other one runs, and the
last test counts them, so examples cannot all quietly become skipped.
"""

from __future__ import annotations

import doctest
import functools
import importlib
import pkgutil
from typing import Final

import pytest

import alerts
import dashboards
import probes

MODULES: Final = (
    "probes",
    *sorted(m.name for m in pkgutil.walk_packages(probes.__path__, "probes.")),
    "alerts",
    *sorted(
        m.name
        for m in pkgutil.walk_packages(alerts.__path__, "alerts.")
        if m.name != "alerts.__main__"  # importing it runs the command
    ),
    "dashboards",
    *sorted(
        m.name
        for m in pkgutil.walk_packages(dashboards.__path__, "dashboards.")
        if m.name != "dashboards.__main__"
    ),
)
FLAGS: Final = doctest.ELLIPSIS
#: Examples that ran when this was written; fewer means some were lost or skipped.
AT_LEAST: Final = 82


@functools.cache
def examples(name: str) -> tuple[int, int, str]:
    """The examples of module ``name`` that failed and that ran, and the failures' report."""
    module = importlib.import_module(name)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    return runner.failures, runner.tries, "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_are_true(name: str) -> None:
    failed, _, report = examples(name)
    assert failed == 0, report


def test_the_examples_that_can_run_do_run() -> None:
    ran = {name: examples(name)[1] for name in MODULES}
    assert sum(ran.values()) >= AT_LEAST, ran
    # the examples of a module that shows how it is used without a loop
    shown = ("probes.model", "probes.model.load", "probes.runs.chat", "probes.runs.scope")
    for name in (*shown, "probes.net.timing"):
        assert ran[name] > 0, name
