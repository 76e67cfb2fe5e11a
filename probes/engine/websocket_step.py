"""WebSocket steps (chat) on aiohttp: connect, hold a conversation, time the first reply.

A real chat sends typing indicators, greetings and read receipts around the answer a customer
waits for, so a ``receive`` skips messages that do not match until one does or its ``within``
passes. What a conversation means is ``probes.runs.chat``, shared with the Locust engine; this
module only moves its messages. The phases are ``connect`` (the handshake), ``first_reply`` (the
first ``send`` to the first matching message after it) and ``wait`` (the rest of the
conversation).

What aiohttp raises, the engine reads with ``WEBSOCKET_FAILURES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Final

import aiohttp

from probes.engine.runner import StepContext
from probes.errors import TlsSetupError
from probes.model.steps import Exchange, Send, WebSocketStep
from probes.model.templating import render_str
from probes.net.connector import watching_tls
from probes.net.tls import describe_tls_error, ssl_reason
from probes.runs.chat import (
    CLOSE_WAIT,
    SWITCHING_PROTOCOLS,
    Receiving,
    broken,
    closed,
    refused,
    say,
    too_large,
)
from probes.runs.reasons import Caught
from probes.runs.results import Failure, Phase, Reason
from probes.runs.scope import render_headers

PHASES: Final = (Phase.CONNECT, Phase.FIRST_REPLY, Phase.WAIT)
_DATA: Final = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


def _os_message(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None) or exc
    return getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__


def _tls_alert(exc: BaseException) -> bool:
    """An OpenSSL reason in the text: a TLS alert after the handshake, which aiohttp reports as
    a plain ClientOSError."""
    return ssl_reason(exc) is not None


#: What aiohttp (and the socket under it) raises under a WebSocket step, by the step's URL. The
#: first row that matches wins: aiohttp's classes inherit from several of these at once.
WEBSOCKET_FAILURES: Final[tuple[Caught[str], ...]] = (
    Caught(TlsSetupError, Reason.TLS),  # the step's own TLS files
    Caught(
        aiohttp.ClientConnectorDNSError,
        Reason.DNS,
        lambda exc, url: f"cannot resolve {exc.host}: {_os_message(exc)}",
    ),
    Caught(
        aiohttp.ClientConnectorCertificateError,
        Reason.TLS,
        lambda exc, url: describe_tls_error(exc.certificate_error, host=exc.host),
    ),
    Caught(
        aiohttp.ClientConnectorSSLError,
        Reason.TLS,
        lambda exc, url: describe_tls_error(exc.os_error, host=exc.host),
    ),
    Caught(
        (aiohttp.ClientSSLError, ssl.SSLError), Reason.TLS, lambda exc, url: describe_tls_error(exc)
    ),
    Caught(
        aiohttp.ClientOSError,
        Reason.TLS,
        lambda exc, url: describe_tls_error(exc),
        when=_tls_alert,
    ),
    Caught(
        aiohttp.ClientConnectorError,
        Reason.CONNECT,
        lambda exc, url: f"cannot connect to {exc.host}:{exc.port}: {_os_message(exc)}",
    ),
    Caught(
        aiohttp.ServerDisconnectedError,
        Reason.CONNECT,
        lambda exc, url: "the server closed the connection without answering",
    ),
    Caught(
        (aiohttp.ClientOSError, ConnectionError),
        Reason.CONNECT,
        lambda exc, url: f"connection lost: {_os_message(exc)}",
    ),
    Caught(aiohttp.InvalidURL, Reason.PROTOCOL, lambda exc, url: f"invalid URL {url!r}"),
    Caught(
        aiohttp.ClientPayloadError, Reason.PROTOCOL, lambda exc, url: f"broken response body: {exc}"
    ),
    Caught(
        aiohttp.ClientResponseError,
        Reason.PROTOCOL,
        lambda exc, url: f"malformed response: {exc.message}",
    ),
    Caught(aiohttp.ClientError, Reason.PROTOCOL, lambda exc, url: str(exc) or type(exc).__name__),
)


async def run_websocket(step: WebSocketStep, ctx: StepContext) -> Failure | None:
    """Open ``step``'s WebSocket, hold its conversation line by line, then close it."""
    ctx.timer.spent = dict.fromkeys(PHASES, 0.0)
    ctx.timer.enter(Phase.CONNECT)
    url = render_str(step.websocket, ctx.scope)
    ctx.target = url
    # The TLS handshake stays inside ``connect`` here; the certificate's expiry is still read.
    with watching_tls() as tls:
        try:
            ws = await ctx.client.session.ws_connect(
                url,
                headers=render_headers(step.headers, ctx.scope, ctx.journey.device),
                protocols=step.subprotocols,
                ssl=ctx.tls.context(step.tls) if step.tls is not None else True,
                server_hostname=step.tls.server_name if step.tls is not None else None,
                max_msg_size=ctx.limits.body_bytes,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=None),  # see _close
            )
        except aiohttp.WSServerHandshakeError as exc:
            ctx.status = exc.status
            if exc.status != SWITCHING_PROTOCOLS:
                return refused(exc.status)
            return Failure(Reason.PROTOCOL, f"WebSocket handshake failed: {exc.message}")
        finally:
            ctx.cert_expiry = tls.cert_expiry
    ctx.status = SWITCHING_PROTOCOLS
    ctx.timer.enter(Phase.WAIT)
    try:
        if step.subprotocols and ws.protocol is None:
            offered = ", ".join(step.subprotocols)
            failure: Failure | None = Failure(
                Reason.PROTOCOL, f"the server agreed to none of the subprotocols {offered}"
            )
        else:
            failure = await _Conversation(ws, ctx).hold(step)
    except BaseException:  # the step's time is up, or the chat broke: do not wait for a goodbye
        await _close(ws, wait=0)
        raise
    ctx.timer.enter(None)  # the conversation is judged; closing it is not the customer's time
    await _close(ws, wait=CLOSE_WAIT if failure is None else 0)
    return failure


