"""Chat conversations, engine-neutral and without I/O: what a ``send`` puts on the wire, which
message a ``receive`` waits for, what it captures, and how a failed conversation is described.

Both WebSocket steps hold a conversation with this logic and only move the messages: asyncio on
aiohttp (``probes.engine.websocket_step``), gevent on websocket-client (``loadtests._ws``). So a
conversation means the same thing, and fails with the same message, in both engines. A
transport's ``receive`` line, in outline::

    receiving = Receiving(line.receive, line.capture, scope)
    if receiving.failure is not None:       # a templated regex that does not compile
        return receiving.failure
    while not receiving.offer(next_data_message_until(deadline)):
        pass                                # skipped: a typing indicator, a greeting, ...
    return receiving.take()                 # captures into the scope; a failure if one is missing

with ``receiving.timed_out()`` when ``within`` passes, and ``closed``, ``too_large`` or
``broken`` when the connection ends the conversation instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from typing import Final

from probes.model.durations import format_duration
from probes.model.jsonpath import find_all
from probes.model.steps import Capture, Receive, Send
from probes.model.templating import render, render_str
from probes.runs.expect import Response, describe, json_problem, take
from probes.runs.results import Failure, Reason

SWITCHING_PROTOCOLS: Final = 101
#: The close code of a normal closure (RFC 6455, 7.4.1); no code at all is normal too.
NORMAL_CLOSURE: Final = 1000
#: How long a passed conversation waits for the server to answer its close frame before it
#: drops the connection: politeness, bounded, and outside the step's phases.
CLOSE_WAIT: Final = 0.25
#: Skipped messages named in a timeout's message, and how much of each.
SHOWN_SKIPPED: Final = 5
SHOWN_CHARS: Final = 24
#: What a message that is not JSON parses to.
_NOT_JSON: Final = object()


def say(send: Send, scope: Mapping[str, object]) -> str:
    """The text a ``send`` line puts on the wire: its text, or its JSON, rendered in ``scope``.

    >>> say(Send.model_validate({"json": {"text": "hi ${name}"}}), {"name": "Ana"})
    '{"text": "hi Ana"}'
    """
    if send.text is not None:
        return render_str(send.text, scope)
    return json.dumps(render(send.json_, scope))


class Receiving:
    """One ``receive`` line while its messages come in: fed each data message the transport
    reads, it says whether that is the awaited one. The others are skipped (typing indicators,
    greetings, read receipts) and named when ``within`` passes without a match.

    >>> receive = Receive.model_validate({"contains": "roaming", "within": "5s"})
    >>> receiving = Receiving(receive, {}, {})
    >>> receiving.offer(b"..."), receiving.offer(b"Roaming?")
    (False, False)
    >>> print(receiving.timed_out().message)
    no message matching text contains 'roaming' within 5s (skipped 2: '...', 'Roaming?')
    >>> receiving.offer(b"roaming is included"), receiving.take()
    (True, None)
    """

    def __init__(
        self,
        receive: Receive,
        captures: Mapping[str, Capture],
        scope: MutableMapping[str, object],
    ) -> None:
        self.receive = receive
        self.captures = captures
        self.scope = scope
        contains, regex = receive.contains, receive.regex
        self.contains = render_str(contains, scope) if contains is not None else None
        self.regex = render_str(regex, scope) if regex is not None else None
        #: Why this receive cannot wait at all: a templated value made its regex invalid.
        self.failure: Failure | None = None
        self._pattern: re.Pattern[str] | None = None
        try:
            self._pattern = re.compile(self.regex) if self.regex is not None else None
        except re.error as exc:
            self.failure = Failure(
                Reason.ASSERTION, f"/{self.regex}/ is not a valid regular expression ({exc})"
            )
        self.skipped = 0
        self.shown: list[str] = []  # the first few skipped messages, in a few characters each
        self.matched: bytes | None = None

    def offer(self, body: bytes) -> bool:
        """Whether ``body`` is the awaited message (then ``take`` its captures); if not, it is
        skipped and the transport waits for the next one."""
        text = body.decode("utf-8", errors="replace")
        document = _parse(body) if self.receive.json_ else _NOT_JSON
        if self._matches(text, document):
            self.matched = body
            return True
        self.skipped += 1
        if len(self.shown) < SHOWN_SKIPPED:
            self.shown.append(self._summary(document, text))
        return False

    def take(self) -> Failure | None:
        """Put the matched message's captures in the scope; the failure if one is missing."""
        assert self.matched is not None, "take() before a message matched"
        response = Response(status=SWITCHING_PROTOCOLS, headers={}, body=self.matched, duration=0)
        values, failure = take(self.captures, response)
        self.scope.update(values)
        return failure

    def timed_out(self) -> Failure:
        """``within`` passed with no match: what was awaited, and what came instead."""
        conditions = [describe(assertion, self.scope) for assertion in self.receive.json_]
        if self.contains is not None:
            conditions.append(f"text contains {_cut(self.contains)!r}")
        if self.regex is not None:
            conditions.append(f"text ~ /{_cut(self.regex)}/")
        wanted = f"matching {' and '.join(conditions)}" if conditions else "at all"
        if self.skipped:
            more = ", …" if self.skipped > len(self.shown) else ""
            came = f" (skipped {self.skipped}: {', '.join(self.shown)}{more})"
        else:
            came = " (none came)"
        within = format_duration(self.receive.within)
        return Failure(Reason.TIMEOUT, f"no message {wanted} within {within}{came}")

    def _matches(self, text: str, document: object) -> bool:
        if self.contains is not None and self.contains not in text:
            return False
        if self._pattern is not None and not self._pattern.search(text):
            return False
        if not self.receive.json_:
            return True
        # A message that is not JSON meets no JSON-path assertion, not even ``exists: false``.
        return document is not _NOT_JSON and all(
            json_problem(assertion, document, self.scope) is None
            for assertion in self.receive.json_
        )

    def _summary(self, document: object, text: str) -> str:
        """A skipped message in a few characters: the value its first JSON path selects
        (``typing``) when that is one plain value, else the start of its text."""
        if document is not _NOT_JSON and self.receive.json_:
            try:
                found = find_all(render_str(self.receive.json_[0].path, self.scope), document)
            except ValueError:
                found = []
            if len(found) == 1 and isinstance(found[0], str | int | float | bool):
                return _cut(str(found[0]))
        return repr(_cut(" ".join(text.split())))


def closed(received: int, code: int | None) -> Failure:
    """The server closed the chat after ``received`` data messages, with close ``code`` (None:
    it gave none).

    >>> closed(3, 1011).message
    'the server closed the chat after 3 messages (code 1011)'
    """
    count = f"{received} message{'' if received == 1 else 's'}"
    normal = code in (None, NORMAL_CLOSURE)
    return Failure(
        Reason.CONNECT,
        f"the server closed the chat after {count}" + ("" if normal else f" (code {code})"),
    )


def too_large(limit: int) -> Failure:
    """A message over the step's size limit ended the conversation."""
    return Failure(Reason.PROTOCOL, f"chat message larger than {limit} bytes")


def broken(error: object) -> Failure:
    """A frame the transport could not read ended the conversation."""
    return Failure(Reason.PROTOCOL, f"broken chat message: {error}")


def refused(status: int) -> Failure:
    """The server answered the WebSocket upgrade with ``status`` instead of 101."""
    return Failure(Reason.HTTP_STATUS, f"WebSocket upgrade refused: {status}")


def _parse(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
