"""The ``chat`` channel: a WebSocket chat with Ava, the bot, and a handover to a human agent.

::

    GET /chat/v1/ws   (WebSocket, subprotocol carechat.v1; optional Authorization: Bearer <token>)
      <- {"type": "greeting", "conversation_id": "CV-...", "text": "Hi, I'm Ava, ..."}
      -> {"type": "message", "text": "How much is roaming?"}      (or a plain text frame)
      <- {"type": "typing"}                                        (once or twice)
      <- {"type": "bot_reply", "text": "...", "intent": "roaming", "article_id": "KB-102"}
      -> {"type": "escalate"}                     (or a message asking for an agent or a person)
      <- {"type": "handover", "context_id": "CTX-...", "agent": "Sam", "queue_position": 1}

The handover's context (customer, intent, transcript) is shown to agents at
/agent/v1/handovers/{context_id}. A bad frame gets ``{"type": "error", "error", "detail"}`` and
the chat goes on; a frame over 8 KiB closes it (1009), and so does silence for
``Timings.chat_idle_timeout_s`` (1001, "idle timeout").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http import HTTPStatus
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from democare._appkeys import CONVERSATIONS, FAULTS, STATE, TIMINGS
from democare._chat_bot import GREETING, Intent, answer, classify, wants_human
from democare._conversations import Conversation, Speaker
from democare._http import ApiError, unauthorized
from democare._parse import bearer_token

SUBPROTOCOL: Final = "carechat.v1"
MAX_FRAME_BYTES: Final = 8 * 1024
MAX_PENDING_REPLIES: Final = 8
"""Bot replies being composed at once in one chat; more messages get an error frame."""
IDLE_CLOSE_MESSAGE: Final = b"idle timeout"
SHUTDOWN_CLOSE_MESSAGE: Final = b"server shutting down"
CLOSE_TIMEOUT_S: Final = 1.0
"""How long a closing chat waits for the client's close frame."""
MS_PER_SECOND: Final = 1000
QUEUE_POSITION: Final = 1
"""The demo's one agent always takes the chat next."""

_log = logging.getLogger(__name__)

routes = web.RouteTableDef()


class ChatSockets(set[web.WebSocketResponse]):
    """The chat sockets open now, closed when the server shuts down."""


CHAT_SOCKETS: Final = web.AppKey("chat_sockets", ChatSockets)


@routes.get("/chat/v1/ws")
async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    """Open a chat: greet, answer each message, hand over to an agent on request."""
    customer_id = _linked_customer_id(request)
    socket: web.WebSocketResponse = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), max_msg_size=MAX_FRAME_BYTES, timeout=CLOSE_TIMEOUT_S
    )
    if not socket.can_prepare(request).ok:
        raise ApiError(HTTPStatus.UPGRADE_REQUIRED, "upgrade_required", "open a WebSocket to chat")
    sockets = request.app[CHAT_SOCKETS]
    if len(sockets) >= request.app[STATE].limits.max_open_chats:
        raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "too_many_chats")
    await socket.prepare(request)
    sockets.add(socket)
    conversation = request.app[CONVERSATIONS].start(customer_id=customer_id)
    chat = _Chat(request, socket, conversation)
    try:
        await chat.run()
    finally:
        sockets.discard(socket)
        await chat.stop()
    return socket


async def close_chat_sockets(app: web.Application) -> None:
    """On shutdown: close every open chat, telling the client the server is going away."""
    sockets = app[CHAT_SOCKETS]
    await asyncio.gather(
        *(
            socket.close(code=WSCloseCode.GOING_AWAY, message=SHUTDOWN_CLOSE_MESSAGE)
            for socket in list(sockets)
        )
    )


def _linked_customer_id(request: web.Request) -> str | None:
    token = bearer_token(request)
    if token is None:
        return None
    customer = request.app[STATE].customer_for_token(token)
    if customer is None:
        raise unauthorized()
    return customer.customer_id