async def _close(ws: aiohttp.ClientWebSocketResponse, *, wait: float) -> None:
    """Send a close frame and wait at most ``wait`` for the server's; then drop the connection."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            await ws.close()


class _Conversation:
    """One conversation on one socket: messages read so far, and whether the first reply came."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, ctx: StepContext) -> None:
        self.ws = ws
        self.ctx = ctx
        self.received = 0
        self.first_reply: bool | None = None  # None until the first send, then True once seen

    async def hold(self, step: WebSocketStep) -> Failure | None:
        for line in step.conversation:
            if line.send is not None:
                await self._send(line.send)
                continue
            failure = await self._receive(line)
            if failure is not None:
                return failure
        return None

    async def _send(self, send: Send) -> None:
        if self.first_reply is None:
            self.ctx.timer.enter(Phase.FIRST_REPLY)
            self.first_reply = False
        await self.ws.send_str(say(send, self.ctx.scope))

    async def _receive(self, line: Exchange) -> Failure | None:
        assert line.receive is not None  # the model holds one of send, receive
        receiving = Receiving(line.receive, line.capture, self.ctx.scope)
        if receiving.failure is not None:
            return receiving.failure
        deadline = asyncio.get_running_loop().time() + line.receive.within
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await self.ws.receive()
            except TimeoutError:
                return receiving.timed_out()
            if message.type not in _DATA:
                return self._ended(message)
            self.received += 1
            data = message.data
            if receiving.offer(data.encode() if isinstance(data, str) else bytes(data)):
                break
        if self.first_reply is False:
            self.ctx.timer.enter(Phase.WAIT)
            self.first_reply = True
        return receiving.take()

    def _ended(self, message: aiohttp.WSMessage) -> Failure:
        """The failure for a message that ends the conversation: a close, or a broken frame."""
        if message.type is aiohttp.WSMsgType.ERROR:
            error = message.data
            too_big = aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            if isinstance(error, aiohttp.WebSocketError) and error.code == too_big:
                return too_large(self.ctx.limits.body_bytes)
            return broken(error)
        return closed(self.received, self.ws.close_code)
