"""WebSocket steps (chat) against real aiohttp WebSocket servers on loopback: the conversation,
skipped typing indicators, captures, headers and subprotocols, phases, and chats that go wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from probes.engine.websocket_step import CLOSE_WAIT, WEBSOCKET_FAILURES
from probes.errors import ConfigError, MissingVariable
from probes.model.steps import WebSocketStep
from probes.runs.reasons import classify
from probes.runs.results import Failure, Phase, Reason, RunResult
from probes.runs.scope import require
from tests._support import journeys
from tests._support.journeys import CHAT, Step, failed, one_journey
from tests._support.servers import ServerFactory, serve
from tests._support.timing import CLOCK_SLACK, SLACK

USER_AGENT: Final = "CareApp/5.2.0 (Android 14; Pixel 8)"
SUBPROTOCOL: Final = "carechat.v1"
#: How long the test bot "thinks" before it answers.
THINK: Final = 0.2
#: Every server loop in these tests ends after this many messages, whatever the client does.
MAX_FRAMES: Final = 200

Chat = Callable[[web.Request, web.WebSocketResponse], Awaitable[None]]


async def run(*steps: Step, **options: Any) -> RunResult:
    """Run one journey of ``steps`` on the chat channel with a fresh engine."""
    return await journeys.run(*steps, channel=CHAT, **options)


def chat_step(*conversation: Step, name: str = "chat", url: str = "${chat}", **fields: Any) -> Step:
    """A WebSocket step ``name`` holding ``conversation`` with ``url``; ``fields`` join it."""
    return {"name": name, "websocket": url, **fields, "conversation": list(conversation)}


def send(**message: Any) -> Step:
    """A conversation line sending ``text=...`` or ``json=...``."""
    return {"send": message}


def receive(*, capture: dict[str, Any] | None = None, **wanted: Any) -> Step:
    """A conversation line waiting for a message as ``wanted`` (``within``, ``contains``,
    ``regex``, ``json``), with what to ``capture`` from it."""
    line: Step = {"receive": wanted}
    if capture is not None:
        line["capture"] = capture
    return line


def is_type(kind: str) -> dict[str, str]:
    """The JSON assertion ``$.type == kind``."""
    return {"path": "$.type", "equals": kind}


async def chat_server(
    aiohttp_server: ServerFactory, chat: Chat, *, protocols: tuple[str, ...] = (SUBPROTOCOL,)
) -> str:
    """Serve ``chat`` on ``/chat`` and return the ``ws://`` URL."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=protocols)
        await ws.prepare(request)
        await chat(request, ws)
        return ws

    base = await serve(aiohttp_server, chat=handle)
    return base.replace("http://", "ws://") + "/chat"


async def messages(ws: web.WebSocketResponse) -> list[str]:
    """What the client sent, until it closes (bounded)."""
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                seen.append(message.data)
            if len(seen) >= MAX_FRAMES:
                break
    return seen


# --- a whole conversation -------------------------------------------------------------------------


