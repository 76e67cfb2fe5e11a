"""Typed keys for what the application shares with its handlers and middlewares.

Handlers reach the shared state through these, so mypy knows what they get back::

    state = request.app[STATE]
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare._faults import FaultTable
from democare._state import CareState

STATE: Final = web.AppKey("state", CareState)
"""Sessions, customers and tickets."""
FAULTS: Final = web.AppKey("faults", FaultTable)
"""The faults in force."""
