"""Email: smtplib (in a thread) against democare's in-process aiosmtpd, acks on a real webhook.

Every conversation goes through STARTTLS, trusting the CA democare serves, then AUTH.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest
from aiohttp import web

from democare import create_app, smtp_server
from tests._support.timing import CLOCK_SLACK

if TYPE_CHECKING:
    from conftest import Client, MakeCare, Receiver

SECRET: Final = "demo-webhook-secret"
CARE: Final = "care@carewatch.example"
SENDER: Final = "probe@carewatch.example"
USERNAME: Final = "probe@carewatch.example"
PASSWORD: Final = "smtp-password"
SMTP_TIMEOUT_S: Final = 5.0
QUIET_S: Final = 0.6
LATE_MS: Final = 800


class Smtp:
    """Where democare's SMTP server listens and the CA to trust, for smtplib in a thread."""

    def __init__(self, app: web.Application) -> None:
        server = smtp_server(app)
        assert server is not None
        self.port = server.port
        self.context = ssl.create_default_context(cadata=server.ca_pem)

    def connect(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=SMTP_TIMEOUT_S)

    def session(self, *, password: str = PASSWORD) -> smtplib.SMTP:
        """A connection past STARTTLS and AUTH."""
        connection = self.connect()
        try:
            connection.starttls(context=self.context)
            connection.login(USERNAME, password)
        except smtplib.SMTPException:
            connection.close()
            raise
        return connection

    def send(self, message: EmailMessage, *, to: str = CARE) -> dict[str, tuple[int, bytes]]:
        with self.session() as connection:
            return connection.send_message(message, from_addr=SENDER, to_addrs=[to])


def mail(subject: str = "Roaming charges", message_id: str | None = "<m1@probe.example>") -> Any:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = CARE
    message["Subject"] = subject
    if message_id is not None:
        message["Message-ID"] = message_id
    message.set_content("I was charged for roaming in Spain.")
    return message


@pytest.fixture
async def care(make_care: MakeCare) -> Client:
    return await make_care(smtp=("127.0.0.1", 0))


@pytest.fixture
def smtp(care: Client) -> Smtp:
    return Smtp(care.app)


async def set_fault(client: Client, **spec: object) -> None:
    response = await client.post("/_faults", json={"channel": "email", **spec})
    assert response.status == 200, await response.text()


async def test_mail_to_care_is_acknowledged_on_the_webhook(smtp: Smtp, receiver: Receiver) -> None:
    refused = await asyncio.to_thread(smtp.send, mail("Roaming charges"))
    assert refused == {}

    delivery = await receiver.next()
    assert delivery.channel == "email"
    assert delivery.headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Democare-Signature"] == expected
    acknowledgement = json.loads(delivery.body)
    received_at = datetime.fromisoformat(acknowledgement.pop("received_at"))
    assert received_at.tzinfo == UTC
    assert acknowledgement == {
        "from": CARE,
        "to": SENDER,
        "subject": "Re: Roaming charges",
        "text": "We received your message: Roaming charges",
        "in_reply_to": "<m1@probe.example>",
    }


async def test_a_mail_without_message_id_is_acknowledged_with_null(
    smtp: Smtp, receiver: Receiver
) -> None:
    await asyncio.to_thread(smtp.send, mail("No signal", message_id=None))
    acknowledgement = json.loads((await receiver.next()).body)
    assert acknowledgement["in_reply_to"] is None
    assert acknowledgement["subject"] == "Re: No signal"