async def test_a_conversation_skips_typing_and_passes_captures_on(
    aiohttp_server: ServerFactory,
) -> None:
    seen: dict[str, Any] = {}

    async def bot(request: web.Request, ws: web.WebSocketResponse) -> None:
        seen["headers"] = request.headers.copy()
        seen["protocol"] = ws.ws_protocol
        await ws.send_str("welcome to care chat")  # not JSON: no JSON assertion matches it
        await ws.send_json({"type": "greeting", "text": "Hi, how can we help?"})
        said: list[str] = []
        async for message in ws:
            said.append(message.data)
            if len(said) == 1:
                await ws.send_json({"type": "typing"})
                await ws.send_json({"type": "typing"})
                await asyncio.sleep(THINK)
                await ws.send_json({"type": "bot_reply", "intent": "roaming", "ticket": "T-9"})
            else:
                await ws.send_str(f"bye, {json.loads(said[0])['customer']}")
            if len(said) >= MAX_FRAMES:
                break
        seen["said"] = said

    async def echo(request: web.Request) -> web.Response:
        seen["echo"] = dict(request.query)
        return web.Response(text="ok")

    url = await chat_server(aiohttp_server, bot)
    base = await serve(aiohttp_server, echo=echo)
    result = await run(
        chat_step(
            receive(json=[is_type("greeting")]),
            send(json={"type": "message", "text": "roaming charges?", "customer": "${run_id}"}),
            receive(
                within="2s",
                json=[is_type("bot_reply"), {"path": "$.intent", "exists": True}],
                capture={"intent": {"json": "$.intent"}, "ticket": {"json": "$.ticket"}},
            ),
            send(text="thanks, ${intent} it is"),
            receive(contains="bye", regex="^bye, [0-9a-f]{32}$"),
            headers={"X-Chat-Entry": "help-centre"},
            subprotocols=["carechat.v1"],
        ),
        {"name": "after", "url": "${base}/echo?intent=${intent}&ticket=${ticket}"},
        name="ask-bot",
        device="android",
        chat=url,
        base=base,
    )

    assert result.ok, result.to_dict()
    chat, after = result.final.steps
    assert chat.status == 101
    assert seen["protocol"] == SUBPROTOCOL
    headers = seen["headers"]
    assert headers.getall("User-Agent") == [USER_AGENT]
    assert headers.getall("X-App-Version") == ["5.2.0"]
    assert headers["X-Chat-Entry"] == "help-centre"
    first, second = seen["said"]
    assert json.loads(first)["text"] == "roaming charges?"
    assert len(json.loads(first)["customer"]) == 32  # the run id, rendered
    assert second == "thanks, roaming it is"
    assert seen["echo"] == {"intent": "roaming", "ticket": "T-9"}
    assert after.ok


async def test_phases_connect_first_reply_and_wait(aiohttp_server: ServerFactory) -> None:
    async def bot(request: web.Request, ws: web.WebSocketResponse) -> None:
        await asyncio.sleep(0.1)  # before the greeting: wait, not first_reply
        await ws.send_json({"type": "greeting"})
        async for _ in ws:
            await ws.send_json({"type": "typing"})
            await asyncio.sleep(THINK)
            await ws.send_json({"type": "bot_reply"})
            await asyncio.sleep(0.1)  # after the first reply: wait again
            await ws.send_json({"type": "survey"})
            break

    url = await chat_server(aiohttp_server, bot)
    result = await run(
        chat_step(
            receive(json=[is_type("greeting")]),
            send(text="hello"),
            receive(json=[is_type("bot_reply")]),
            receive(json=[is_type("survey")]),
        ),
        chat=url,
    )

    assert result.ok, result.to_dict()
    phases = result.final.steps[0].phases
    assert set(phases) == {Phase.CONNECT, Phase.FIRST_REPLY, Phase.WAIT, Phase.TOTAL}
    assert phases[Phase.CONNECT] > 0
    assert THINK - CLOCK_SLACK <= phases[Phase.FIRST_REPLY] < THINK + SLACK
    assert 0.2 - CLOCK_SLACK <= phases[Phase.WAIT] < 0.2 + SLACK  # the greeting, then the survey
    parts = phases[Phase.CONNECT] + phases[Phase.FIRST_REPLY] + phases[Phase.WAIT]
    assert parts == pytest.approx(phases[Phase.TOTAL], abs=1e-6)


# --- chats that go wrong --------------------------------------------------------------------------


async def test_no_matching_message_before_the_deadline_is_a_short_timeout(
    aiohttp_server: ServerFactory,
) -> None:
    async def typist(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "greeting"})
        for _ in range(MAX_FRAMES):  # typing... forever, as far as the probe can tell
            if ws.closed:
                break
            await ws.send_json({"type": "typing"})
            await asyncio.sleep(0.04)

    url = await chat_server(aiohttp_server, typist)
    result = await run(chat_step(receive(within="300ms", json=[is_type("bot_reply")])), chat=url)

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message.startswith(
        "no message matching $.type == 'bot_reply' within 300ms (skipped "
    )
    assert ": greeting, typing, typing, typing, typing, …)" in step.message
    assert 0.3 - CLOCK_SLACK <= step.phases[Phase.TOTAL] < 0.3 + SLACK


