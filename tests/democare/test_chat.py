"""Chat: a real aiohttp WebSocket client against democare on loopback.

Greeting, typing frames and bot replies; escalation to an agent whose console shows the
context; bad frames, bounds and faults.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from democare._app import build_app
from democare._state import DEFAULT_LIMITS
from democare._timings import DEFAULT_TIMINGS
from tests._support.timing import CLOCK_SLACK

if TYPE_CHECKING:
    from conftest import Client, MakeCare

WS_PATH: Final = "/chat/v1/ws"
SUBPROTOCOL: Final = "carechat.v1"
GREETING: Final = "Hi, I'm Ava, your care assistant. How can I help?"
AGENT_HEADERS: Final = {"X-Agent-Key": "demo-agent-key"}
CONVERSATION_ID: Final = re.compile(r"CV-[0-9a-f]{16}")
CONTEXT_ID: Final = re.compile(r"CTX-[0-9a-f]{16}")
FRAME_TIMEOUT_S: Final = 3.0
QUIET_S: Final = 0.6
LATE_MS: Final = 800

Socket = aiohttp.ClientWebSocketResponse


async def json_of(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def frame(socket: Socket) -> Any:
    return await socket.receive_json(timeout=FRAME_TIMEOUT_S)


async def open_chat(client: Client, **options: Any) -> tuple[Socket, str]:
    """A chat socket past its greeting, and the conversation id."""
    socket = await client.ws_connect(WS_PATH, protocols=(SUBPROTOCOL,), **options)
    greeting = await frame(socket)
    assert greeting["type"] == "greeting"
    return socket, greeting["conversation_id"]


async def reply_to(socket: Socket, text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send ``text``; the typing frames before the bot's reply, and the reply."""
    await socket.send_json({"type": "message", "text": text})
    typing = []
    while (received := await frame(socket))["type"] == "typing":
        typing.append(received)
    return typing, received


async def login(client: Client) -> tuple[str, str]:
    credentials = {"username": "demo@carewatch.example", "password": "demo-password"}
    body = await json_of(await client.post("/app/v1/login", json=credentials), 200)
    return body["token"], body["customer_id"]


@pytest.fixture
async def care(make_care: MakeCare) -> Client:
    return await make_care()


async def test_the_bot_greets_types_then_answers_with_an_intent_and_article(
    care: Client,
) -> None:
    socket = await care.ws_connect(WS_PATH, protocols=(SUBPROTOCOL,))
    assert socket.protocol == SUBPROTOCOL
    greeting = await frame(socket)
    assert set(greeting) == {"type", "conversation_id", "text"}
    assert CONVERSATION_ID.fullmatch(greeting["conversation_id"])
    assert greeting["text"] == GREETING

    loop = asyncio.get_running_loop()
    await socket.send_json({"type": "message", "text": "How much is roaming outside the EU?"})
    arrivals = []
    while (received := await frame(socket))["type"] == "typing":
        assert received == {"type": "typing"}
        arrivals.append(loop.time())
    assert len(arrivals) in {1, 2}
    if len(arrivals) == 2:
        assert 0.05 - CLOCK_SLACK <= arrivals[1] - arrivals[0] <= 0.15
    assert received == {
        "type": "bot_reply",
        "text": received["text"],
        "intent": "roaming",
        "article_id": "KB-102",
    }
    assert "/help/v1/articles/KB-102" in received["text"]
    await socket.close()


@pytest.mark.parametrize(
    ("text", "intent", "article_id"),
    [
        ("why is my bill so high", "billing", "KB-103"),
        ("how do I pay by direct debit", "billing", "KB-104"),
        ("my phone was stolen", "lost_phone", "KB-107"),
        ("activate an esim", "esim", "KB-105"),
        ("roaming in the EU", "roaming", "KB-101"),
        ("what's the weather like", "unknown", None),
    ],
)
async def test_the_bot_recognises_each_intent(
    care: Client, text: str, intent: str, article_id: str | None
) -> None:
    socket, _ = await open_chat(care)
    _, reply = await reply_to(socket, text)
    assert (reply["intent"], reply["article_id"]) == (intent, article_id)
    await socket.close()


async def test_a_plain_text_frame_is_a_message(care: Client) -> None:
    socket, _ = await open_chat(care)
    await socket.send_str("I lost my phone")
    while (received := await frame(socket))["type"] == "typing":
        pass
    assert received["intent"] == "lost_phone"
    await socket.close()


