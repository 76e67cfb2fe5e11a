r"""One HTTP/1.1 connection: a request written, its response parsed, on an asyncio Protocol.

The probe's hot path. aiohttp's client builds a session, a connector, tracing contexts and
stream readers around every request; a probe needs one exchange on one connection, timed. This
protocol writes the request bytes and feeds what comes back to llhttp (through httptools), and
wakes the caller twice: when the headers are in (the end of ``wait``) and when the body is.

>>> from probes.runs.limits import DEFAULT_LIMITS
>>> connection = HttpConnection(limits=DEFAULT_LIMITS)
>>> await loop.create_connection(lambda: connection, "127.0.0.1", 8900)  # doctest: +SKIP
>>> request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8900\r\n\r\n"
>>> response = await connection.exchange(request, on_headers=print)     # doctest: +SKIP
200
>>> response.status, response.header("Content-Type")                      # doctest: +SKIP
(200, 'text/html; charset=utf-8')

Everything a target can do wrong ends as a ``probes.errors.WireError`` whose text is the step's
message: a malformed answer, headers or a body past their ``Limits`` (``probes.runs.limits``), a
connection lost. Its reason is in ``probes.net.client.HTTP_FAILURES``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Any, Final, cast

import httptools

from probes.errors import (
    BodyTooLarge,
    BrokenBody,
    ConnectionLost,
    Disconnected,
    MalformedResponse,
    WireError,
)
from probes.net.sockets import os_message
from probes.runs.limits import Limits

try:  # brotli is optional, as for aiohttp: without it, br is neither asked for nor decoded
    import brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - installed with the test extras
    brotli = None

ACCEPT_ENCODING: Final = "gzip, deflate, br" if brotli is not None else "gzip, deflate"
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_SWITCHING_PROTOCOLS: Final = 101
_HEADER_LINE_OVERHEAD: Final = 4  # ": " and CRLF


class RawResponse:
    """What came back: status, headers in order, the decoded body, and the bytes it took."""

    __slots__ = ("body", "headers", "keep_alive", "received", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.keep_alive = False
        self.received = 0  # bytes on the wire: status line, headers and body as sent

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (any case), as a dict of the headers would keep."""
        name = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found


