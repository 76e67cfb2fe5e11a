"""The HTTP client of one attempt: its connections, its cookies, and the time of every phase.

A customer opening the app starts from nothing: every attempt gets a new ``Client``, so its
first request resolves the name, connects and negotiates TLS, each a phase of its own; the
steps after it reuse the connection (keep-alive) and the cookies, as an app would.

>>> request = Request("GET", "https://care.example/", headers={}, params=[])
>>> client = Client(limits=DEFAULT_LIMITS)                         # doctest: +SKIP
>>> answer = await client.request(request, timer=Timer())        # doctest: +SKIP
>>> answer.status, answer.headers["content-type"]                 # doctest: +SKIP
(200, 'text/html')
>>> await client.close()                                          # doctest: +SKIP

Redirects are followed, up to ``Limits.redirects``, as browsers and aiohttp follow them (303,
and 301/302 after a POST,
become a GET without a body; ``Authorization`` is not carried to another origin). WebSocket
steps run on aiohttp, and share this client's cookie jar through ``session``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import aiohappyeyeballs
import aiohttp
from yarl import URL

from probes.errors import (
    ClientError,
    ConnectFailed,
    ConnectionLost,
    Disconnected,
    DnsFailed,
    InvalidUrl,
    TlsFailed,
    TlsSetupError,
    WireError,
)
from probes.model.addresses import join_address
from probes.net.connector import TlsConnector
from probes.net.sockets import count_tls, os_message, tls_failure
from probes.net.timing import Timer
from probes.net.tls import describe_tls_error, peer_expiry, ssl_reason
from probes.net.wire import ACCEPT_ENCODING, HttpConnection, RawResponse
from probes.runs.limits import DEFAULT_LIMITS, Limits
from probes.runs.reasons import Caught
from probes.runs.results import Phase, Reason
from probes.runs.scope import Request

#: As aiohttp and browsers stagger IPv6 and IPv4 attempts (RFC 8305).
HAPPY_EYEBALLS_DELAY: Final = 0.25
USER_AGENT: Final = "carewatch (synthetic customer-care probe)"
TLS_1_3: Final = "TLSv1.3"  # as ssl.SSLObject.version() says it
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
#: A step's own credentials stay with the origin they were written for (as aiohttp, browsers).
_CROSS_ORIGIN_DROPPED: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
#: Requests a browser sends again when a kept-alive connection turns out closed (RFC 9110 9.2.2).
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_DEFAULT_CONTEXT: Final = ssl.create_default_context()


#: What the client's exceptions mean for an HTTP step; the message is the exception's text.
HTTP_FAILURES: Final[tuple[Caught[object], ...]] = (
    Caught(TlsSetupError, Reason.TLS),  # the step's own TLS files
    Caught(DnsFailed, Reason.DNS),
    Caught(ConnectFailed, Reason.CONNECT),
    Caught(TlsFailed, Reason.TLS),
    Caught((Disconnected, ConnectionLost), Reason.CONNECT),
    Caught(WireError, Reason.PROTOCOL),  # a malformed or broken answer, a body too large
    Caught(ClientError, Reason.PROTOCOL),  # a bad URL, too many redirects...
)


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How to set up TLS for one request: the context, and the name to send and check."""

    context: ssl.SSLContext = _DEFAULT_CONTEXT
    server_name: str | None = None
    client_certificate: bool = False  # the context presents one (tls.cert_file)


@dataclass(slots=True)
class Answer:
    """The final response of a request (after redirects), with what its connection knew."""

    url: URL
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    cert_expiry: float | None


_Key = tuple[str, str, int, int, str | None]


class _Connection:
    """A pooled connection, the origin and TLS set-up it serves, and what it learned of TLS."""

    __slots__ = ("fresh", "http", "key", "ssl_object")

    def __init__(self, http: HttpConnection, key: _Key, ssl_object: ssl.SSLObject | None) -> None:
        self.http = http
        self.key = key
        self.ssl_object = ssl_object
        self.fresh = True  # made for the request using it now