async def test_a_silent_chat_times_out_saying_nothing_came(aiohttp_server: ServerFactory) -> None:
    async def mute(request: web.Request, ws: web.WebSocketResponse) -> None:
        await messages(ws)

    url = await chat_server(aiohttp_server, mute)
    result = await run(
        chat_step(send(text="hello?"), receive(within="200ms", contains="${run_id}")), chat=url
    )

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message.startswith("no message matching text contains '")
    assert step.message.endswith("…' within 200ms (none came)")
    assert step.phases[Phase.FIRST_REPLY] >= 0.2 - CLOCK_SLACK  # still waiting for the first reply


async def test_the_step_timeout_bounds_a_longer_within(aiohttp_server: ServerFactory) -> None:
    async def mute(request: web.Request, ws: web.WebSocketResponse) -> None:
        await messages(ws)

    url = await chat_server(aiohttp_server, mute)
    result = await run(
        chat_step(send(text="hello?"), receive(within="5s"), timeout="300ms"), chat=url
    )

    step = failed(result)
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the first reply"
    assert 0.3 - CLOCK_SLACK <= step.phases[Phase.TOTAL] < 0.3 + SLACK


async def test_a_server_that_ignores_our_goodbye_does_not_hold_the_step(
    aiohttp_server: ServerFactory,
) -> None:
    """The conversation is over once judged: the close handshake is bounded and untimed, and a
    step cut by its timeout does not wait for a goodbye at all."""

    async def deaf(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "greeting"})
        await asyncio.sleep(3)  # reads nothing, so never answers a close frame

    ws_url = await chat_server(aiohttp_server, deaf, protocols=())
    began = asyncio.get_running_loop().time()
    result = await run(
        chat_step(receive(json=[is_type("greeting")]), name="passes"),
        chat_step(
            send(text="anyone?"), receive(within="5s", contains="bye"), name="cut", timeout="300ms"
        ),
        chat=ws_url,
    )
    elapsed = asyncio.get_running_loop().time() - began

    passes, cut = result.final.steps
    assert passes.ok
    assert passes.phases[Phase.TOTAL] < 0.1  # the unanswered close is not in it
    assert cut.reason is Reason.TIMEOUT
    assert cut.message == "step timeout 300ms reached while waiting for the first reply"
    assert elapsed < CLOSE_WAIT + 0.3 + 0.1  # one bounded goodbye; none after the timeout


async def test_the_server_closing_the_chat_is_connect(aiohttp_server: ServerFactory) -> None:
    async def rude(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "greeting"})
        await ws.send_json({"type": "typing"})
        await ws.close()

    url = await chat_server(aiohttp_server, rude)
    result = await run(chat_step(receive(json=[is_type("bot_reply")])), chat=url)

    step = failed(result)
    assert step.reason is Reason.CONNECT
    assert step.message == "the server closed the chat after 2 messages"


async def test_a_close_with_an_error_code_says_the_code(aiohttp_server: ServerFactory) -> None:
    async def broken(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)

    url = await chat_server(aiohttp_server, broken)
    result = await run(chat_step(receive()), chat=url)

    step = failed(result)
    assert step.reason is Reason.CONNECT
    assert step.message == "the server closed the chat after 0 messages (code 1011)"


async def test_a_refused_upgrade_is_http_status(aiohttp_server: ServerFactory) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="chat is closed")

    base = await serve(aiohttp_server, chat=busy)
    result = await run(chat_step(send(text="hi")), chat=base.replace("http://", "ws://") + "/chat")

    step = failed(result)
    assert step.reason is Reason.HTTP_STATUS
    assert step.status == 503
    assert step.message == "WebSocket upgrade refused: 503"


