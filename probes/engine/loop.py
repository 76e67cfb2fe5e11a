"""The event loop carewatch runs on: uvloop, whose transports and timers are written in C.

A probe is mostly event-loop work (a connection made, a request written, an answer parsed),
so the loop's own cost is a large part of a probe's CPU (see docs/performance.md, B1). Every
entry point that runs the engine or the exporter uses ``run_on_uvloop``; the tests run on the
same loop.

>>> async def main() -> str:
...     return type(asyncio.get_running_loop()).__module__
>>> run_on_uvloop(main())
'uvloop'
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

#: What ``asyncio.Runner(loop_factory=...)`` takes; a new uvloop loop per call.
new_event_loop = uvloop.new_event_loop


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a new uvloop loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
