"""Where a step's time goes: a phase state machine shared by every step kind."""

from __future__ import annotations

import time
from typing import Final

from probes.net.traffic import TrafficMeter
from probes.runs.results import Phase

_ACTIVITY: Final = {
    Phase.DNS: "resolving the host name",
    Phase.CONNECT: "connecting",
    Phase.TLS: "negotiating TLS",
    Phase.WAIT: "waiting for the response",
    Phase.RECEIVE: "reading the response body",
    Phase.FIRST_REPLY: "waiting for the first reply",
}


class Timer:
    """Phase timings of one step, in ``time.perf_counter()`` seconds.

    A state machine: the step's runner (and the HTTP client under it) calls ``enter`` as each
    phase begins, which closes the phase in progress; so a step cut short by a timeout still
    shows where its time went.

    >>> timer = Timer()                       # the wait phase is in progress
    >>> _ = timer.enter(Phase.RECEIVE)        # the first byte is in
    >>> sorted(phase.value for phase in timer.phases())
    ['connect', 'dns', 'receive', 'total', 'wait']
    >>> timer.current is None                 # phases() ends the step
    True
    """

    def __init__(
        self,
        phases: tuple[Phase, ...] = (Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.RECEIVE),
        *,
        first: Phase | None = Phase.WAIT,
    ) -> None:
        self.start = time.perf_counter()
        self.spent = dict.fromkeys(phases, 0.0)
        self.current: Phase | None = first
        self._since = self.start
        self.traffic = TrafficMeter()  # filled by runners that can count their traffic

    def enter(self, phase: Phase | None) -> float:
        now = time.perf_counter()
        if self.current is not None:
            self.spent[self.current] = self.spent.get(self.current, 0.0) + now - self._since
        self.current, self._since = phase, now
        return now

    @property
    def activity(self) -> str:
        return _ACTIVITY.get(self.current, "sending the request") if self.current else "finishing"

    def phases(self) -> dict[Phase, float]:
        """Every phase's seconds so far, with ``total`` from the start to now or to the end."""
        end = self.enter(None) if self.current is not None else self._since
        return {**self.spent, Phase.TOTAL: end - self.start}