async def test_asking_for_a_human_hands_over_with_the_context_visible_to_agents(
    care: Client,
) -> None:
    token, customer_id = await login(care)
    socket, conversation_id = await open_chat(care, headers={"Authorization": f"Bearer {token}"})
    _, reply = await reply_to(socket, "There is a charge on my bill I don't know")
    await socket.send_json({"type": "message", "text": "Can I talk to a human please?"})
    handover = await frame(socket)
    assert set(handover) == {"type", "context_id", "agent", "queue_position"}
    assert CONTEXT_ID.fullmatch(handover["context_id"])
    assert (handover["type"], handover["agent"], handover["queue_position"]) == (
        "handover",
        "Sam",
        1,
    )
    await socket.send_json({"type": "escalate"})
    assert (await frame(socket)) == handover
    await socket.close()

    path = f"/agent/v1/handovers/{handover['context_id']}"
    context = await json_of(await care.get(path, headers=AGENT_HEADERS), 200)
    assert context["context_id"] == handover["context_id"]
    assert context["conversation_id"] == conversation_id
    assert context["customer_id"] == customer_id
    assert context["intent"] == "billing"
    assert context["agent"] == "Sam"
    assert [(line["from"], line["text"]) for line in context["transcript"]] == [
        ("bot", GREETING),
        ("customer", "There is a charge on my bill I don't know"),
        ("bot", reply["text"]),
        ("customer", "Can I talk to a human please?"),
    ]
    assert (context["callbacks"], context["video_sessions"]) == ([], [])

    console = await json_of(
        await care.get(f"/agent/v1/customers/{customer_id}/context", headers=AGENT_HEADERS), 200
    )
    assert console["recent"][0] == {
        "type": "chat",
        "id": handover["context_id"],
        "intent": "billing",
        "status": "waiting_for_agent",
        "channel": "chat",
        "at": context["created_at"],
    }
    assert (await care.get(path)).status == 401
    assert (await care.get("/agent/v1/handovers/CTX-0", headers=AGENT_HEADERS)).status == 404


async def test_an_anonymous_escalation_has_no_customer(care: Client) -> None:
    socket, _ = await open_chat(care)
    await socket.send_json({"type": "escalate"})
    handover = await frame(socket)
    await socket.close()
    context = await json_of(
        await care.get(f"/agent/v1/handovers/{handover['context_id']}", headers=AGENT_HEADERS),
        200,
    )
    assert (context["customer_id"], context["intent"]) == (None, "unknown")
    assert [line["from"] for line in context["transcript"]] == ["bot"]


