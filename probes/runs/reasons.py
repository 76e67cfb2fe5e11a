"""From a transport's exception to a failed step: one table per transport.

A failed step is a ``Reason`` and a human message, never an exception. Each transport says in one
table what the exceptions it raises mean, as httpx's default transport maps httpcore's exceptions
(``map_httpcore_exceptions``): the rows are tried in order, and the first that matches gives the
reason, and the message. carewatch's own exceptions (``probes.errors``) carry their message as
their text; a row words the message of a library's exception from its attributes.

One row comes before every table: the agent's own exhaustion (``AGENT_FAILURES``). A socket
that cannot be opened for want of file descriptors, a write that finds no buffer space, a step
that runs out of memory: the target was never judged, so the step fails with reason
``agent_resources``, whatever the transport wrapped the error in, and alerts can tell the agent's
trouble from the target's.

>>> table = (
...     Caught(ConnectionRefusedError, Reason.CONNECT),
...     Caught(OSError, Reason.CONNECT, lambda exc, target: f"connection lost to {target}"),
... )
>>> classify(ConnectionRefusedError("refused"), table, "care.example")
Failure(reason=<Reason.CONNECT: 'connect'>, message='refused')
>>> classify(OSError("reset"), table, "care.example").message
'connection lost to care.example'
>>> classify(ValueError("?"), table, "care.example") is None
True
>>> classify(OSError(errno.EMFILE, "Too many open files"), table, "care.example").reason
<Reason.AGENT_RESOURCES: 'agent_resources'>

The tables: ``probes.net.client.HTTP_FAILURES`` (carewatch's HTTP client),
``probes.net.sockets.SOCKET_FAILURES`` (TCP and SMTP steps),
``probes.engine.websocket_step.WEBSOCKET_FAILURES`` (aiohttp) and
``probes.engine.dns_step.QUERY_FAILURES`` (dnspython).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from probes.runs.results import Failure, Reason

#: What a message is worded about: the step's target (a URL), or a name server.
T = TypeVar("T", contravariant=True)


def text(exc: BaseException, target: object) -> str:
    """The exception's own text: the message of carewatch's own exceptions."""
    return str(exc)


@dataclass(frozen=True, slots=True)
class Caught(Generic[T]):
    """A row of a transport's table: an exception of ``kind`` (for which ``when`` holds) fails
    the step with ``reason``; ``message`` words it from the exception and the target."""

    kind: type[BaseException] | tuple[type[BaseException], ...]
    reason: Reason
    message: Callable[[Any, T], str] = text
    when: Callable[[Any], bool] | None = None


#: What the agent itself may run out of, by errno: its own descriptors, the system's, socket
#: buffers, kernel memory. Only the agent's load causes these, never a target.
RESOURCE_ERRNOS: Final = {
    errno.EMFILE: "file descriptors",
    errno.ENFILE: "the system's file descriptors",
    errno.ENOBUFS: "socket buffer space",
    errno.ENOMEM: "memory",
}


def exhausted(exc: BaseException | None) -> BaseException | None:
    """The agent's own exhaustion behind ``exc``: ``exc`` itself, or what it was raised from
    (``__cause__``, an unsuppressed ``__context__``, a ``ConnectionLost``'s ``cause``); None if
    none is a ``MemoryError`` or an ``OSError`` of ``RESOURCE_ERRNOS``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return exc
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            return exc
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc = exc.__context__
        else:
            exc = cause if isinstance(cause, BaseException) else None
    return None


def _agent_message(exc: BaseException, target: object) -> str:
    found = exhausted(exc)
    if isinstance(found, OSError) and found.errno is not None:
        what = f"{RESOURCE_ERRNOS[found.errno]} ({os.strerror(found.errno)})"
    else:
        what = "memory"
    return f"the agent ran out of {what}: this agent's failure, not the target's"


#: The row tried before every transport's table (see the module's docstring).
AGENT_FAILURES: Final[tuple[Caught[object], ...]] = (
    Caught(
        BaseException,
        Reason.AGENT_RESOURCES,
        _agent_message,
        when=lambda exc: exhausted(exc) is not None,
    ),
)


def classify(exc: BaseException, table: Iterable[Caught[T]], target: T) -> Failure | None:
    """The failure the first row that matches ``exc`` makes, ``AGENT_FAILURES`` first, then
    ``table``'s; None if none does."""
    rows: Iterable[Caught[T]] = (*AGENT_FAILURES, *table)
    for row in rows:
        if isinstance(exc, row.kind) and (row.when is None or row.when(exc)):
            return Failure(row.reason, row.message(exc, target))
    return None
