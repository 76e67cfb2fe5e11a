"""WebSocket steps (chat) under gevent, on websocket-client: the same conversation as the probes.

``probes.engine.websocket_step`` holds a conversation on aiohttp; this holds it on
websocket-client, whose sockets
gevent makes cooperative. The rules are the same: a ``receive`` skips messages that do not match
(typing indicators, read receipts) until one does or its ``within`` passes; a ``send`` renders
its text or JSON in the run's scope; a receive's ``capture`` goes into the scope.

>>> conversation = Conversation(step, scope, device, max_message_bytes=4 << 20)  # doctest: +SKIP
>>> conversation.hold()     # None, or the Failure                             # doctest: +SKIP
>>> conversation.close(polite=True)                                          # doctest: +SKIP

The engine bounds the whole step with its time budget; ``activity`` says what the step was doing
when the budget ran out.
"""

from __future__ import annotations

import locust  # noqa: F401  (imported for gevent's monkey-patching, before the standard library)

import json
import re
import time
from collections.abc import Mapping
from typing import Final

import websocket

from probes.model import (
    Capture,
    Device,
    Receive,
    Send,
    WebSocketStep,
    format_duration,
    render,
    render_str,
)
from probes.runs import (
    CLOSE_WAIT,
    NOT_JSON,
    SHOWN_SKIPPED,
    SWITCHING_PROTOCOLS,
    Failure,
    Reason,
    Response,
    matches,
    parse,
    render_headers,
    skips,
    summary,
    take,
    wanted_text,
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
            return Failure(Reason.HTTP_STATUS, f"WebSocket upgrade refused: {exc.status_code}")
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
            assert line.receive is not None  # the model holds one of send, receive
            failure = self._receive(ws, line.receive, line.capture)
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
        if send.text is not None:
            ws.send(render_str(send.text, self.scope))
        else:
            ws.send(json.dumps(render(send.json_, self.scope)))
        self.activity = "waiting for the reply"

    def _receive(
        self, ws: websocket.WebSocket, receive: Receive, captures: Mapping[str, Capture]
    ) -> Failure | None:
        scope = self.scope
        contains = render_str(receive.contains, scope) if receive.contains is not None else None
        written = render_str(receive.regex, scope) if receive.regex is not None else None
        try:
            pattern = re.compile(written) if written is not None else None
        except re.error as exc:  # a templated value made it invalid
            return Failure(
                Reason.ASSERTION, f"/{written}/ is not a valid regular expression ({exc})"
            )
        shown: list[str] = []
        skipped = 0
        deadline = time.perf_counter() + receive.within
        while True:
            remaining = deadline - time.perf_counter()
            try:
                if remaining <= 0:
                    raise websocket.WebSocketTimeoutException("within passed")
                ws.settimeout(remaining)
                opcode, frame = ws.recv_data_frame()
            except websocket.WebSocketTimeoutException:
                wanted = wanted_text(receive, contains, written, scope)
                within = format_duration(receive.within)
                return Failure(
                    Reason.TIMEOUT, f"no message {wanted} within {within}{skips(skipped, shown)}"
                )
            except websocket.WebSocketConnectionClosedException:
                return self._closed(None)
            except websocket.WebSocketException as exc:
                return Failure(Reason.PROTOCOL, f"broken chat message: {exc}")
            if opcode not in _DATA:
                return self._closed(bytes(frame.data))
            body = bytes(frame.data) if not isinstance(frame.data, str) else frame.data.encode()
            if len(body) > self.max_message_bytes:
                return Failure(
                    Reason.PROTOCOL, f"chat message larger than {self.max_message_bytes} bytes"
                )
            self.received += 1
            text = body.decode("utf-8", errors="replace")
            document = parse(body) if receive.json_ else NOT_JSON
            if matches(receive, text, document, contains, pattern, scope):
                break
            skipped += 1
            if len(shown) < SHOWN_SKIPPED:
                shown.append(summary(receive, document, text, scope))
        self.activity = "waiting for a message"
        values, failure = take(
            captures, Response(status=SWITCHING_PROTOCOLS, headers={}, body=body, duration=0.0)
        )
        scope.update(values)
        return failure

    def _closed(self, close_frame: bytes | None) -> Failure:
        count = f"{self.received} message{'' if self.received == 1 else 's'}"
        code = int.from_bytes(close_frame[:2], "big") if close_frame else 0
        normal = code in (0, websocket.STATUS_NORMAL)
        return Failure(
            Reason.CONNECT,
            f"the server closed the chat after {count}" + ("" if normal else f" (code {code})"),
        )
