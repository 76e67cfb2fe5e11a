"""TLS of https steps against real aiohttp HTTPS servers on loopback, with trustme certificates:
the certificate's expiry, failures named by kind, a private CA, client certificates, and the
``tls`` phase timed apart from ``connect``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from probes.metrics import STEP_TLS_EXPIRY
from probes.runs.results import Phase, Reason, RunResult, StepResult
from probes.service.exposition import Exposition
from tests._support import journeys
from tests._support.journeys import failed, one_journey, one_step, run_journey
from tests._support.servers import ServerFactory
from tests._support.timing import CLOCK_SLACK

#: How long the slow proxy holds the server's first TLS bytes back.
HANDSHAKE_DELAY: Final = 0.3
#: Slack for timings on a noisy 2-core machine, far below HANDSHAKE_DELAY.
SLACK: Final = 0.1
#: How often the blocking test server looks up from accept() to see whether to stop.
ACCEPT_POLL: Final = 0.05
#: How long the blocking test server waits on a silent client before giving up on it.
STALL_LIMIT: Final = 5.0

HttpsServer = Callable[..., Awaitable[str]]


# --- certificates ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    """A CA the probe does not trust."""
    return trustme.CA()


def not_after(cert: trustme.LeafCert) -> float:
    """The Unix time the leaf certificate expires, read from its PEM."""
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    return leaf.not_valid_after_utc.timestamp()


def write(tmp_path: Path, name: str, *blobs: trustme.Blob) -> str:
    path = tmp_path / name
    path.write_bytes(b"".join(blob.bytes() for blob in blobs))
    return str(path)


# --- servers and journeys -------------------------------------------------------------------------


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


@pytest.fixture
def https(aiohttp_server: ServerFactory, tmp_path: Path) -> HttpsServer:
    """Serve ``hello`` over HTTPS: ``base = await https(cert, client_ca=None, extra_chain=())``."""

    async def start(
        cert: trustme.LeafCert,
        *,
        client_ca: trustme.CA | None = None,
        extra_chain: tuple[trustme.Blob, ...] = (),
    ) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        chain = write(tmp_path, "server.pem", cert.private_key_and_cert_chain_pem, *extra_chain)
        context.load_cert_chain(chain)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            client_ca.configure_trust(context)
        app = web.Application()
        app.router.add_get("/", hello)
        server = await aiohttp_server(app, ssl=context)
        return str(server.make_url("")).rstrip("/")

    return start


async def run(url: str, **fields: Any) -> RunResult:
    """Run one step ``s`` getting ``url``; ``fields`` join the step (``tls={...}``)."""
    return await journeys.run(one_step(url, **fields))


def passed(result: RunResult) -> StepResult:
    assert result.ok, result.final.failed_step
    return result.final.steps[0]


# --- a valid certificate --------------------------------------------------------------------------


async def test_a_certificate_from_the_ca_file_passes_and_reports_its_expiry(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    base = await https(cert)
    step = passed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.cert_expiry == not_after(cert)
    assert step.status == 200


async def test_phases_of_an_https_step_add_up_with_tls_in_its_place(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    base = await https(ca.issue_cert("127.0.0.1"))
    step = passed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    phases = dict(step.phases)
    total = phases.pop(Phase.TOTAL)
    assert list(phases) == [Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT, Phase.RECEIVE]
    assert phases[Phase.TLS] > 0
    assert sum(phases.values()) == pytest.approx(total, abs=1e-6)


@pytest.fixture
async def slow_handshake() -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """A TCP relay to an HTTPS server that holds the server's first bytes (its half of the TLS
    handshake) back for HANDSHAKE_DELAY: ``base = await slow_handshake(https_base)``."""
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
    ) -> None:
        first = True
        try:
            while data := await reader.read(64 * 1024):
                if first:
                    await asyncio.sleep(delay)
                    first = False
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def start(base: str) -> str:
        port = int(base.rsplit(":", 1)[1])

        async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", port)
            for task in (
                asyncio.create_task(pipe(client_r, server_w, 0.0)),
                asyncio.create_task(pipe(server_r, client_w, HANDSHAKE_DELAY)),
            ):
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        servers.append(server)
        return f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for task in list(tasks):
        task.cancel()
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_slow_handshake_shows_in_tls_not_in_connect(
    https: HttpsServer,
    slow_handshake: Callable[[str], Awaitable[str]],
    ca: trustme.CA,
    tmp_path: Path,
) -> None:
    base = await slow_handshake(await https(ca.issue_cert("127.0.0.1")))
    step = passed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.phases[Phase.TLS] >= HANDSHAKE_DELAY - CLOCK_SLACK
    assert step.phases[Phase.CONNECT] < SLACK


async def test_a_kept_alive_connection_still_reports_the_expiry(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    base = await https(cert)
    tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}
    config = one_journey(
        {"name": "first", "url": base + "/", "tls": tls},
        {"name": "second", "url": base + "/", "tls": tls},
    )
    result = await run_journey(config)
    first, second = result.final.steps
    assert result.ok
    assert first.cert_expiry == second.cert_expiry == not_after(cert)
    assert first.phases[Phase.TLS] > 0
    assert second.phases[Phase.TLS] == second.phases[Phase.CONNECT] == 0  # kept alive


async def test_server_name_verifies_an_ip_url_against_the_certificate_s_name(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    base = await https(ca.issue_cert("care.example.com"))
    tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem), "server_name": "care.example.com"}
    passed(await run(base + "/", tls=tls))


async def test_insecure_passes_an_untrusted_certificate_and_still_reports_its_expiry(
    https: HttpsServer, other_ca: trustme.CA
) -> None:
    cert = other_ca.issue_cert("127.0.0.1")
    base = await https(cert)
    step = passed(await run(base + "/", tls={"insecure": True}))
    assert step.cert_expiry == not_after(cert)


async def test_plain_http_reports_no_tls(aiohttp_server: ServerFactory) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    server = await aiohttp_server(app)
    step = passed(await run(str(server.make_url("/"))))
    assert step.cert_expiry is None
    assert Phase.TLS not in step.phases


# --- failures, by kind ----------------------------------------------------------------------------


async def test_an_expired_certificate_fails_saying_when_it_expired(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert(
        "127.0.0.1",
        not_before=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2026, 1, 2, 12, tzinfo=datetime.UTC),
    )
    base = await https(cert)
    step = failed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.reason is Reason.TLS
    assert step.message == "certificate expired on 2026-01-02 (127.0.0.1)"
    assert step.cert_expiry == not_after(cert)


async def test_a_certificate_not_valid_yet_fails_saying_from_when(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert(
        "127.0.0.1",
        not_before=datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC),
    )
    base = await https(cert)
    step = failed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.reason is Reason.TLS
    assert step.message == "certificate not valid until 2999-01-01 (127.0.0.1)"


@pytest.mark.parametrize("chain", ["unknown CA", "self-signed root in the chain"])
async def test_an_untrusted_issuer_fails_as_such(
    https: HttpsServer, ca: trustme.CA, other_ca: trustme.CA, tmp_path: Path, chain: str
) -> None:
    extra = (other_ca.cert_pem,) if chain.startswith("self-signed") else ()
    base = await https(other_ca.issue_cert("127.0.0.1"), extra_chain=extra)
    step = failed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.reason is Reason.TLS
    detail = (
        "self-signed certificate in certificate chain"
        if extra
        else "unable to get local issuer certificate"
    )
    assert step.message.startswith(
        f"untrusted issuer: self-signed or unknown CA for 127.0.0.1 ({detail}; issuer "
    )


async def test_a_certificate_for_another_host_fails_as_a_mismatch(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    base = await https(ca.issue_cert("localhost"))
    step = failed(await run(base + "/", tls={"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}))
    assert step.reason is Reason.TLS
    assert step.message == "hostname mismatch: certificate is for localhost, not 127.0.0.1"


async def test_a_wrong_server_name_fails_as_a_mismatch(
    https: HttpsServer, ca: trustme.CA, tmp_path: Path
) -> None:
    base = await https(ca.issue_cert("127.0.0.1", "care.example.com"))
    tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem), "server_name": "help.example.com"}
    step = failed(await run(base + "/", tls=tls))
    assert step.reason is Reason.TLS
    assert step.message == (
        "hostname mismatch: certificate is for care.example.com, 127.0.0.1, not help.example.com"
    )


async def test_a_plain_http_server_fails_the_handshake(aiohttp_server: ServerFactory) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    server = await aiohttp_server(app)
    step = failed(await run(str(server.make_url("/")).replace("http:", "https:")))
    assert step.reason is Reason.TLS
    assert step.message.startswith("TLS handshake failed: ")


async def test_a_server_that_drops_the_request_after_a_good_handshake_is_not_blamed_on_tls(
    ca: trustme.CA, tmp_path: Path
) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = await asyncio.start_server(drop, "127.0.0.1", 0, ssl=context)
    async with server:
        base = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}
        step = failed(await run(base + "/", tls=tls))
    assert step.reason is Reason.CONNECT
    assert step.message == "the server closed the connection without answering"


# --- client certificates --------------------------------------------------------------------------


@pytest.fixture
async def mutual(https: HttpsServer, ca: trustme.CA, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A server that requires a client certificate from ``ca``, and the probe's trust of it."""
    base = await https(ca.issue_cert("127.0.0.1"), client_ca=ca)
    return base, {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}


