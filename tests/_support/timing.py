"""How far a measured duration may stray from the one a test arranged."""

from __future__ import annotations

from typing import Final

#: How far a measured wait may fall short of the time slept: uvloop's timers and ``loop.time()``
#: count whole milliseconds, so a 0.3 s sleep can measure 0.29999 s on ``perf_counter``.
CLOCK_SLACK: Final = 0.002
#: How far "took about this long" may overshoot on a noisy 2-core machine: generous, but far
#: below the durations the tests tell apart.
SLACK: Final = 0.25
