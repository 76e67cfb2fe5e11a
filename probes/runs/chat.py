"""Chat conversations, engine-neutral: which message a ``receive`` waits for, and how a
timeout describes what came instead. Both WebSocket runners (asyncio in
``probes.engine.websocket_step``, gevent in ``loadtests._ws``) use these, so a conversation
means the same thing in both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from probes.model.jsonpath import find_all
from probes.model.steps import Receive
from probes.model.templating import render_str
from probes.runs.expect import describe, json_problem

SWITCHING_PROTOCOLS: Final = 101
#: How long a passed conversation waits for the server to answer its close frame before it
#: drops the connection: politeness, bounded, and outside the step's phases.
CLOSE_WAIT: Final = 0.25
#: Skipped messages named in a timeout's message, and how much of each.
SHOWN_SKIPPED: Final = 5
SHOWN_CHARS: Final = 24
#: What ``parse`` gives for a message that is not JSON.
NOT_JSON: Final = object()


def matches(
    receive: Receive,
    text: str,
    document: object,
    contains: str | None,
    pattern: re.Pattern[str] | None,
    scope: Mapping[str, object],
) -> bool:
    if contains is not None and contains not in text:
        return False
    if pattern is not None and not pattern.search(text):
        return False
    if not receive.json_:
        return True
    # A message that is not JSON meets no JSON-path assertion, not even ``exists: false``.
    return document is not NOT_JSON and all(
        json_problem(a, document, scope) is None for a in receive.json_
    )


def parse(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return NOT_JSON


def wanted_text(
    receive: Receive, contains: str | None, regex: str | None, scope: Mapping[str, object]
) -> str:
    """``matching $.type == 'bot_reply' and text contains 'roaming'``, or ``at all``."""
    conditions = [describe(a, scope) for a in receive.json_]
    if contains is not None:
        conditions.append(f"text contains {cut(contains)!r}")
    if regex is not None:
        conditions.append(f"text ~ /{cut(regex)}/")
    return f"matching {' and '.join(conditions)}" if conditions else "at all"


def summary(receive: Receive, document: object, text: str, scope: Mapping[str, object]) -> str:
    """A skipped message in a few characters: the value its first JSON path selects (``typing``)
    when that is one plain value, else the start of its text."""
    if document is not NOT_JSON and receive.json_:
        try:
            found = find_all(render_str(receive.json_[0].path, scope), document)
        except ValueError:
            found = []
        if len(found) == 1 and isinstance(found[0], str | int | float | bool):
            return cut(str(found[0]))
    return repr(cut(" ".join(text.split())))


def skips(skipped: int, shown: list[str]) -> str:
    if not skipped:
        return " (none came)"
    more = ", …" if skipped > len(shown) else ""
    return f" (skipped {skipped}: {', '.join(shown)}{more})"


def cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