async def test_a_client_certificate_passes_mutual_tls(
    mutual: tuple[str, dict[str, str]], ca: trustme.CA, tmp_path: Path
) -> None:
    base, tls = mutual
    probe = ca.issue_cert("probe@carewatch.example")
    tls["cert_file"] = write(tmp_path, "probe.pem", *probe.cert_chain_pems)
    tls["key_file"] = write(tmp_path, "probe.key", probe.private_key_pem)
    passed(await run(base + "/", tls=tls))


async def test_no_client_certificate_fails_as_required(
    mutual: tuple[str, dict[str, str]],
) -> None:
    base, tls = mutual
    step = failed(await run(base + "/", tls=tls))
    assert step.reason is Reason.TLS
    assert step.message.startswith("client certificate required by the server")


async def test_a_client_certificate_from_another_ca_fails_as_rejected(
    mutual: tuple[str, dict[str, str]], other_ca: trustme.CA, tmp_path: Path
) -> None:
    base, tls = mutual
    tls["cert_file"] = write(
        tmp_path, "probe.pem", other_ca.issue_cert("probe").private_key_and_cert_chain_pem
    )
    step = failed(await run(base + "/", tls=tls))
    assert step.reason is Reason.TLS
    assert step.message.startswith("client certificate rejected by the server")