class HttpConnection(asyncio.Protocol):
    """One connection, one exchange at a time (HTTP/1.1 without pipelining)."""

    def __init__(self, *, limits: Limits) -> None:
        self.limit = limits.body_bytes
        self.header_limit = limits.header_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self._parser: Any = None
        self._response = RawResponse()
        self._headers: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._on_headers: Callable[[int], object] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._decoder: Any = None
        self._header_bytes = 0
        self._parsed_header_bytes = 0
        self._name = b""
        self._until_eof = False
        self._head_only = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            self.close()  # bytes nobody asked for: the connection cannot be reused
            return
        self._response.received += len(data)
        if self._headers is not None and not self._headers.done():
            self._header_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish()
        except httptools.HttpParserError as exc:
            self._fail(_parser_failure(exc))
        else:
            if self._header_bytes > self.header_limit and not self._headers_done():
                self._fail(MalformedResponse(f"headers larger than {self.header_limit} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        if self._done is None or self._done.done():
            return
        if self._response.received == 0:
            self._fail(ConnectionLost(exc) if exc is not None else Disconnected())
        elif self._until_eof and self._headers_done() and exc is None:
            self._finish()  # a body delimited by the end of the connection
        elif not self._headers_done():
            self._fail(ConnectionLost(exc) if exc else MalformedResponse("headers cut short"))
        else:
            self._fail(BrokenBody(os_message(exc) if exc else "cut short by the server"))

    # --- the exchange -------------------------------------------------------------------

    async def exchange(
        self, data: bytes, *, head_only: bool = False, on_headers: Callable[[int], object]
    ) -> RawResponse:
        """Write ``data`` (request line, headers and body) and return the whole response.

        ``on_headers`` is called with the status the moment the headers are in.
        ``head_only``: the answer to a HEAD request, which has headers only whatever they say.
        """
        assert self.transport is not None
        if self.closed:
            raise Disconnected()
        loop = asyncio.get_running_loop()
        self._response = RawResponse()
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._done = loop.create_future(), loop.create_future()
        self._on_headers = on_headers
        self._chunks, self._size, self._decoder = [], 0, None
        self._header_bytes, self._until_eof, self._head_only = 0, False, head_only
        self._parsed_header_bytes = 0
        self.transport.write(data)
        try:
            await self._done
            response = self._response
            response.body = b"".join(self._chunks)
            if self._decoder is not None:
                response.body += self._flush_decoder()
        finally:
            self._release()
        return response

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    # --- httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        # Counted as parsed too: a read that ends the headers must not carry them past the limit.
        self._parsed_header_bytes += len(name) + len(value) + _HEADER_LINE_OVERHEAD
        if self._parsed_header_bytes > self.header_limit:
            raise MalformedResponse(f"headers larger than {self.header_limit} bytes")
        self._response.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser, response = self._parser, self._response
        status = parser.get_status_code()
        if 100 <= status < 200 and status != _SWITCHING_PROTOCOLS:
            response.headers = []  # an interim answer (100 Continue): the real one follows
            return
        response.status = status
        response.keep_alive = parser.should_keep_alive()
        if self._headers is not None and not self._headers.done():
            self._headers.set_result(None)
            if self._on_headers is not None:
                self._on_headers(status)
        encoding = (response.header("content-encoding") or "").strip().lower()
        self._decoder = _decoder(encoding)
        if self._head_only or status in _NO_BODY_STATUSES or status == _SWITCHING_PROTOCOLS:
            response.keep_alive = response.keep_alive and status != _SWITCHING_PROTOCOLS
            self._finish()
            return
        chunked = "chunked" in (response.header("transfer-encoding") or "").lower()
        self._until_eof = not chunked and response.header("content-length") is None
        if self._until_eof:
            response.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self._done is None or self._done.done():
            return
        if self._decoder is not None:
            body = self._decode(body)
        self._size += len(body)
        if self._size > self.limit:
            raise BodyTooLarge(self.limit)
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._response.status:  # not the end of an interim answer
            self._finish()

    # --- inside -------------------------------------------------------------------------

    def _headers_done(self) -> bool:
        return self._headers is not None and self._headers.done()

    def _decode(self, data: bytes) -> bytes:
        try:
            # At most one byte past the limit: enough to know it was passed (a zip bomb stops).
            return bytes(self._decoder.decompress(data, self.limit - self._size + 1))
        except Exception as exc:  # zlib.error, brotli.error: a body that does not decode
            raise BrokenBody(f"cannot decode it: {exc}") from exc

    def _flush_decoder(self) -> bytes:
        flush = getattr(self._decoder, "flush", None)
        try:
            rest = bytes(flush()) if flush is not None else b""
        except Exception as exc:
            raise BrokenBody(f"cannot decode it: {exc}") from exc
        if self._size + len(rest) > self.limit:
            raise BodyTooLarge(self.limit)
        return rest

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            if self._headers is not None and not self._headers.done():
                self._headers.set_result(None)
            self._done.set_result(None)

    def _release(self) -> None:
        """Forget the exchange that ended: its parser, futures, callback and response.

        Each would otherwise close a reference cycle: the parser calls back into this
        connection, the caller's ``on_headers`` holds the client that holds it, and a failure's
        traceback holds the ``exchange`` frame, which holds this connection, whose future holds
        the failure. A cycle waits for a full collection, and with it the response (10,000
        headers of a hostile target: about 0.45 MB a run).
        """
        self._parser = None
        self._headers = self._done = None
        self._on_headers = None
        self._response = RawResponse()
        self._chunks, self._decoder = [], None

    def _fail(self, exc: WireError) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self.close()


def _decoder(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    if encoding == "br" and brotli is not None:
        return _Brotli()
    return None  # identity, or a coding we did not ask for: the body stays as it came


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or (often) raw."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            raw = bool(data) and (data[0] & 0x0F) != zlib.DEFLATED
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out: bytes = self._inner.decompress(data, max_length)
        return out

    def flush(self) -> bytes:
        return b"" if self._inner is None else bytes(self._inner.flush())


class _Brotli:
    def __init__(self) -> None:
        assert brotli is not None
        self._inner = brotli.Decompressor()

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out: bytes = self._inner.process(data, output_buffer_limit=max_length)
        return out


def _parser_failure(exc: httptools.HttpParserError) -> WireError:
    """What the parser's error means: a callback's own error (which reaches the caller wrapped
    in HttpParserCallbackError), else a malformed response.

    A function of its own: a local holding the callback's error in ``data_received`` would
    close a cycle through the frame that the error's traceback holds.
    """
    cause = exc.__context__
    return cause if isinstance(cause, WireError) else _malformed(exc)


def _malformed(exc: Exception) -> MalformedResponse:
    return MalformedResponse(str(exc) or type(exc).__name__)
