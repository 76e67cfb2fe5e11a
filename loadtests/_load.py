"""The load a test runs, from the top-level ``loadtest:`` section of checks.yaml.

* ``stages`` become a ``LoadTestShape`` (``shape``): the locustfile binds it to a module name
  only when there are stages, because Locust runs any shape class it finds there. The shape runs
  on the master (``--processes N``, ``--master``) and ends the test after the last stage.
* ``users``, ``spawn_rate`` and ``run_time`` become the defaults of ``-u``, ``-r`` and ``-t``
  (``install``); anything given on the command line, as ``LOCUST_*`` environment variables or in
  a Locust config file wins.

::

    loadtest:
      stages:                                   # ramp to 50, hold a minute, spike to 200, stop
        - {duration: 30s, users: 50, spawn_rate: 5}
        - {duration: 1m, users: 50}
        - {duration: 10s, users: 200}
"""

from __future__ import annotations

from locust import LoadTestShape
from locust.argument_parser import LocustArgumentParser
from locust.event import Events

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from probes.model import LoadTest, Stage


class StagesShape(LoadTestShape):
    """The stages of checks.yaml, one after the other. Subclassed by ``shape`` with its stages:
    abstract here, so Locust never runs it by itself."""

    abstract = True
    stages: tuple[Stage, ...] = ()

    def tick(self) -> tuple[int, float] | None:
        """``(users, spawn_rate)`` of the stage in progress; None after the last, to stop."""
        return at(self.stages, self.get_run_time())  # type: ignore[no-untyped-call]  # locust


def at(stages: Sequence[Stage], elapsed: float) -> tuple[int, float] | None:
    """``(users, spawn_rate)`` of the stage in progress ``elapsed`` seconds into the test; None
    once every stage has run.

    >>> stages = [Stage(duration=2, users=2), Stage(duration=2, users=4, spawn_rate=1)]
    >>> at(stages, 0.5), at(stages, 3.0), at(stages, 4.0)
    ((2, 2.0), (4, 1.0), None)
    """
    ends = accumulate(stage.duration for stage in stages)
    previous = 0
    for stage, end in zip(stages, ends, strict=True):
        if elapsed < end:
            return stage.users, stage.rate(previous)
        previous = stage.users
    return None


def shape(stages: Sequence[Stage]) -> type[StagesShape]:
    """A load shape class that runs ``stages``, for the locustfile to bind to a module name."""
    return type(
        "StagesShape",
        (StagesShape,),
        {"__module__": __name__, "abstract": False, "stages": tuple(stages)},
    )


def defaults(load: LoadTest) -> dict[str, Any]:
    """The Locust option defaults ``load`` sets: ``num_users``, ``spawn_rate``, ``run_time``
    (whole seconds as an int, as ``-t`` gives them)."""
    out: dict[str, Any] = {}
    if load.users is not None:
        out["num_users"] = load.users
    if load.spawn_rate is not None:
        out["spawn_rate"] = load.spawn_rate
    if load.run_time is not None:
        seconds = load.run_time
        out["run_time"] = int(seconds) if float(seconds).is_integer() else seconds
    return out


def install(events: Events, load: LoadTest) -> None:
    """Make ``load``'s users, spawn rate and run time the defaults of ``-u``, ``-r``, ``-t``."""
    chosen = defaults(load)
    if not chosen:
        return

    def set_defaults(parser: LocustArgumentParser, **_: Any) -> None:
        parser.set_defaults(**chosen)

    # Locust's EventHook.add_listener has no annotations.
    events.init_command_line_parser.add_listener(set_defaults)  # type: ignore[no-untyped-call]