@pytest.mark.parametrize(
    ("send", "error"),
    [
        ({"type": "dance"}, "'type' must be 'message' or 'escalate'"),
        ({"type": "message"}, "'text' must be a non-empty string"),
        ({"type": "message", "text": "   "}, "'text' must be a non-empty string"),
        (b"\x00\x01", "send text frames"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_chat_goes_on(
    care: Client, send: dict[str, str] | bytes, error: str
) -> None:
    socket, _ = await open_chat(care)
    if isinstance(send, bytes):
        await socket.send_bytes(send)
    else:
        await socket.send_json(send)
    answer = await frame(socket)
    assert answer["type"] == "error"
    assert error in answer["detail"]
    _, reply = await reply_to(socket, "esim")
    assert reply["intent"] == "esim"
    await socket.close()


async def test_a_frame_over_8_kib_closes_the_chat(care: Client) -> None:
    socket, _ = await open_chat(care)
    await socket.send_str("x" * (8 * 1024 + 1))
    closing = await socket.receive(timeout=FRAME_TIMEOUT_S)
    assert closing.type is WSMsgType.CLOSE
    assert socket.close_code == WSCloseCode.MESSAGE_TOO_BIG


async def test_an_idle_chat_is_closed(make_care: MakeCare) -> None:
    client = await make_care(timings=replace(DEFAULT_TIMINGS, chat_idle_timeout_s=0.3))
    socket, _ = await open_chat(client)
    loop = asyncio.get_running_loop()
    started = loop.time()
    closing = await socket.receive(timeout=FRAME_TIMEOUT_S)
    assert closing.type is WSMsgType.CLOSE
    assert (socket.close_code, closing.extra) == (WSCloseCode.GOING_AWAY, "idle timeout")
    assert loop.time() - started >= 0.3 - CLOCK_SLACK


async def test_open_chats_are_bounded(make_care: MakeCare) -> None:
    client = await make_care(limits=replace(DEFAULT_LIMITS, max_open_chats=2))
    sockets = [(await open_chat(client))[0] for _ in range(2)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(WS_PATH)
    assert refused.value.status == 503
    await sockets[0].close()
    await asyncio.sleep(0.05)
    socket, _ = await open_chat(client)
    for open_socket in (socket, sockets[1]):
        await open_socket.close()


async def test_transcripts_and_handovers_forget_their_oldest_first(make_care: MakeCare) -> None:
    limits = replace(DEFAULT_LIMITS, max_transcript=3, max_handovers=1)
    client = await make_care(limits=limits)
    context_ids = []
    for _ in range(2):
        socket, _ = await open_chat(client)
        await reply_to(socket, "roaming")
        await socket.send_str("an agent please")
        context_ids.append((await frame(socket))["context_id"])
        await socket.close()
    first, second = (f"/agent/v1/handovers/{context_id}" for context_id in context_ids)
    assert (await client.get(first, headers=AGENT_HEADERS)).status == 404
    context = await json_of(await client.get(second, headers=AGENT_HEADERS), 200)
    assert [line["from"] for line in context["transcript"]] == ["customer", "bot", "customer"]
    assert context["transcript"][-1]["text"] == "an agent please"


async def test_the_chat_needs_an_upgrade_and_a_valid_token_if_any(care: Client) -> None:
    response = await care.get(WS_PATH)
    assert (await json_of(response, 426))["error"] == "upgrade_required"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await care.ws_connect(WS_PATH, headers={"Authorization": "Bearer forged"})
    assert refused.value.status == 401
    socket = await care.ws_connect(WS_PATH)
    assert socket.protocol is None
    assert (await frame(socket))["type"] == "greeting"
    await socket.close()


async def test_server_shutdown_closes_open_chats(aiohttp_server: Any) -> None:
    server = await aiohttp_server(build_app())
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(server.make_url(WS_PATH))
        assert (await frame(socket))["type"] == "greeting"
        stopping = asyncio.create_task(server.close())
        closing = await socket.receive(timeout=FRAME_TIMEOUT_S)
        await stopping
    assert closing.type is WSMsgType.CLOSE
    assert (socket.close_code, closing.extra) == (WSCloseCode.GOING_AWAY, "server shutting down")


# --- faults -------------------------------------------------------------------------------------


async def set_fault(client: Client, **spec: object) -> None:
    await json_of(await client.post("/_faults", json={"channel": "chat", **spec}), 200)


async def test_down_drops_the_upgrade(care: Client) -> None:
    await set_fault(care, mode="down")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await care.ws_connect(WS_PATH)


async def test_error_answers_the_upgrade_with_the_status(care: Client) -> None:
    await set_fault(care, mode="error", status=502)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await care.ws_connect(WS_PATH)
    assert refused.value.status == 502


async def test_slow_delays_the_upgrade(care: Client) -> None:
    await set_fault(care, mode="slow", delay_ms=300)
    loop = asyncio.get_running_loop()
    started = loop.time()
    socket, _ = await open_chat(care)
    assert loop.time() - started >= 0.3 - CLOCK_SLACK
    await socket.close()


async def test_no_reply_types_but_never_answers(care: Client) -> None:
    await set_fault(care, mode="no_reply")
    socket, _ = await open_chat(care)
    await socket.send_json({"type": "message", "text": "roaming"})
    assert await frame(socket) == {"type": "typing"}
    assert await frame(socket) == {"type": "typing"}
    with pytest.raises(TimeoutError):
        await socket.receive(timeout=QUIET_S)
    # The customer can still reach a human.
    await socket.send_json({"type": "escalate"})
    assert (await frame(socket))["type"] == "handover"
    await socket.close()


async def test_late_reply_answers_after_the_delay(care: Client) -> None:
    await set_fault(care, mode="late_reply", delay_ms=LATE_MS)
    socket, _ = await open_chat(care)
    loop = asyncio.get_running_loop()
    started = loop.time()
    typing, reply = await reply_to(socket, "roaming")
    assert len(typing) == 2
    assert reply["type"] == "bot_reply"
    assert loop.time() - started >= LATE_MS / 1000 - CLOCK_SLACK
    await socket.close()
