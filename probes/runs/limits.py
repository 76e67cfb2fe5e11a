"""The limits both engines put on what a target may send back, in one frozen object.

A hostile or broken target must not exhaust the agent's memory or keep a step busy forever:
past a limit, the step fails with reason ``protocol``. The asyncio engine (``probes.engine``
and its client, ``probes.net``) and the Locust engine (``loadtests``) read the same ``Limits``,
so a journey fails at the same size in both.

A ``Limits`` is frozen, as aiohttp's ``ClientTimeout``: another one is made with
``dataclasses.replace``.

>>> from dataclasses import replace
>>> small = replace(DEFAULT_LIMITS, body_bytes=1024)
>>> small.body_bytes, small.redirects == DEFAULT_LIMITS.redirects
(1024, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: A larger response body, chat message, or TCP reply without the expected text fails the step.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: A response's status line and headers together may not exceed this (aiohttp allows 8190
#: bytes per line, and no total).
MAX_HEADER_BYTES: Final = 64 * 1024
#: Redirects followed for one request; one more fails the step.
MAX_REDIRECTS: Final = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What a target may send back before the step fails (reason ``protocol``)."""

    #: Bytes of a response body (after decoding), of a chat message, or of what a TCP step
    #: reads while it waits for the expected text.
    body_bytes: int = MAX_BODY_BYTES
    #: Bytes of a response's status line and headers (the asyncio engine's client).
    header_bytes: int = MAX_HEADER_BYTES
    #: Redirects followed for one HTTP request.
    redirects: int = MAX_REDIRECTS


#: The limits every engine uses unless told otherwise.
DEFAULT_LIMITS: Final = Limits()