class Client:
    """One attempt's connections (one idle connection kept per origin) and cookie jar."""

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, user_agent: bool = True) -> None:
        self.limits = limits
        self.user_agent = user_agent
        self.cookies = aiohttp.CookieJar(unsafe=True)
        self._idle: dict[_Key, _Connection] = {}
        self._open: list[HttpConnection] = []
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """An aiohttp session sharing this client's cookies, for WebSocket steps."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=TlsConnector(limit=0, enable_cleanup_closed=False),
                cookie_jar=self.cookies,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=None, sock_read=None, sock_connect=None
                ),
                skip_auto_headers=() if self.user_agent else ("User-Agent",),
                headers={"User-Agent": USER_AGENT} if self.user_agent else None,
            )
        return self._session

    async def close(self) -> None:
        for http in self._open:
            http.close()
        self._open.clear()
        self._idle.clear()
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        request: Request,
        *,
        timer: Timer,
        tls: TlsOptions = TlsOptions(),
        follow_redirects: bool = True,
        on_status: Callable[[int], object] = lambda status: None,
    ) -> Answer:
        """Make ``request``, following redirects, timing each phase on ``timer``.

        ``on_status`` hears each status as soon as its headers are in: a body that never ends
        still leaves the status known.
        """
        url = _url(request)
        method = request.method.upper()
        headers = dict(request.headers)
        body, content_type = _body(request)
        origin = url.origin()
        redirects = self.limits.redirects
        for hop in range(redirects + 1):
            data = self._head(method, url, headers, body, content_type)  # before connecting
            connection = await self._connection(url, tls, timer)
            try:
                response = await self._exchange(connection, data, method, tls, timer, on_status)
            except Disconnected:
                if connection.fresh or method not in _IDEMPOTENT:
                    raise
                # The server had closed the kept-alive connection: a new one, as a browser would.
                connection = await self._connection(url, tls, timer)
                response = await self._exchange(connection, data, method, tls, timer, on_status)
            timer.traffic.bytes_received += response.received
            cookies = [v for k, v in response.headers if k.lower() == "set-cookie"]
            if cookies:
                self.cookies.update_cookies_from_headers(cookies, url)
            location = response.header("location")
            if not follow_redirects or response.status not in _REDIRECTS or location is None:
                return Answer(
                    url=url,
                    status=response.status,
                    headers={k.lower(): v for k, v in response.headers},
                    body=response.body,
                    cert_expiry=peer_expiry(connection.ssl_object),
                )
            if hop == redirects:
                break
            try:
                url = url.join(URL(location))
            except ValueError as exc:
                raise InvalidUrl(location, "in the Location header") from exc
            if url.scheme not in ("http", "https") or not url.host:
                raise ClientError(f"redirected to a URL that is not HTTP: {location!r}")
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method, body, content_type = "GET", None, None
            if url.origin() != origin:
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in _CROSS_ORIGIN_DROPPED
                }
                origin = url.origin()
        raise ClientError(f"more than {redirects} redirects")

    # --- connections --------------------------------------------------------------------

    async def _connection(self, url: URL, tls: TlsOptions, timer: Timer) -> _Connection:
        secure = url.scheme == "https"
        host, port = url.raw_host or "", url.port or (443 if secure else 80)
        key: _Key = (url.scheme, host, port, id(tls.context) if secure else 0, tls.server_name)
        kept = self._idle.pop(key, None)
        if kept is not None and not kept.http.closed:
            kept.fresh = False
            return kept
        meter = timer.traffic
        loop = asyncio.get_running_loop()
        infos: list[_AddrInfo] | None = _literal(host, port)
        if infos is None:
            timer.enter(Phase.DNS)
            meter.dns_lookups += 1
            try:
                infos = list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except OSError as exc:
                raise DnsFailed(host, exc.strerror or str(exc)) from exc
        timer.enter(Phase.CONNECT)
        http = HttpConnection(limits=self.limits)
        try:
            transport = await _connect(http, infos)
        except OSError as exc:
            raise ConnectFailed(join_address(host, port), os_message(exc)) from exc
        self._open.append(http)
        meter.new_connections += 1
        ssl_object = None
        if secure:
            timer.enter(Phase.TLS)
            transport = await self._handshake(http, transport, host, port, tls, timer)
            count_tls(timer, transport)
            ssl_object = transport.get_extra_info("ssl_object")
        return _Connection(http, key, ssl_object)

    async def _handshake(
        self,
        http: HttpConnection,
        transport: asyncio.Transport,
        host: str,
        port: int,
        tls: TlsOptions,
        timer: Timer,
    ) -> asyncio.Transport:
        """``transport`` upgraded to TLS, or TlsFailed saying why not."""
        name = tls.server_name or host
        loop = asyncio.get_running_loop()
        try:
            upgraded = await loop.start_tls(transport, http, tls.context, server_hostname=name)
        except BaseException as exc:
            transport.abort()
            if isinstance(exc, ssl.SSLError | ConnectionError):
                # The TCP connection stood: a reset or an EOF now is the TLS handshake failing.
                if isinstance(exc, ssl.CertificateError):
                    timer.enter(None)  # the step ends here: re-reading the certificate is not
                failure, expiry = await tls_failure(exc, name, peek=(host, port))
                raise TlsFailed(failure.message, cert_expiry=expiry) from exc
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                raise ConnectFailed(join_address(host, port), os_message(exc)) from exc
            raise
        if upgraded is None:  # the transport closed while the handshake was starting
            raise TlsFailed("connection closed before TLS began")
        http.connection_made(upgraded)  # start_tls swaps the transport under the protocol
        return upgraded

    async def _exchange(
        self,
        connection: _Connection,
        data: bytes,
        method: str,
        tls: TlsOptions,
        timer: Timer,
        on_status: Callable[[int], object],
    ) -> RawResponse:
        """Send ``data`` on ``connection`` and read the answer; the ``wait`` phase starts.

        ``on_status`` is the caller's, and is not kept: the client holding it would close a
        cycle through the step that holds the client.
        """
        timer.enter(Phase.WAIT)
        timer.traffic.requests += 1
        timer.traffic.bytes_sent += len(data)
        try:
            response = await connection.http.exchange(
                data,
                head_only=method == "HEAD",
                on_headers=lambda status: _headers_in(timer, status, on_status),
            )
        except WireError as exc:
            cause = exc.cause if isinstance(exc, ConnectionLost) else None
            if cause is not None and ssl_reason(cause) is not None:
                raise TlsFailed(describe_tls_error(cause)) from exc  # an alert, after all
            if connection.fresh and _refused_handshake(connection, exc):
                what = "rejected" if tls.client_certificate else "required"
                raise TlsFailed(
                    f"client certificate {what} by the server (it dropped the connection "
                    "before finishing the TLS handshake)"
                ) from exc
            raise
        if response.keep_alive and not connection.http.closed:
            self._idle[connection.key] = connection
        else:
            connection.http.close()
        return response

    # --- the request bytes --------------------------------------------------------------

    def _head(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str | None,
    ) -> bytes:
        lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {_host_header(url)}"]
        given = {name.lower() for name in headers}
        if self.user_agent and "user-agent" not in given:
            lines.append(f"User-Agent: {USER_AGENT}")
        if "accept" not in given:
            lines.append("Accept: */*")
        if "accept-encoding" not in given:
            lines.append(f"Accept-Encoding: {ACCEPT_ENCODING}")
        for name, value in headers.items():
            if name.lower() == "host":
                lines[1] = f"Host: {value}"
                continue
            lines.append(f"{name}: {value}")
        cookie = self.cookies.filter_cookies(url)
        if cookie and "cookie" not in given:
            lines.append(
                "Cookie: " + "; ".join(f"{m.key}={m.coded_value}" for m in cookie.values())
            )
        if body is not None:
            if content_type and "content-type" not in given:
                lines.append(f"Content-Type: {content_type}")
            lines.append(f"Content-Length: {len(body)}")
        elif method in _BODY_METHODS:
            lines.append("Content-Length: 0")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ClientError(f"a header would contain a line break: {line[:80]!r}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        return head + body if body else head


def _headers_in(timer: Timer, status: int, on_status: Callable[[int], object]) -> None:
    timer.enter(Phase.RECEIVE)
    on_status(status)


def _url(request: Request) -> URL:
    try:
        url = URL(request.url)
    except (ValueError, TypeError) as exc:
        raise InvalidUrl(request.url) from exc
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise InvalidUrl(request.url)
    if request.params:
        url = url.extend_query(request.params)
    return url


def _body(request: Request) -> tuple[bytes | None, str | None]:
    if request.has_json:
        return json.dumps(request.json).encode(), "application/json"
    if isinstance(request.data, dict):
        return urlencode(request.data).encode(), "application/x-www-form-urlencoded"
    if request.data is not None:
        return request.data.encode(), "text/plain; charset=utf-8"
    return None, None


def _host_header(url: URL) -> str:
    return url.host_port_subcomponent or url.raw_host or ""


_AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


def _literal(host: str, port: int) -> list[_AddrInfo] | None:
    """The address of an IP literal, without a lookup; None for a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return None


