"""The web config of ``carewatch serve --web.config.file FILE``: TLS, basic auth and response
headers for the agent's endpoints, in the Prometheus exporter-toolkit format, so that a file
written for node_exporter or Prometheus works unchanged (docs/security.md).

``load_web_config`` reads and checks the file (every problem located, as ``ConfigError``);
``secure`` puts it in front of an aiohttp application, with the per-endpoint exposure of
``--web.protect`` and ``--web.disable``::

    web_config = load_web_config("web.yml")
    secure(app, web_config, protect=ALL, disable=frozenset({Endpoint.RELOAD}))
    web.TCPSite(runner, host, port, ssl_context=web_config.tls)

What differs from the toolkit, because Python's ``ssl`` cannot do it: ``RequireAnyClientCert``
(a client certificate required but never verified) is refused, ``RequestClientCert`` asks for
no certificate (the toolkit never verifies the one it asks for, so it proves nothing either
way), ``curve_preferences`` keeps its first curve only, and ``http2`` is accepted and ignored
(HTTP/1.1 only). The file is read at start, not at every request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, TypeAlias

import bcrypt
import yaml
from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from probes.errors import ConfigError, Problem
from probes.model.durations import parse_duration
from probes.service.guards import TokenBucket

#: A web config is a few lines and perhaps three PEM blocks; anything larger is a mistake.
MAX_FILE_BYTES: Final = 256 * 1024
#: Basic-auth answers remembered, so that a scraper's password costs one bcrypt, not one per
#: scrape (the toolkit caches them too).
AUTH_CACHE_SIZE: Final = 1024
#: bcrypt runs off the event loop, on this many threads at most: a flood of wrong passwords
#: costs CPU, never the probes' timers or the config reloads' worker threads.
BCRYPT_THREADS: Final = 2
#: Compared against when the user is unknown, so that the answer takes as long as for a known
#: user with a wrong password (no user enumeration by timing).
_DUMMY_HASH: Final = bcrypt.hashpw(b"carewatch", bcrypt.gensalt(10))
_BCRYPT: Final = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
#: bcrypt reads this many bytes of a password; longer ones never match.
BCRYPT_MAX_BYTES: Final = 72
REALM_HEADER: Final = {"WWW-Authenticate": "Basic"}

#: Go's names (crypto/tls) -> Python's.
CLIENT_AUTH: Final = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH: Final = ("RequireAnyClientCert", "RequireClientCert")
TLS_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
#: Go's cipher suite names (crypto/tls CipherSuites(), TLS 1.2 and below) -> OpenSSL's.
CIPHER_SUITES: Final = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
CURVES: Final = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
#: The headers the toolkit lets a web config set, and the values it accepts (None: any).
HEADERS: Final[Mapping[str, frozenset[str] | None]] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}


class Endpoint(StrEnum):
    """The agent's endpoints as ``--web.protect`` and ``--web.disable`` name them."""

    METRICS = "metrics"  # /metrics
    HEALTH = "health"  # /-/healthy, /-/ready
    STATUS = "status"  # the page at /
    RELOAD = "reload"  # POST /-/reload
    PROBE = "probe"  # /probe
    API = "api"  # /api/*
    CALLBACKS = "callbacks"  # /callbacks/*: providers sign their requests instead


#: ``--web.protect``'s default: basic auth on every path but ``/callbacks/*``.
ALL: Final = frozenset(Endpoint) - {Endpoint.CALLBACKS}
#: What ``--web.disable`` may turn off: the endpoints that act or reveal more than metrics.
DISABLEABLE: Final = frozenset({Endpoint.RELOAD, Endpoint.PROBE, Endpoint.API, Endpoint.STATUS})


def endpoint_of(path: str) -> Endpoint | None:
    """The endpoint a request path belongs to; None for a path the agent does not serve.

    >>> endpoint_of("/-/ready"), endpoint_of("/callbacks/sms"), endpoint_of("/api/v1/x")
    (<Endpoint.HEALTH: 'health'>, <Endpoint.CALLBACKS: 'callbacks'>, <Endpoint.API: 'api'>)
    """
    if path == "/":
        return Endpoint.STATUS
    if path == "/metrics":
        return Endpoint.METRICS
    if path in ("/-/healthy", "/-/ready"):
        return Endpoint.HEALTH
    if path == "/-/reload":
        return Endpoint.RELOAD
    if path == "/probe":
        return Endpoint.PROBE
    if path == "/api" or path.startswith("/api/"):
        return Endpoint.API
    if path.startswith("/callbacks/"):
        return Endpoint.CALLBACKS
    return None