async def test_a_server_that_agrees_to_no_subprotocol_is_protocol(
    aiohttp_server: ServerFactory,
) -> None:
    async def old_bot(request: web.Request, ws: web.WebSocketResponse) -> None:
        await messages(ws)

    url = await chat_server(aiohttp_server, old_bot, protocols=())
    result = await run(
        chat_step(send(text="hi"), subprotocols=["carechat.v2", "carechat.v1"]), chat=url
    )

    step = failed(result)
    assert step.reason is Reason.PROTOCOL
    assert step.status == 101
    assert step.message == "the server agreed to none of the subprotocols carechat.v2, carechat.v1"


async def test_an_oversized_message_is_protocol(aiohttp_server: ServerFactory) -> None:
    async def flood(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.send_str("x" * 5000)
        await messages(ws)

    url = await chat_server(aiohttp_server, flood)
    result = await run(chat_step(receive()), chat=url, max_body_bytes=1000)

    step = failed(result)
    assert step.reason is Reason.PROTOCOL
    assert step.message == "chat message larger than 1000 bytes"


async def test_a_capture_missing_from_the_reply_is_capture(aiohttp_server: ServerFactory) -> None:
    async def bot(request: web.Request, ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "bot_reply"})
        await messages(ws)

    url = await chat_server(aiohttp_server, bot)
    result = await run(
        chat_step(receive(json=[is_type("bot_reply")], capture={"ticket": {"json": "$.ticket"}})),
        chat=url,
    )

    step = failed(result)
    assert step.reason is Reason.CAPTURE
    assert step.message == "ticket: $.ticket matched nothing"


async def test_nothing_listening_is_connect(aiohttp_server: ServerFactory) -> None:
    result = await run(chat_step(send(text="a"), url="ws://127.0.0.1:9/chat"))

    step = failed(result)
    assert step.reason is Reason.CONNECT
    assert step.message.startswith("cannot connect to 127.0.0.1:9")


# --- the model ------------------------------------------------------------------------------------


def test_a_conversation_line_may_use_what_an_earlier_line_captured() -> None:
    step = WebSocketStep.model_validate(
        {
            "name": "chat",
            "websocket": "ws://care.example/chat",
            "conversation": [
                {"receive": {}, "capture": {"ticket": {"json": "$.ticket"}}},
                {"send": {"text": "status of ${ticket}?"}},
            ],
        }
    )
    require(step, {})  # a finally step like this one runs: the ticket comes from its own line

    needs_token = step.model_copy(update={"headers": {"Authorization": "Bearer ${token}"}})
    with pytest.raises(MissingVariable, match="token"):
        require(needs_token, {})
    require(needs_token, {"token": "t"})


def test_a_websocket_step_wants_a_ws_url_and_one_action_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        one_journey(
            chat_step({**send(text="hi"), **receive()}, url="https://care.example/chat"),
            channel=CHAT,
        )
    problems = {p.path: p.message for p in caught.value.problems}
    assert problems["channels[0].journeys[0].steps[0].websocket"] == (
        "expected a ws:// or wss:// URL; got 'https://care.example/chat'"
    )
    assert problems["channels[0].journeys[0].steps[0].conversation[0]"] == (
        "expected exactly one of send, receive"
    )


# --- what aiohttp raises ----------------------------------------------------------------------


def test_aiohttp_exceptions_read_in_the_order_of_the_table() -> None:
    # aiohttp's classes inherit from several rows at once; the first row that matches wins.
    reset = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    alert = aiohttp.ClientOSError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert (_ssl.c:1)")
    url = "ws://care.example/ chat"

    assert classify(reset, WEBSOCKET_FAILURES, url) == Failure(
        Reason.CONNECT, "connection lost: Cannot write to closing transport"
    )
    assert classify(alert, WEBSOCKET_FAILURES, url) == Failure(
        Reason.TLS, "client certificate required by the server"
    )
    assert classify(aiohttp.InvalidURL(URL("ws://x")), WEBSOCKET_FAILURES, url) == Failure(
        Reason.PROTOCOL, f"invalid URL {url!r}"
    )
    assert classify(KeyError("bug"), WEBSOCKET_FAILURES, url) is None