@pytest.fixture
def alerting(ca: trustme.CA) -> Iterator[Callable[[ssl.TLSVersion], str]]:
    """A blocking ``ssl`` server that requires a client certificate from ``ca`` and, unlike an
    asyncio server (CPython gh-98078), sends its TLS alert when it refuses one, as nginx, Go and
    Envoy do: ``base = alerting(ssl.TLSVersion.TLSv1_3)``."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve(listener: socket.socket, context: ssl.SSLContext) -> None:
        listener.settimeout(ACCEPT_POLL)
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                conn.settimeout(STALL_LIMIT)
                with context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                ) as tls:
                    try:
                        tls.do_handshake()
                    except (ssl.SSLError, OSError):
                        # Half-close and drain, so the alert is read, not lost to a TCP reset.
                        with contextlib.suppress(OSError):
                            tls.shutdown(socket.SHUT_WR)
                            while tls.recv(64 * 1024):
                                pass
                        continue
                    tls.recv(64 * 1024)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )

    def start(version: ssl.TLSVersion) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.maximum_version = version
        ca.issue_cert("127.0.0.1").configure_cert(context)
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
        listener = socket.create_server(("127.0.0.1", 0))
        thread = threading.Thread(target=serve, args=(listener, context), daemon=True)
        thread.start()
        threads.append(thread)
        return f"https://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(STALL_LIMIT)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
@pytest.mark.parametrize("offered", [False, True])
async def test_a_server_alert_about_the_client_certificate_is_named(
    alerting: Callable[[ssl.TLSVersion], str],
    ca: trustme.CA,
    other_ca: trustme.CA,
    tmp_path: Path,
    version: ssl.TLSVersion,
    offered: bool,
) -> None:
    tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}
    if offered:
        cert = other_ca.issue_cert("probe").private_key_and_cert_chain_pem
        tls["cert_file"] = write(tmp_path, "probe.pem", cert)
    step = failed(await run(alerting(version) + "/", tls=tls))
    assert step.reason is Reason.TLS
    if offered:
        expected = "client certificate rejected by the server (tlsv1 alert unknown ca)"
    elif version is ssl.TLSVersion.TLSv1_3:
        expected = "client certificate required by the server"
    else:  # TLS 1.2 has no alert that says so
        expected = (
            "TLS handshake failed: the server refused it (no protocol or cipher in common, "
            "or it requires a client certificate)"
        )
    assert step.message == expected


# --- the step's own TLS files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "content"), [("ca_file", None), ("ca_file", b"not a PEM"), ("cert_file", None)]
)
async def test_a_missing_or_bad_file_fails_naming_it(
    option: str, content: bytes | None, tmp_path: Path
) -> None:
    path = tmp_path / "nowhere.pem"
    if content is not None:
        path.write_bytes(content)
    step = failed(await run("https://127.0.0.1:9/", tls={option: str(path)}))
    assert step.reason is Reason.TLS
    assert step.message.startswith(f"cannot load tls.{option} {path}: ")


@pytest.mark.parametrize("key", ["encrypted", "another's"])
async def test_a_key_that_cannot_be_used_fails_naming_the_files(
    ca: trustme.CA, tmp_path: Path, key: str
) -> None:
    probe = ca.issue_cert("probe")
    own = serialization.load_pem_private_key(probe.private_key_pem.bytes(), password=None)
    encrypted = own.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    cert_file = write(tmp_path, "probe.pem", *probe.cert_chain_pems)
    key_file = tmp_path / "probe.key"
    if key == "encrypted":
        key_file.write_bytes(encrypted)
    else:
        key_file.write_bytes(ca.issue_cert("someone").private_key_pem.bytes())
    tls = {"cert_file": cert_file, "key_file": str(key_file)}
    step = failed(await run("https://127.0.0.1:9/", tls=tls))
    assert step.reason is Reason.TLS
    detail = "the key is encrypted" if key == "encrypted" else "key values mismatch"
    assert (
        step.message
        == f"cannot load tls.cert_file {cert_file} with tls.key_file {key_file}: {detail}"
    )


# --- exposition -----------------------------------------------------------------------------------


async def test_the_expiry_is_exposed_for_tls_steps_only(
    https: HttpsServer, aiohttp_server: ServerFactory, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    secure = await https(cert)
    app = web.Application()
    app.router.add_get("/", hello)
    plain = str((await aiohttp_server(app)).make_url("/"))
    tls = {"ca_file": write(tmp_path, "ca.pem", ca.cert_pem)}
    config = one_journey(
        {"name": "secure", "url": secure + "/", "tls": tls}, {"name": "plain", "url": plain}
    )
    exposition = Exposition()
    exposition.configure(config, location="test")
    exposition.record(await run_journey(config))
    lines = [
        line for line in exposition.render().splitlines() if line.startswith(STEP_TLS_EXPIRY.name)
    ]
    labels = 'channel="app",journey="j",step="secure",location="test"'
    assert lines == [f"{STEP_TLS_EXPIRY.name}{{{labels}}} {not_after(cert)!r}"]