# --- the file ------------------------------------------------------------------------------------


def _bcrypt_hash(value: str) -> str:
    if not _BCRYPT.match(value):
        raise ValueError(
            "expected a bcrypt hash such as $2y$10$... "
            "(htpasswd -nBC 10 \"\" | tr -d ':\\n'), not a password"
        )
    return value


def _header_name(value: str) -> str:
    if value not in HEADERS:
        raise ValueError(f"{value!r} cannot be set; expected some of {', '.join(HEADERS)}")
    return value


BcryptHash: TypeAlias = Annotated[str, AfterValidator(_bcrypt_hash)]
HeaderName: TypeAlias = Annotated[str, AfterValidator(_header_name)]


class _Strict(BaseModel):
    # The toolkit unmarshals strictly: an unknown key (a typo) is an error, not ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")


class _TlsServerConfig(_Strict):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: list[str] | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: list[str] | None = None
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] | None = None

    @field_validator("client_auth_type")
    @classmethod
    def _client_auth(cls, value: str) -> str:
        if value in UNVERIFIED_CLIENT_AUTH:
            raise ValueError(
                f"{value} (a client certificate required but never verified) is not supported; "
                "use RequireAndVerifyClientCert with client_ca_file"
            )
        if value not in CLIENT_AUTH:
            raise ValueError(f"expected one of {', '.join(CLIENT_AUTH)}; got {value!r}")
        return value

    @field_validator("min_version", "max_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in TLS_VERSIONS:
            raise ValueError(f"expected one of {', '.join(TLS_VERSIONS)}; got {value!r}")
        return value

    @field_validator("cipher_suites")
    @classmethod
    def _ciphers(cls, value: list[str] | None) -> list[str] | None:
        unknown = [name for name in value or () if name not in CIPHER_SUITES]
        if unknown:
            raise ValueError(f"unknown or unsupported cipher suites: {', '.join(unknown)}")
        return value

    @field_validator("curve_preferences")
    @classmethod
    def _curves(cls, value: list[str] | None) -> list[str] | None:
        unknown = [name for name in value or () if name not in CURVES]
        if unknown:
            raise ValueError(
                f"unknown curves: {', '.join(unknown)}; expected some of {', '.join(CURVES)}"
            )
        return value


class _HttpServerConfig(_Strict):
    http2: bool = True  # accepted for compatibility; the agent speaks HTTP/1.1
    headers: dict[HeaderName, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _values(cls, value: dict[str, str]) -> dict[str, str]:
        for name, given in value.items():
            allowed = HEADERS[name]
            if allowed is not None and given.lower() not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(sorted(allowed))}")
        return value


class _RateLimit(_Strict):
    interval: str | float = 0
    burst: int = Field(default=0, ge=0)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | float) -> float:
        seconds = parse_duration(value)
        if seconds != seconds or seconds == float("inf"):
            raise ValueError(f"expected a finite duration; got {value!r}")
        return seconds


class _WebConfigFile(_Strict):
    tls_server_config: _TlsServerConfig | None = None
    http_server_config: _HttpServerConfig | None = None
    basic_auth_users: dict[str, BcryptHash] | None = None
    rate_limit: _RateLimit | None = None


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A checked web config: what ``secure`` and the listening socket need."""

    source: str
    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    allowed_sans: frozenset[str] | None = None  # client certificates must name one of these
    rate_interval: float = 0.0  # seconds between requests on average; 0: no limit
    rate_burst: int = 0


def load_web_config(path: str | Path) -> WebConfig:
    """The web config in ``path``; ``ConfigError`` with every problem, located, if it is not
    one (unknown keys, a password where a bcrypt hash belongs, unreadable certificates...)."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _error(source, None, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _error(source, None, "", f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        root = _compose(text)
        data = yaml.safe_load(text) if root is not None else None
    except UnicodeDecodeError:
        raise _error(source, None, "", "not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise _error(source, line, "", f"not YAML: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise _error(source, None, "", f"not YAML: {str(exc)[:200]}") from None
    if data is None:
        data = {}  # an empty file is the toolkit's "no TLS, no auth"
    if not isinstance(data, dict):
        raise _error(source, 1, "", "expected a mapping (tls_server_config, basic_auth_users...)")
    try:
        parsed = _WebConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                Problem(
                    source,
                    _line(root, err["loc"]),
                    None,
                    _dotted(err["loc"]),
                    str(err["msg"]).removeprefix("Value error, ")[:300],
                )
                for err in exc.errors()
            ]
        ) from None
    tls = parsed.tls_server_config
    headers = parsed.http_server_config.headers if parsed.http_server_config else {}
    rate = parsed.rate_limit
    return WebConfig(
        source=source,
        tls=_tls_context(source, tls, _base(path), root) if tls is not None else None,
        users={user: hashed.encode() for user, hashed in (parsed.basic_auth_users or {}).items()},
        headers=dict(headers),
        allowed_sans=frozenset(tls.client_allowed_sans)
        if tls is not None and tls.client_allowed_sans
        else None,
        rate_interval=float(rate.interval) if rate is not None else 0.0,
        rate_burst=rate.burst if rate is not None else 0,
    )


