"""WebSocket steps (chat) under gevent, on websocket-client: the same conversation as the probes.

``probes.engine.websocket_step`` holds a conversation on aiohttp; this holds it on
websocket-client, whose sockets gevent makes cooperative. Both only move the messages: what a
conversation means (a ``receive`` skips messages that do not match, such as typing indicators,
until one does or its ``within`` passes; a ``send`` renders its text or JSON in the run's scope;
a receive's ``capture`` goes into the scope) is ``probes.runs.chat``, shared by the two.

>>> conversation = Conversation(step, scope, device, max_message_bytes=4 << 20)  # doctest: +SKIP
>>> conversation.hold()     # None, or the Failure                             # doctest: +SKIP
>>> conversation.close(polite=True)                                          # doctest: +SKIP

The engine bounds the whole step with its time budget; ``activity`` says what the step was doing
when the budget ran out.
"""

from __future__ import annotations

import locust  # noqa: F401  (imported for gevent's monkey-patching, before the standard library)

import time
from typing import Final

import websocket

from probes.model import Device, Exchange, Send, WebSocketStep, render_str
from probes.runs import (
    CLOSE_WAIT,
    SWITCHING_PROTOCOLS,
    Failure,
    Reason,
    Receiving,
    broken,
    closed,
    refused,
    render_headers,
    say,
    too_large,
)

#: The request type of a chat conversation's entry in Locust's statistics.
WS_REQUEST_TYPE: Final = "WS"
_DATA: Final = (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY)


class Conversation:
    """One chat conversation over one WebSocket: connect, hold it line by line, close."""

    def __init__(
        self,
        step: WebSocketStep,
        scope: dict[str, object],
        device: Device | None,
        *,
        max_message_bytes: int,
    ) -> None:
        self.step = step
        self.scope = scope
        self.device = device
        self.max_message_bytes = max_message_bytes
        self.activity = "connecting"
        self.status: int | None = None
        self.received = 0
        self.url = ""
        self._ws: websocket.WebSocket | None = None

    def hold(self) -> Failure | None:
        """Connect and hold the conversation; the first failure, or None when it all matched."""
        step = self.step
        url = self.url = render_str(step.websocket, self.scope)
        ws = websocket.WebSocket(enable_multithread=False)
        self._ws = ws
        try:
            ws.connect(  # type: ignore[no-untyped-call]  # websocket-client: untyped
                url,
                header=render_headers(step.headers, self.scope, self.device),
                subprotocols=list(step.subprotocols) or None,
                suppress_origin=True,  # as aiohttp: a mobile app sends no Origin
            )
        except websocket.WebSocketBadStatusException as exc:
            self.status = exc.status_code
            return refused(exc.status_code)
        except websocket.WebSocketException as exc:
            offered = ", ".join(step.subprotocols)
            hint = f" (offered subprotocols: {offered})" if offered else ""
            return Failure(Reason.PROTOCOL, f"WebSocket handshake failed: {exc}{hint}")
        except ConnectionRefusedError as exc:
            return Failure(Reason.CONNECT, f"cannot connect to {url}: {exc.strerror or exc}")
        self.status = SWITCHING_PROTOCOLS
        self.activity = "waiting for a message"
        for line in step.conversation:
            if line.send is not None:
                self._send(ws, line.send)
                continue
            failure = self._receive(ws, line)
            if failure is not None:
                return failure
        return None

    def close(self, *, polite: bool) -> None:
        """Close the connection: after a passed conversation, wait briefly for the server's
        close frame; after a failure, just drop it."""
        if self._ws is None:
            return
        if polite and self._ws.connected:
            self._ws.close(timeout=CLOSE_WAIT)
        else:
            self._ws.shutdown()  # type: ignore[no-untyped-call]  # websocket-client: untyped

    def _send(self, ws: websocket.WebSocket, send: Send) -> None:
        ws.send(say(send, self.scope))
        self.activity = "waiting for the reply"

    def _receive(self, ws: websocket.WebSocket, line: Exchange) -> Failure | None:
        assert line.receive is not None  # the model holds one of send, receive
        receiving = Receiving(line.receive, line.capture, self.scope)
        if receiving.failure is not None:
            return receiving.failure
        deadline = time.perf_counter() + line.receive.within
        while True:
            remaining = deadline - time.perf_counter()
            try:
                if remaining <= 0:
                    raise websocket.WebSocketTimeoutException("within passed")
                ws.settimeout(remaining)
                opcode, frame = ws.recv_data_frame()
            except websocket.WebSocketTimeoutException:
                return receiving.timed_out()
            except websocket.WebSocketConnectionClosedException:
                return closed(self.received, None)
            except websocket.WebSocketException as exc:
                return broken(exc)
            if opcode not in _DATA:
                return closed(self.received, _close_code(bytes(frame.data)))
            body = bytes(frame.data) if not isinstance(frame.data, str) else frame.data.encode()
            if len(body) > self.max_message_bytes:
                return too_large(self.max_message_bytes)
            self.received += 1
            if receiving.offer(body):
                break
        self.activity = "waiting for a message"
        return receiving.take()


def _close_code(close_frame: bytes) -> int | None:
    """The status code a close frame carries in its first two bytes; None when it has none."""
    return int.from_bytes(close_frame[:2], "big") or None
