"""TCP steps: connect (over TLS if asked), send a text, read until the expected text comes.

The step reads what the peer sends until ``expect`` holds, the peer closes the connection (the
text is then checked once more), or the step's time runs out. Phases: ``dns``, ``connect``,
``tls`` (when TLS), ``wait`` (text sent -> first byte back) and ``receive`` (first byte -> the
expected text).

A connection that cannot be made, a dropped one, a TLS alert and the step's own TLS files are
read by the engine with ``probes.net.sockets.SOCKET_FAILURES``.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from probes.engine.runner import StepContext
from probes.errors import TlsFailed
from probes.model.addresses import join_address, split_address
from probes.model.steps import TcpStep
from probes.model.templating import render_str
from probes.net.sockets import cert_expiry, open_stream
from probes.net.timing import Timer
from probes.runs.expect import Response, take
from probes.runs.results import Failure, Phase, Reason

_READ_CHUNK: Final = 64 * 1024
#: How much of what was received a failure message shows.
SHOWN_CHARS: Final = 120
_PHASES: Final = (Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.RECEIVE)
_TLS_PHASES: Final = (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT, Phase.RECEIVE)


async def run_tcp(step: TcpStep, ctx: StepContext) -> Failure | None:
    """Exchange ``step``'s text with its address and check what comes back."""
    spec = step.tcp
    ctx.timer = Timer(_PHASES if spec.tls is None else _TLS_PHASES, first=Phase.DNS)
    address = render_str(spec.address, ctx.scope)
    try:
        host, port = split_address(address)
    except ValueError as exc:
        return Failure(Reason.PROTOCOL, f"invalid address: {exc}")
    ctx.target = f"{'tls' if spec.tls else 'tcp'}://{join_address(host, port)}"
    payload = render_str(spec.send, ctx.scope).encode() if spec.send is not None else b""
    expect = spec.expect
    contains = _rendered(expect.contains if expect else None, ctx)
    pattern = _rendered(expect.regex if expect else None, ctx)
    context = ctx.tls.context(spec.tls) if spec.tls is not None else None
    try:
        reader, writer = await open_stream(
            host,
            port,
            ctx.timer,
            tls=context,
            server_name=spec.tls.server_name if spec.tls else None,
        )
    except TlsFailed as exc:
        ctx.cert_expiry = exc.cert_expiry
        raise
    received = _Received()
    closed = False
    try:
        ctx.cert_expiry = cert_expiry(writer.transport)
        ctx.timer.enter(Phase.WAIT)
        meter = ctx.timer.traffic
        if payload:
            writer.write(payload)
            meter.bytes_sent += len(payload)
            await writer.drain()
        if spec.expect is None:
            return None  # connected, and the text (if any) sent: that was the check
        meter.requests += 1
        while not _holds(received.text, contains, pattern):
            chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                closed = True
                break
            if not received.size:
                ctx.timer.enter(Phase.RECEIVE)
            received.add(chunk)
            meter.bytes_received += len(chunk)
            if received.size > ctx.limits.body_bytes:
                return Failure(
                    Reason.PROTOCOL,
                    f"received more than {ctx.limits.body_bytes} bytes without the expected text",
                )
    finally:
        writer.close()
    text = received.text
    problem = _problem(text, contains, pattern)
    if problem is not None:
        if closed and not text:
            return Failure(Reason.CONNECT, "the server closed the connection without answering")
        closing = "the server closed the connection; " if closed else ""
        return Failure(Reason.ASSERTION, f"{closing}{problem}, received {_head(text)}")
    response = Response(
        status=0, headers={}, body=received.body, duration=ctx.timer.phases()[Phase.TOTAL]
    )
    values, failure = take(step.capture, response)
    ctx.scope.update(values)
    return failure


def _rendered(text: str | None, ctx: StepContext) -> str | None:
    return render_str(text, ctx.scope) if text is not None else None


class _Received:
    """Bytes read so far, and their text (UTF-8, bad bytes replaced), decoded once each."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text: list[str] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._text.append(self._decoder.decode(chunk))
        self.size += len(chunk)

    @property
    def text(self) -> str:
        if len(self._text) > 1:
            self._text = ["".join(self._text)]
        return self._text[0] if self._text else ""

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)


def _holds(text: str, contains: str | None, pattern: str | None) -> bool:
    if contains is not None and contains not in text:
        return False
    if pattern is not None:
        try:
            return re.search(pattern, text) is not None
        except re.error:
            return True  # stop reading: the check after the loop reports the pattern
    return True


def _problem(text: str, contains: str | None, pattern: str | None) -> str | None:
    if contains is not None and contains not in text:
        return f"expected to contain {contains!r}"
    if pattern is not None:
        try:
            matched = re.search(pattern, text)
        except re.error as exc:  # a templated value made it invalid
            return f"/{pattern}/ is not a valid regular expression ({exc})"
        if not matched:
            return f"expected to match /{pattern}/"
    return None


def _head(text: str) -> str:
    shown = text[:SHOWN_CHARS]
    return repr(shown) + ("..." if len(text) > SHOWN_CHARS else "")