def _tls_context(
    source: str, tls: _TlsServerConfig, base: Path, root: yaml.Node | None
) -> ssl.SSLContext:
    where = ("tls_server_config",)

    def problem(key: str, message: str) -> ConfigError:
        return _error(source, _line(root, (*where, key)), f"tls_server_config.{key}", message)

    for inline, name in (
        ("cert", "cert_file"),
        ("key", "key_file"),
        ("client_ca", "client_ca_file"),
    ):
        if getattr(tls, inline) is not None and getattr(tls, name) is not None:
            raise problem(inline, f"give {inline} or {name}, not both")
    if tls.cert is None and tls.cert_file is None:
        raise problem("cert_file", "missing: the server's certificate (cert_file or cert)")
    if tls.key is None and tls.key_file is None:
        raise problem("key_file", "missing: the server's private key (key_file or key)")
    has_ca = tls.client_ca is not None or tls.client_ca_file is not None
    verify = CLIENT_AUTH[tls.client_auth_type]
    if has_ca and tls.client_auth_type == "NoClientCert":
        raise problem("client_ca_file", "a client CA is given but client_auth_type is NoClientCert")
    if verify != ssl.CERT_NONE and not has_ca:
        raise problem("client_ca_file", f"missing: {tls.client_auth_type} needs the clients' CA")
    if tls.client_allowed_sans and verify != ssl.CERT_REQUIRED:
        raise problem("client_allowed_sans", "needs client_auth_type RequireAndVerifyClientCert")
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        raise problem("min_version", f"{tls.min_version} is above max_version {tls.max_version}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        _load_chain(context, tls, base)
    except (OSError, ssl.SSLError, ValueError) as exc:
        key = "cert_file" if tls.cert_file is not None else "cert"
        raise problem(key, f"cannot load the certificate and key: {_reason(exc)}") from None
    if has_ca:
        try:
            if tls.client_ca_file is not None:
                context.load_verify_locations(cafile=str(base / tls.client_ca_file))
            else:
                context.load_verify_locations(cadata=tls.client_ca)
        except (OSError, ssl.SSLError, ValueError) as exc:
            key = "client_ca_file" if tls.client_ca_file is not None else "client_ca"
            raise problem(key, f"cannot load the client CA: {_reason(exc)}") from None
    context.verify_mode = verify
    if tls.cipher_suites:
        context.set_ciphers(":".join(CIPHER_SUITES[name] for name in tls.cipher_suites))
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.curve_preferences:
        context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
    return context


def _load_chain(context: ssl.SSLContext, tls: _TlsServerConfig, base: Path) -> None:
    """The server's certificate and key, from files or inline PEM (ssl reads only files, so
    inline PEM goes through a private temporary file, deleted at once)."""
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(base / tls.cert_file), str(base / tls.key_file))
        return
    with tempfile.TemporaryDirectory() as folder:
        cert = base / tls.cert_file if tls.cert_file is not None else Path(folder) / "cert.pem"
        key = base / tls.key_file if tls.key_file is not None else Path(folder) / "key.pem"
        for path, text in ((cert, tls.cert), (key, tls.key)):
            if text is not None:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(text)
        context.load_cert_chain(str(cert), str(key))


