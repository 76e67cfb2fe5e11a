"""A channel open on weekdays from 8:00 to 20:00 in Paris, and two instants to test it at."""

from __future__ import annotations

from typing import Final

#: The ``channels:`` of a checks.yaml: one voice channel with opening hours; more channels may be
#: appended to it.
HOURS_CONFIG: Final = """
channels:
  - name: voice
    kind: voice
    team: care
    hours: {tz: Europe/Paris, weekly: {mon-fri: "08:00-20:00"}}
    journeys:
      - {name: callback, steps: [{name: s, url: "http://127.0.0.1:9/"}]}
"""
#: Wednesday 2026-11-25: 10:00 and 22:00 in Paris (UTC+1 in November), as Unix times.
PARIS_WEDNESDAY_10H: Final = 1795597200.0
PARIS_WEDNESDAY_22H: Final = PARIS_WEDNESDAY_10H + 12 * 3600