async def test_smtp_requires_starttls_then_auth(smtp: Smtp, receiver: Receiver) -> None:
    def without_tls() -> tuple[str, tuple[int, bytes]]:
        with smtp.connect() as connection:
            connection.ehlo()
            features = connection.esmtp_features
            assert "starttls" in features
            assert "auth" not in features
            return features["size"], connection.mail(SENDER)

    size, refused = await asyncio.to_thread(without_tls)
    assert size == str(256 * 1024)
    assert refused[0] == 530

    def wrong_password() -> None:
        smtp.session(password="wrong")

    with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
        await asyncio.to_thread(wrong_password)
    assert failed.value.smtp_code == 535

    def not_logged_in() -> tuple[int, bytes]:
        with smtp.connect() as connection:
            connection.starttls(context=smtp.context)
            connection.ehlo()
            assert sorted(connection.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
            return connection.mail(SENDER)

    assert (await asyncio.to_thread(not_logged_in))[0] == 530
    await receiver.assert_quiet(0.1)


async def test_auth_login_works_as_well_as_plain(smtp: Smtp, receiver: Receiver) -> None:
    def login_with(mechanism: str) -> None:
        with smtp.connect() as connection:
            connection.starttls(context=smtp.context)
            connection.ehlo()
            connection.user, connection.password = USERNAME, PASSWORD
            code, _ = connection.auth(mechanism, getattr(connection, f"auth_{mechanism.lower()}"))
            assert code == 235
            connection.send_message(mail(f"via {mechanism}"), from_addr=SENDER, to_addrs=[CARE])

    for mechanism in ("LOGIN", "PLAIN"):
        await asyncio.to_thread(login_with, mechanism)
    subjects = {json.loads((await receiver.next()).body)["subject"] for _ in range(2)}
    assert subjects == {"Re: via LOGIN", "Re: via PLAIN"}


async def test_mail_to_anyone_else_is_refused_with_550(smtp: Smtp, receiver: Receiver) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(smtp.send, mail(), to="sales@carewatch.example")
    code, _ = refused.value.recipients["sales@carewatch.example"]
    assert code == 550
    await receiver.assert_quiet(QUIET_S)


async def test_mail_over_256_kib_is_refused(smtp: Smtp, receiver: Receiver) -> None:
    message = mail("Big")
    message.set_content(("y" * 998 + "\n") * 270)
    with pytest.raises(smtplib.SMTPException) as refused:
        await asyncio.to_thread(smtp.send, message)
    assert "552" in str(refused.value)
    await receiver.assert_quiet(QUIET_S)


async def test_down_closes_every_smtp_connection_at_once(care: Client, smtp: Smtp) -> None:
    await set_fault(care, mode="down")
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        await asyncio.to_thread(smtp.connect)
    # A fault narrowed to the HTTP side leaves SMTP alone.
    assert (await care.delete("/_faults")).status == 200
    await set_fault(care, mode="down", path="/email/v1")
    await asyncio.to_thread(lambda: smtp.connect().quit())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await care.get("/email/v1/smtp")


async def test_garbage_greets_with_html(care: Client, smtp: Smtp) -> None:
    await set_fault(care, mode="garbage", path="/email/smtp")
    with pytest.raises((smtplib.SMTPException, ConnectionError)):
        await asyncio.to_thread(smtp.connect)


async def test_error_answers_451_and_nothing_is_acknowledged(
    care: Client, smtp: Smtp, receiver: Receiver
) -> None:
    await set_fault(care, mode="error", path="/email/smtp")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(smtp.send, mail())
    assert refused.value.recipients[CARE][0] == 451
    # The HTTP side of the channel is outside the fault's path.
    assert (await care.get("/email/v1/smtp")).status == 200
    await receiver.assert_quiet(QUIET_S)


async def test_slow_delays_every_smtp_reply(care: Client, smtp: Smtp) -> None:
    await set_fault(care, mode="slow", delay_ms=150)
    loop = asyncio.get_running_loop()

    def greet() -> None:
        with smtp.connect() as connection:
            connection.noop()

    started = loop.time()
    await asyncio.to_thread(greet)
    # The greeting, NOOP and QUIT replies each come late.
    assert loop.time() - started >= 0.45 - CLOCK_SLACK


async def test_no_reply_accepts_the_mail_but_never_acknowledges(
    care: Client, smtp: Smtp, receiver: Receiver
) -> None:
    await set_fault(care, mode="no_reply")
    assert await asyncio.to_thread(smtp.send, mail()) == {}
    await receiver.assert_quiet(QUIET_S)


async def test_late_reply_acknowledges_after_the_delay(
    care: Client, smtp: Smtp, receiver: Receiver
) -> None:
    await set_fault(care, mode="late_reply", delay_ms=LATE_MS)
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(smtp.send, mail())
    sent_at = loop.time()
    delivery = await receiver.next(wait_s=5)
    assert delivery.at - sent_at >= LATE_MS / 1000 - 0.05
    assert json.loads(delivery.body)["to"] == SENDER


async def test_the_tls_ca_and_smtp_settings_are_served(care: Client, smtp: Smtp) -> None:
    response = await care.get("/email/v1/tls-ca")
    assert response.status == 200
    assert response.content_type == "application/x-pem-file"
    pem = await response.text()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    ssl.create_default_context(cadata=pem)
    settings = await care.get("/email/v1/smtp")
    assert await settings.json() == {
        "host": "127.0.0.1",
        "port": smtp.port,
        "starttls": True,
        "auth_mechanisms": ["PLAIN", "LOGIN"],
        "care_address": CARE,
        "max_message_bytes": 256 * 1024,
    }


async def test_without_smtp_the_email_endpoints_are_not_found(aiohttp_client: Any) -> None:
    client: Client = await aiohttp_client(create_app(seed=1))
    assert smtp_server(client.app) is None
    for path in ("/email/v1/tls-ca", "/email/v1/smtp"):
        response = await client.get(path)
        assert response.status == 404
        assert (await response.json())["detail"] == "democare runs without SMTP"


async def test_stopping_the_app_hangs_up_open_smtp_sessions(
    aiohttp_server: Any,
) -> None:
    app = create_app(smtp=("127.0.0.1", 0))
    server = await aiohttp_server(app)
    smtp = Smtp(app)
    connection = await asyncio.to_thread(smtp.session)
    await server.close()
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        await asyncio.to_thread(connection.noop)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(smtp.connect)