def _base(path: str | Path) -> Path:
    # The toolkit reads relative file names from the web config's folder.
    return Path(path).resolve().parent


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)[:200] or type(exc).__name__


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, for the lines of problems. Aliases are refused: nothing in a web
    config needs one, and they are how a small file becomes a huge document."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise yaml.MarkedYAMLError(
                problem="aliases are not allowed",
                problem_mark=mark if isinstance(mark, yaml.Mark) else None,
            )
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _line(root: yaml.Node | None, loc: Iterable[Any]) -> int | None:
    """The line of the deepest node along ``loc`` that the file has."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                node = value_node
                line = key_node.start_mark.line + 1
                break
        else:
            break
    return line


def _dotted(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc if part != "[key]")


def _error(source: str, line: int | None, path: str, message: str) -> ConfigError:
    return ConfigError([Problem(source, line, None, path, message)])


# --- in front of the application -----------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Passwords:
    """bcrypt checks, off the event loop, remembered by a keyed digest of the credentials."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = users
        self._key = os.urandom(32)
        self._known: OrderedDict[bytes, bool] = OrderedDict()
        self._threads = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="bcrypt")

    async def check(self, user: str, password: str) -> bool:
        if len(password.encode()) > BCRYPT_MAX_BYTES:
            return False  # bcrypt refuses to compare them (Go's bcrypt too)
        tag = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        known = self._known.get(tag)
        if known is not None:
            self._known.move_to_end(tag)
            return known
        hashed = self._users.get(user)
        loop = asyncio.get_running_loop()
        matched = await loop.run_in_executor(
            self._threads, bcrypt.checkpw, password.encode(), hashed or _DUMMY_HASH
        )
        ok = hashed is not None and matched
        self._known[tag] = ok
        if len(self._known) > AUTH_CACHE_SIZE:
            self._known.popitem(last=False)
        return ok

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def secure(
    app: web.Application,
    config: WebConfig | None,
    *,
    protect: frozenset[Endpoint] = ALL,
    disable: frozenset[Endpoint] = frozenset(),
) -> None:
    """Put ``config`` (None: no web config) in front of ``app``, before it starts.

    ``protect``: the endpoints that need basic auth when ``config`` has users (``ALL``: every
    path but ``/callbacks/*``). ``disable``: the endpoints that answer 403 whatever the
    credentials. ``ConfigError`` if ``protect`` names endpoints but there are no users.
    """
    users = config.users if config is not None else {}
    if protect != ALL and not users:
        raise ConfigError(
            [
                Problem(
                    config.source if config is not None else "--web.protect",
                    None,
                    None,
                    "basic_auth_users",
                    "--web.protect needs basic_auth_users in --web.config.file",
                )
            ]
        )
    passwords = _Passwords(users) if users else None
    bucket = (
        TokenBucket(interval=config.rate_interval, burst=config.rate_burst)
        if config is not None and config.rate_interval > 0
        else None
    )
    sans = config.allowed_sans if config is not None else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = endpoint_of(request.path)
        if endpoint in disable:
            return web.Response(
                status=403, text=f"{request.path} is disabled (carewatch serve --web.disable).\n"
            )
        if bucket is not None and not bucket.take():
            return web.Response(status=429, text="Too many requests.\n")
        if sans is not None and not _names_one_of(request, sans):
            return web.Response(status=403, text="Client certificate not allowed.\n")
        if (
            passwords is not None
            and _protected(endpoint, protect)
            and not await _authorized(request, passwords)
        ):
            return web.Response(status=401, text="Unauthorized.\n", headers=REALM_HEADER)
        return await handler(request)

    app.middlewares.append(guard)
    headers = dict(config.headers) if config is not None else {}
    if headers:

        async def add_headers(_: web.Request, response: web.StreamResponse) -> None:
            response.headers.update(headers)

        app.on_response_prepare.append(add_headers)
    if passwords is not None:

        async def close(_: web.Application) -> None:
            passwords.close()

        app.on_cleanup.append(close)


def _protected(endpoint: Endpoint | None, protect: frozenset[Endpoint]) -> bool:
    if protect == ALL:
        return endpoint is not Endpoint.CALLBACKS  # unknown paths too: nothing to learn there
    return endpoint in protect


async def _authorized(request: web.Request, passwords: _Passwords) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    return bool(colon) and await passwords.check(user, password)


def _names_one_of(request: web.Request, allowed: frozenset[str]) -> bool:
    """Whether the client certificate has a subject alternative name in ``allowed``."""
    transport = request.transport
    peer: Any = transport.get_extra_info("peercert") if transport is not None else None
    if not peer:
        return False
    names = {value for _, value in peer.get("subjectAltName", ())}
    return not names.isdisjoint(allowed)


def parse_endpoints(
    text: str, *, allowed: Iterable[Endpoint] = tuple(Endpoint)
) -> frozenset[Endpoint]:
    """``reload,probe`` -> {RELOAD, PROBE}; ``all`` -> ``ALL``; ValueError naming the choices.

    >>> sorted(parse_endpoints("probe,reload"))
    [<Endpoint.PROBE: 'probe'>, <Endpoint.RELOAD: 'reload'>]
    """
    choices = [endpoint.value for endpoint in allowed]
    if text.strip() == "all" and "metrics" in choices:
        return ALL
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown or not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(choices)}; got {text!r}")
    return frozenset(Endpoint(name) for name in names)