class _Chat:
    """One open chat: reads the customer's frames and composes the bot's replies beside them."""

    def __init__(
        self, request: web.Request, socket: web.WebSocketResponse, conversation: Conversation
    ) -> None:
        self._socket = socket
        self._conversation = conversation
        self._path = request.path
        self._conversations = request.app[CONVERSATIONS]
        self._faults = request.app[FAULTS]
        self._timings = request.app[TIMINGS]
        self._replies: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Greet, then handle frames until the customer leaves, goes quiet, or oversends."""
        self._conversations.record(self._conversation, Speaker.BOT, GREETING)
        await self._send(
            {
                "type": "greeting",
                "conversation_id": self._conversation.conversation_id,
                "text": GREETING,
            }
        )
        while not self._socket.closed:
            try:
                frame = await self._socket.receive(timeout=self._timings.chat_idle_timeout_s)
            except TimeoutError:
                await self._socket.close(code=WSCloseCode.GOING_AWAY, message=IDLE_CLOSE_MESSAGE)
                return
            if frame.type is WSMsgType.TEXT:
                await self._on_text(frame.data)
            elif frame.type is WSMsgType.BINARY:
                await self._error("bad_frame", "send text frames: JSON or plain text")
            elif frame.type is WSMsgType.ERROR:
                _log.info("chat %s closed: %s", self._conversation.conversation_id, frame.data)
                return
            else:
                return

    async def stop(self) -> None:
        """Cancel the replies still being composed."""
        for reply in self._replies:
            reply.cancel()
        for reply in list(self._replies):
            with contextlib.suppress(asyncio.CancelledError):
                await reply

    async def _on_text(self, data: str) -> None:
        try:
            parsed: object = json.loads(data)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            await self._on_message(data)
            return
        match parsed.get("type"):
            case "message":
                text = parsed.get("text")
                if not isinstance(text, str) or not text.strip():
                    await self._error("bad_message", "'text' must be a non-empty string")
                    return
                await self._on_message(text)
            case "escalate":
                await self._hand_over()
            case other:
                await self._error(
                    "bad_message", f"'type' must be 'message' or 'escalate', not {other!r}"
                )

    async def _on_message(self, text: str) -> None:
        conversation = self._conversation
        self._conversations.record(conversation, Speaker.CUSTOMER, text)
        intent = classify(text)
        if intent is not Intent.UNKNOWN:
            conversation.intent = intent.value
        if wants_human(text):
            await self._hand_over()
        elif conversation.handover is None:
            if len(self._replies) >= MAX_PENDING_REPLIES:
                await self._error("too_many_messages", "wait for the replies to come")
                return
            delay_ms = self._faults.reply_delay_ms(
                self._path, normal_ms=self._timings.chat_reply_delay_ms
            )
            reply = asyncio.create_task(self._reply(text, delay_ms))
            self._replies.add(reply)
            reply.add_done_callback(self._replies.discard)

    async def _reply(self, text: str, delay_ms: int | None) -> None:
        """Typing frames, then the bot's answer after ``delay_ms`` (never when None)."""
        interval_ms = self._timings.chat_typing_interval_ms
        typed_ms = 0
        await self._send({"type": "typing"})
        if delay_ms is None or delay_ms > interval_ms:
            await asyncio.sleep(interval_ms / MS_PER_SECOND)
            await self._send({"type": "typing"})
            typed_ms = interval_ms
        if delay_ms is None:
            return
        await asyncio.sleep((delay_ms - typed_ms) / MS_PER_SECOND)
        if self._conversation.handover is not None:
            return
        reply = answer(text)
        self._conversations.record(self._conversation, Speaker.BOT, reply.text)
        await self._send(
            {
                "type": "bot_reply",
                "text": reply.text,
                "intent": reply.intent.value,
                "article_id": reply.article_id,
            }
        )

    async def _hand_over(self) -> None:
        for reply in self._replies:
            reply.cancel()
        handover = self._conversations.hand_over(self._conversation)
        await self._send(
            {
                "type": "handover",
                "context_id": handover.context_id,
                "agent": handover.agent,
                "queue_position": QUEUE_POSITION,
            }
        )

    async def _error(self, error: str, detail: str) -> None:
        await self._send({"type": "error", "error": error, "detail": detail})

    async def _send(self, frame: dict[str, object]) -> None:
        if self._socket.closed:
            return
        try:
            await self._socket.send_json(frame)
        except ConnectionError:
            _log.debug("chat %s: client gone", self._conversation.conversation_id)
