"""SMTP steps against aiosmtpd servers in the test's event loop on loopback: STARTTLS with a
``trustme`` certificate and AUTH required, implicit TLS, plain SMTP, a server that refuses a
recipient, and raw servers that greet wrong or not at all."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from probes.errors import ConfigError
from probes.runs.results import Phase, Reason, RunResult
from tests._support import journeys
from tests._support.journeys import Step, failed, one_journey
from tests._support.servers import free_port

USERNAME: Final = "probe@care.test"
PASSWORD: Final = "s3cret"
REFUSED: Final = "nobody@care.test"
SERVER_NAME: Final = "mail.care.test"


@dataclass
class Received:
    """An email as the server took it: the envelope, and the message parsed."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailServer:
    port: int
    received: list[Received] = field(default_factory=list)


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, _: SMTP, __: Session, envelope: Envelope, address: str, ___: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 mailbox unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _: SMTP, __: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert envelope.mail_from is not None
        self.server.received.append(Received(envelope.mail_from, envelope.rcpt_tos, message))
        return "250 2.0.0 queued as 42"


def _authenticator(
    _: SMTP, __: Session, ___: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=good, handled=False)  # aiosmtpd answers 235 or 535 itself


Start = Callable[..., Awaitable[MailServer]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", SERVER_NAME).configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "mail-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def mail_server(server_tls: ssl.SSLContext) -> AsyncIterator[Start]:
    """``server = await mail_server(security=..., auth=...)``: aiosmtpd on 127.0.0.1."""
    servers: list[asyncio.Server] = []

    async def start(*, security: str = "starttls", auth: bool = True) -> MailServer:
        state = MailServer(port=0)

        def protocol() -> SMTP:
            return SMTP(
                _Handler(state),
                hostname=SERVER_NAME,
                tls_context=server_tls if security == "starttls" else None,
                require_starttls=security == "starttls",
                authenticator=_authenticator if auth else None,
                auth_required=auth,
                auth_require_tls=security == "starttls",  # implicit TLS is TLS from the start
                timeout=5,
            )

        implicit = server_tls if security == "tls" else None
        server = await asyncio.get_running_loop().create_server(
            protocol, "127.0.0.1", 0, ssl=implicit
        )
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


#: What the steps template: where to send, and the password to log in with.
VARIABLES: Final = {"care_address": "care@care.test", "smtp_password": PASSWORD}


async def run(*steps: Step) -> RunResult:
    """Run one journey of ``steps`` on the email channel with a fresh engine."""
    return await journeys.run(*steps, channel=journeys.EMAIL, **VARIABLES)


def send(port: int, **fields: Any) -> dict[str, Any]:
    """A step emailing the care address through 127.0.0.1:``port``; ``fields`` override."""
    smtp: dict[str, Any] = {
        "address": f"127.0.0.1:{port}",
        "username": USERNAME,
        "password": "${smtp_password}",
        "from": f"Care Probe <{USERNAME}>",
        "to": "${care_address}",
        "subject": "carewatch ${run_id}",
        "body": "Hello, my roaming does not work ({journey} ${journey}).\n",
        "headers": {"X-Carewatch-Channel": "${channel}"},
        **fields,
    }
    return {"name": "send-email", "smtp": smtp}


# --- sending ----------------------------------------------------------------------------------


async def test_starttls_and_auth_deliver_the_templated_email(
    mail_server: Start, ca_file: str
) -> None:
    server = await mail_server()
    result = await run(send(server.port, tls={"ca_file": ca_file, "server_name": SERVER_NAME}))
    assert result.ok, result.to_dict()
    step = result.final.steps[0]
    assert step.status == 250
    assert step.cert_expiry is not None
    assert step.cert_expiry > time.time()
    assert set(step.phases) == {Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT, Phase.TOTAL}
    assert step.phases[Phase.TLS] > 0
    parts = sum(v for p, v in step.phases.items() if p is not Phase.TOTAL)
    assert parts == pytest.approx(step.phases[Phase.TOTAL], abs=1e-6)

    [received] = server.received
    assert received.mail_from == USERNAME
    assert received.rcpt_tos == ["care@care.test"]
    message = received.message
    run_id = str(message["Subject"]).removeprefix("carewatch ")
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert re.fullmatch(rf"<{run_id}\.[0-9a-f]{{16}}@carewatch>", str(message["Message-ID"]))
    assert message["From"] == f"Care Probe <{USERNAME}>"
    assert message["To"] == "care@care.test"
    assert message["X-Carewatch-Channel"] == "email"
    assert message["Date"]
    body = message.get_body()
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text == "Hello, my roaming does not work ({journey} j).\n"


async def test_the_steps_headers_may_replace_the_message_id(
    mail_server: Start, ca_file: str
) -> None:
    server = await mail_server()
    headers = {"Message-ID": "<${run_id}@care.test>", "Reply-To": "replies@care.test"}
    result = await run(send(server.port, tls={"ca_file": ca_file}, headers=headers))
    assert result.ok, result.to_dict()
    message = server.received[0].message
    assert len(message.get_all("Message-ID") or []) == 1
    assert str(message["Message-ID"]).endswith("@care.test>")
    assert message["Reply-To"] == "replies@care.test"


async def test_implicit_tls(mail_server: Start, ca_file: str) -> None:
    server = await mail_server(security="tls", auth=False)
    step = send(server.port, security="tls", tls={"ca_file": ca_file})
    del step["smtp"]["username"], step["smtp"]["password"]
    result = await run(step)
    assert result.ok, result.to_dict()
    assert result.final.steps[0].phases[Phase.TLS] > 0
    assert len(server.received) == 1


async def test_plain_smtp_without_auth(mail_server: Start) -> None:
    server = await mail_server(security="none", auth=False)
    step = send(server.port, security="none", to=["care@care.test", "billing@care.test"])
    del step["smtp"]["username"], step["smtp"]["password"]
    result = await run(step)
    assert result.ok, result.to_dict()
    assert set(result.final.steps[0].phases) == {Phase.DNS, Phase.CONNECT, Phase.WAIT, Phase.TOTAL}
    assert server.received[0].rcpt_tos == ["care@care.test", "billing@care.test"]


# --- refusals ---------------------------------------------------------------------------------


async def test_a_wrong_password_is_refused(mail_server: Start, ca_file: str) -> None:
    server = await mail_server()
    step = failed(await run(send(server.port, tls={"ca_file": ca_file}, password="wrong")))
    assert step.reason is Reason.HTTP_STATUS
    assert step.status == 535
    assert step.message == (
        f"SMTP 535 to AUTH as {USERNAME}: 5.7.8 Authentication credentials invalid"
    )
    assert server.received == []


async def test_a_refused_recipient_is_named(mail_server: Start, ca_file: str) -> None:
    server = await mail_server()
    step = failed(await run(send(server.port, tls={"ca_file": ca_file}, to=REFUSED)))
    assert step.reason is Reason.HTTP_STATUS
    assert step.status == 550
    assert step.message == f"SMTP 550 to RCPT TO:<{REFUSED}>: 5.1.1 mailbox unknown"
    assert server.received == []


async def test_one_refused_recipient_of_two_fails_the_step(
    mail_server: Start, ca_file: str
) -> None:
    server = await mail_server()
    step = failed(
        await run(send(server.port, tls={"ca_file": ca_file}, to=["care@care.test", REFUSED]))
    )
    assert step.reason is Reason.HTTP_STATUS
    assert step.message == f"SMTP 550 to RCPT TO:<{REFUSED}>: 5.1.1 mailbox unknown"
    assert server.received[0].rcpt_tos == ["care@care.test"]  # the other one got it


async def test_auth_on_a_server_without_it_is_protocol(
    raw_server: Callable[..., Awaitable[int]],
) -> None:
    port = await raw_server(
        b"220 mail.care.test ESMTP\r\n", ehlo=b"250-mail.care.test\r\n250 8BITMIME\r\n"
    )
    step = failed(await run(send(port, security="none")))
    assert step.reason is Reason.PROTOCOL
    assert step.message == (
        f"AUTH as {USERNAME}: the server offers no AUTH; carewatch speaks CRAM-MD5, PLAIN and LOGIN"
    )


# --- TLS --------------------------------------------------------------------------------------


async def test_an_untrusted_certificate_after_starttls_is_tls(mail_server: Start) -> None:
    server = await mail_server()
    step = failed(await run(send(server.port)))
    assert step.reason is Reason.TLS
    assert step.message.startswith("untrusted issuer: self-signed or unknown CA for 127.0.0.1 (")
    assert server.received == []


async def test_an_untrusted_certificate_with_implicit_tls_is_tls(mail_server: Start) -> None:
    server = await mail_server(security="tls", auth=False)
    step = failed(await run(send(server.port, security="tls")))
    assert step.reason is Reason.TLS
    assert step.message.startswith("untrusted issuer: self-signed or unknown CA for 127.0.0.1 (")
    assert step.cert_expiry is not None  # read over a second, unverified handshake


async def test_a_server_without_starttls_is_tls(mail_server: Start, ca_file: str) -> None:
    server = await mail_server(security="none", auth=False)
    step = failed(await run(send(server.port, tls={"ca_file": ca_file})))
    assert step.reason is Reason.TLS
    assert step.message == "127.0.0.1 does not offer STARTTLS"


async def test_implicit_tls_against_a_plain_server_is_tls(mail_server: Start, ca_file: str) -> None:
    server = await mail_server(security="none", auth=False)
    step = failed(await run(send(server.port, security="tls", tls={"ca_file": ca_file})))
    assert step.reason is Reason.TLS
    assert "did not answer in TLS" in step.message


# --- servers that misbehave -------------------------------------------------------------------


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """A server that writes ``greeting`` (or nothing), answers each EHLO with ``ehlo`` and
    anything else with 502, until the client hangs up."""
    servers: list[asyncio.Server] = []

    async def start(greeting: bytes | None, *, ehlo: bytes = b"502 no\r\n") -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                if greeting is not None:
                    writer.write(greeting)
                async with asyncio.timeout(5):
                    while line := await reader.readline():
                        writer.write(ehlo if line.upper().startswith(b"EHLO") else b"502 no\r\n")
            except (ConnectionError, TimeoutError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_refusing_greeting(raw_server: Callable[..., Awaitable[int]]) -> None:
    port = await raw_server(b"554 5.3.2 no service here\r\n")
    step = failed(await run(send(port, security="none")))
    assert step.reason is Reason.HTTP_STATUS
    assert step.status == 554
    assert step.message == "SMTP 554 to the connection: 5.3.2 no service here"


async def test_a_server_that_never_greets_times_out(
    raw_server: Callable[..., Awaitable[int]],
) -> None:
    port = await raw_server(None)
    started = time.perf_counter()
    step = failed(await run({**send(port), "timeout": "300ms"}))
    assert step.reason is Reason.TIMEOUT
    assert step.message == "step timeout 300ms reached while waiting for the response"
    assert time.perf_counter() - started < 0.4


async def test_a_closed_port_is_connect() -> None:
    port = free_port()
    step = failed(await run(send(port)))
    assert step.reason is Reason.CONNECT
    assert step.message == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert step.status is None


async def test_a_header_with_a_line_break_is_protocol() -> None:
    step = failed(await run(send(free_port(), subject="a\r\nBcc: everyone@care.test")))
    assert step.reason is Reason.PROTOCOL
    assert step.message.startswith("cannot build the email: ")


async def test_an_address_that_cannot_be_sent_is_protocol(mail_server: Start) -> None:
    server = await mail_server(security="none", auth=False)
    step = send(server.port, security="none", to='care "desk <care@care.test')
    del step["smtp"]["username"], step["smtp"]["password"]
    failure = failed(await run(step))
    assert failure.reason is Reason.PROTOCOL
    assert "not permitted in an SMTP mailbox" in failure.message
    assert server.received == []


# --- validation -------------------------------------------------------------------------------

EMAIL: Final = {"from": "a@care.test", "to": "b@care.test", "subject": "s"}


@pytest.mark.parametrize(
    ("smtp", "message"),
    [
        ({"address": "mail:25", "username": "u", **EMAIL}, "both username and password"),
        ({"address": "mail:x", **EMAIL}, "with a port from 1 to 65535"),
        ({"address": "mail", "security": "ssl", **EMAIL}, "expected 'starttls', 'tls' or 'none'"),
        ({"address": "mail", "from": "a@care.test", "subject": "s"}, "missing required key 'to'"),
    ],
)
def test_bad_smtp_steps_are_config_errors(smtp: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one_journey({"name": "s", "smtp": smtp}, channel=journeys.EMAIL, **VARIABLES)
    assert message in str(caught.value)
