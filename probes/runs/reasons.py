"""From a transport's exception to a failed step: one table per transport.

A failed step is a ``Reason`` and a human message, never an exception. Each transport says in one
table what the exceptions it raises mean, as httpx's default transport maps httpcore's exceptions
(``map_httpcore_exceptions``): the rows are tried in order, and the first that matches gives the
reason, and the message. carewatch's own exceptions (``probes.errors``) carry their message as
their text; a row words the message of a library's exception from its attributes.

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

The tables: ``probes.net.client.HTTP_FAILURES`` (carewatch's HTTP client),
``probes.net.sockets.SOCKET_FAILURES`` (TCP and SMTP steps),
``probes.engine.websocket_step.WEBSOCKET_FAILURES`` (aiohttp) and
``probes.engine.dns_step.QUERY_FAILURES`` (dnspython).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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


def classify(exc: BaseException, table: Iterable[Caught[T]], target: T) -> Failure | None:
    """The failure the first row of ``table`` that matches ``exc`` makes; None if none does."""
    for row in table:
        if isinstance(exc, row.kind) and (row.when is None or row.when(exc)):
            return Failure(row.reason, row.message(exc, target))
    return None
