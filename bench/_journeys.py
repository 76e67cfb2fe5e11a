"""The checks.yaml of the benchmarks that run many journeys: one-target HTTP journeys, 100 to a
channel, at one interval.

>>> checks_text(5000, interval=10, url=url, timeout=5)    # doctest: +SKIP
"""

from __future__ import annotations

import socket
from typing import Final

import yaml

LOCATION: Final = "bench"
_PER_CHANNEL: Final = 100


def checks_text(journeys: int, *, interval: float, url: str, timeout: float, steps: int = 1) -> str:
    """``journeys`` journeys of ``steps`` GETs of ``url`` each, every ``interval`` seconds."""
    channels = [
        {
            "name": f"ch{c}",
            "kind": "app",
            "team": "bench",
            "journeys": [
                {"name": f"j{j}", "steps": [{"name": f"s{s}", "url": url} for s in range(steps)]}
                for j in range(min(_PER_CHANNEL, journeys - c * _PER_CHANNEL))
            ],
        }
        for c in range(-(-journeys // _PER_CHANNEL))
    ]
    defaults = {
        "interval": f"{interval:g}s",
        "timeout": f"{timeout:g}s",
        "retries": 0,
        "location": LOCATION,
    }
    return yaml.safe_dump({"defaults": defaults, "channels": channels})


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
