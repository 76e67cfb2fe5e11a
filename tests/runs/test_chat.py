"""probes.runs.chat: a conversation's logic without I/O, fed messages by hand.

The engines' tests (tests/engine/test_websocket_step.py on aiohttp, tests/loadtests/test_parity.py
on gevent) hold real conversations with this logic; here each rule is checked on its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from probes.errors import MissingVariable
from probes.model.steps import Capture, Receive, Send
from probes.runs.chat import (
    SHOWN_SKIPPED,
    Receiving,
    broken,
    closed,
    refused,
    say,
    too_large,
)
from probes.runs.results import Failure, Reason


def receiving(
    spec: dict[str, Any],
    scope: dict[str, object] | None = None,
    captures: dict[str, Any] | None = None,
) -> Receiving:
    return Receiving(
        Receive.model_validate(spec),
        {name: Capture.model_validate(c) for name, c in (captures or {}).items()},
        {} if scope is None else scope,
    )


def message(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def test_a_send_is_its_text_or_its_json_rendered_in_the_scope() -> None:
    scope = {"name": "Ana", "n": 2}
    assert say(Send.model_validate({"text": "hi ${name}"}), scope) == "hi Ana"
    sent = say(Send.model_validate({"json": {"text": "${name}", "count": "${n}"}}), scope)
    assert json.loads(sent) == {"text": "Ana", "count": 2}
    with pytest.raises(MissingVariable, match="ticket"):
        say(Send.model_validate({"text": "about ${ticket}"}), scope)


def test_the_first_message_that_matches_every_condition_is_taken() -> None:
    bot = receiving(
        {"json": [{"path": "$.type", "equals": "bot_reply"}], "contains": "roaming", "regex": "€"},
        captures={"answer": {"json": "$.text"}},
    )
    assert not bot.offer(message(type="typing"))
    assert not bot.offer(message(type="bot_reply", text="roaming costs 2 $"))
    assert not bot.offer(b"roaming: 2 \xe2\x82\xac, not JSON")  # no JSON-path assertion holds
    assert bot.offer(message(type="bot_reply", text="roaming: 2 € a day"))
    assert bot.take() is None
    assert bot.scope == {"answer": "roaming: 2 € a day"}
    assert bot.skipped == 3


def test_a_receive_with_no_condition_takes_any_message() -> None:
    anything = receiving({})
    assert anything.offer(b"\xff\xfe not even UTF-8")
    assert anything.take() is None


def test_a_message_that_is_not_json_meets_no_json_assertion_not_even_exists_false() -> None:
    absent = receiving({"json": [{"path": "$.error", "exists": False}]})
    assert not absent.offer(b"plain text")
    assert absent.offer(message(ok=True))


def test_a_missing_capture_is_the_failure() -> None:
    ticket = receiving({}, captures={"ticket": {"json": "$.ticket"}})
    assert ticket.offer(message(text="hello"))
    assert ticket.take() == Failure(Reason.CAPTURE, "ticket: $.ticket matched nothing")
    assert ticket.scope == {}


def test_conditions_are_rendered_in_the_scope_once() -> None:
    scope: dict[str, object] = {"ticket": "T-7"}
    mine = receiving({"contains": "${ticket}", "regex": "^${ticket}:"}, scope)
    scope["ticket"] = "T-8"  # a later change does not move what this receive waits for
    assert not mine.offer(b"T-8: yours")
    assert mine.offer(b"T-7: mine")


def test_a_templated_regex_that_does_not_compile_fails_before_waiting() -> None:
    bad = receiving({"regex": "${pattern}"}, {"pattern": "(unclosed"})
    assert bad.failure == Failure(
        Reason.ASSERTION,
        "/(unclosed/ is not a valid regular expression "
        "(missing ), unterminated subpattern at position 0)",
    )
    assert receiving({"regex": "fine"}).failure is None


def test_a_timeout_says_what_was_awaited_and_what_came_instead() -> None:
    reply = receiving(
        {
            "within": "2s",
            "json": [{"path": "$.type", "equals": "bot_reply"}],
            "contains": "a long text that will be cut short",
            "regex": "ok",
        }
    )
    assert reply.timed_out() == Failure(
        Reason.TIMEOUT,
        "no message matching $.type == 'bot_reply' and text contains 'a long text that will be…' "
        "and text ~ /ok/ within 2s (none came)",
    )
    reply.offer(message(type="typing"))  # named by the value its first path selects
    reply.offer(message(kind="greeting"))  # that path selects nothing: the start of its text
    reply.offer(b"hello   there,\n customer, how can we help?")
    assert reply.timed_out().message.endswith(
        """(skipped 3: typing, '{"kind": "greeting"}', 'hello there, customer, h…')"""
    )
    assert receiving({"within": "250ms"}).timed_out().message == (
        "no message at all within 250ms (none came)"
    )


def test_a_timeout_names_the_first_few_skipped_messages() -> None:
    quiet = receiving({"contains": "answer"})
    for n in range(SHOWN_SKIPPED + 2):
        quiet.offer(f"m{n}".encode())
    shown = ", ".join(f"'m{n}'" for n in range(SHOWN_SKIPPED))
    assert quiet.timed_out().message.endswith(f"(skipped {SHOWN_SKIPPED + 2}: {shown}, …)")


@pytest.mark.parametrize(
    ("received", "code", "said"),
    [
        (0, None, "the server closed the chat after 0 messages"),
        (1, 1000, "the server closed the chat after 1 message"),
        (2, 1011, "the server closed the chat after 2 messages (code 1011)"),
        (2, 0, "the server closed the chat after 2 messages (code 0)"),
    ],
)
def test_a_close_says_how_many_messages_came_and_an_abnormal_code(
    received: int, code: int | None, said: str
) -> None:
    assert closed(received, code) == Failure(Reason.CONNECT, said)


def test_the_other_ends_of_a_chat() -> None:
    assert too_large(1000) == Failure(Reason.PROTOCOL, "chat message larger than 1000 bytes")
    assert broken("bad opcode") == Failure(Reason.PROTOCOL, "broken chat message: bad opcode")
    assert refused(503) == Failure(Reason.HTTP_STATUS, "WebSocket upgrade refused: 503")
