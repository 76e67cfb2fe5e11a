"""The networks a customer might be on, as checks.yaml names them (``devices[].network``).

The estimate that replays a run on one of them is ``probes.runs.experience``; what the numbers
are and where they come from is in docs/experience.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, TypeAlias

from pydantic import BeforeValidator, Field

from probes.model.durations import parse_duration
from probes.model.types import Frozen

Seconds: TypeAlias = Annotated[float, BeforeValidator(parse_duration), Field(allow_inf_nan=False)]
Kbps: TypeAlias = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]


class NetworkProfile(Frozen):
    """A network a customer might be on: round-trip time and bandwidth in kilobits per second.

    >>> NetworkProfile.model_validate({"rtt": "100ms", "down_kbps": 5000, "up_kbps": 1000})
    NetworkProfile(rtt=0.1, down_kbps=5000.0, up_kbps=1000.0)
    """

    rtt: Seconds
    down_kbps: Kbps
    up_kbps: Kbps


#: Lighthouse ``throttling.desktopDense4G``: ``rttMs: 40``, ``throughputKbps: 10 * 1024``.
LIGHTHOUSE_DESKTOP_DENSE_4G: Final = NetworkProfile(
    rtt=0.040, down_kbps=10 * 1024, up_kbps=10 * 1024
)
#: Lighthouse ``throttling.mobileSlow4G``: ``rttMs: 150``, ``throughputKbps: 1.6 * 1024``, and
#: 750 kbps up (its DevTools ``uploadThroughputKbps`` before the 0.9 adjustment).
LIGHTHOUSE_MOBILE_SLOW_4G: Final = NetworkProfile(rtt=0.150, down_kbps=1.6 * 1024, up_kbps=750)
#: Lighthouse ``throttling.mobileRegular3G``: ``rttMs: 300``, ``throughputKbps: 700``, and
#: 700 kbps up (its DevTools ``uploadThroughputKbps`` before the 0.9 adjustment).
LIGHTHOUSE_MOBILE_REGULAR_3G: Final = NetworkProfile(rtt=0.300, down_kbps=700, up_kbps=700)

#: The built-in networks, by the name used in checks.yaml and in the ``network`` label.
PROFILES: Final[Mapping[str, NetworkProfile]] = MappingProxyType(
    {
        "wifi": LIGHTHOUSE_DESKTOP_DENSE_4G,
        "4g": LIGHTHOUSE_MOBILE_SLOW_4G,
        "3g": LIGHTHOUSE_MOBILE_REGULAR_3G,
    }
)