async def _connect(http: HttpConnection, infos: list[_AddrInfo]) -> asyncio.Transport:
    """A TCP connection to the first of ``infos`` that answers.

    One address (an IP literal, or a name with one) goes straight to the loop, which connects
    without a Python socket object in between (the cheap path, B1); several race as RFC 8305
    says, through aiohappyeyeballs.
    """
    loop = asyncio.get_running_loop()
    if len(infos) == 1:
        family, _, proto, _, address = infos[0]
        transport, _ = await loop.create_connection(
            lambda: http, address[0], address[1], family=family, proto=proto
        )
        return transport
    sock = await aiohappyeyeballs.start_connection(
        infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
    )
    try:
        transport, _ = await loop.create_connection(lambda: http, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport


def _refused_handshake(connection: _Connection, exc: WireError) -> bool:
    """A fresh TLS 1.3 connection dropped before any answer, by a server that never finished
    the handshake: in practice it wanted a client certificate, or rejected ours.

    TLS 1.3 lets the client finish its handshake before the server has checked the client's
    certificate, and a server sends its session tickets once it has finished (OpenSSL, Go and
    rustls do by default). A connection dropped without a ticket was refused at TLS level,
    without a readable alert (asyncio servers send none, CPython gh-98078; others may lose
    theirs to a TCP reset). A server with tickets turned off that drops a request would be
    misread this way: the message says what was seen.
    """
    shake = connection.ssl_object
    dropped = isinstance(exc, Disconnected | ConnectionLost)
    if shake is None or shake.version() != TLS_1_3 or not dropped:
        return False
    session = shake.session
    return session is None or not session.has_ticket
