"""The ``email`` channel's SMTP server: mail to care gets an auto-acknowledgement on a webhook.

It runs in the application's own event loop (aiosmtpd), requires STARTTLS and then AUTH PLAIN or
LOGIN, accepts mail for ``care@carewatch.example`` only (550 otherwise) up to 256 KiB, and
POSTs the acknowledgement to the ``email`` webhook in inbound-parse style::

    {"from": "care@carewatch.example", "to": "<MAIL FROM>", "subject": "Re: <subject>",
     "text": "We received your message: <subject>", "in_reply_to": "<Message-ID>" | null,
     "received_at": "2025-06-01T08:30:00.000Z"}

Faults on the email channel reach the SMTP conversation through the path ``/email/smtp`` (a
fault on the whole channel covers it too): ``down`` closes each connection at once, ``garbage``
greets with HTML and hangs up, ``slow`` delays every reply, ``error`` (or a ``flaky`` roll)
answers RCPT and DATA with 451, ``no_reply`` and ``late_reply`` hold back the acknowledgement.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hmac
import json
import logging
import secrets
import weakref
from typing import Any, AnyStr, Final

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from democare._appkeys import DELIVERER, FAULTS, STATE, TIMINGS
from democare._channels import Channel
from democare._fault_injection import GARBAGE_BODY
from democare._faults import FaultMode
from democare._http import JSON_CONTENT_TYPE, iso8601
from democare._tls import DemoTls, make_demo_tls

CARE_ADDRESS: Final = "care@carewatch.example"
SMTP_USERNAME: Final = "probe@carewatch.example"
SMTP_PASSWORD: Final = "smtp-password"
AUTH_MECHANISMS: Final = ("PLAIN", "LOGIN")
MAX_MESSAGE_BYTES: Final = 256 * 1024
IDLE_TIMEOUT_S: Final = 60.0
SMTP_FAULT_PATH: Final = "/email/smtp"
"""The path faults use to reach the SMTP conversation; a fault on all of /email/ covers it."""
HOSTNAME: Final = "localhost"
IDENT: Final = "democare ESMTP"
NO_SUBJECT: Final = "(no subject)"
MS_PER_SECOND: Final = 1000

REPLY_TEMPORARY_FAILURE: Final = "451 4.3.0 Temporary failure, try again later"
REPLY_UNKNOWN_MAILBOX: Final = f"550 5.1.1 No such mailbox here; write to {CARE_ADDRESS}"
REPLY_OK: Final = "250 OK"
_QUEUE_ID_BYTES: Final = 6

_log = logging.getLogger(__name__)


class SmtpServer:
    """The in-process SMTP server of one application: where it listens and the CA to trust.

    ``create_app(smtp=("127.0.0.1", 0))`` makes one that starts and stops with the application;
    ``smtp_server(app)`` hands it to tests, which read the bound ``port`` once the app runs.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._tls: DemoTls | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def port(self) -> int:
        """The port bound (the requested one, or the one the system chose for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def ca_pem(self) -> str:
        """The PEM of the self-signed certificate clients trust for STARTTLS."""
        if self._tls is None:
            raise RuntimeError("the SMTP server has not started")
        return self._tls.cert_pem

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    async def start(self, app: web.Application) -> None:
        """Make the certificate and listen; OSError when either fails."""
        self._tls = await make_demo_tls()
        handler = _CareMailbox(app)
        loop = asyncio.get_running_loop()
        tls_context = self._tls.server_context

        def new_connection() -> asyncio.Protocol:
            fault = app[FAULTS].covering(SMTP_FAULT_PATH)
            if fault is not None and fault.mode is FaultMode.DOWN:
                return _Hangup(greeting=None)
            if fault is not None and fault.mode is FaultMode.GARBAGE:
                return _Hangup(greeting=GARBAGE_BODY)
            session = _CareSmtp(
                app,
                handler,
                loop=loop,
                hostname=HOSTNAME,
                ident=IDENT,
                tls_context=tls_context,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                authenticator=_authenticate,
                data_size_limit=MAX_MESSAGE_BYTES,
                timeout=IDLE_TIMEOUT_S,
            )
            self._sessions.add(session)
            return session

        self._server = await loop.create_server(new_connection, self.host, self._requested_port)
        _log.info("democare SMTP listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and hang up on every open SMTP session."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None


SMTP_SERVER: Final = web.AppKey("smtp_server", SmtpServer)
"""The application's SMTP server, when it has one."""


class _CareSmtp(SMTP):
    """aiosmtpd's SMTP with the email channel's ``slow`` fault on every reply."""

    def __init__(self, app: web.Application, handler: _CareMailbox, **options: Any) -> None:
        super().__init__(handler, **options)
        self._app = app

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    async def push(self, status: AnyStr) -> None:
        fault = self._app[FAULTS].covering(SMTP_FAULT_PATH)
        if fault is not None and fault.mode is FaultMode.SLOW:
            await asyncio.sleep(fault.delay_ms / MS_PER_SECOND)
        await super().push(status)


class _QuietSession(Session):
    """aiosmtpd's Session without the deprecation warning it logs itself on every AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Hangup(asyncio.Protocol):
    """A connection the ``down`` or ``garbage`` fault ends at once, after ``greeting`` if any."""

    def __init__(self, *, greeting: bytes | None) -> None:
        self._greeting = greeting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        if self._greeting is None:
            transport.abort()
            return
        transport.write(self._greeting + b"\r\n")
        transport.close()


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """The demo account, through PLAIN or LOGIN."""
    if mechanism not in AUTH_MECHANISMS or not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    right_login = hmac.compare_digest(auth_data.login, SMTP_USERNAME.encode())
    right_password = hmac.compare_digest(auth_data.password, SMTP_PASSWORD.encode())
    return AuthResult(success=right_login and right_password, handled=False)


class _CareMailbox:
    """aiosmtpd handler: care's mailbox, which acknowledges every mail through the webhook."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._failing():
            return REPLY_TEMPORARY_FAILURE
        if address.lower() != CARE_ADDRESS:
            return REPLY_UNKNOWN_MAILBOX
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return REPLY_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._failing():
            return REPLY_TEMPORARY_FAILURE
        queue_id = secrets.token_hex(_QUEUE_ID_BYTES)
        delay_ms = self._app[FAULTS].reply_delay_ms(
            SMTP_FAULT_PATH, normal_ms=self._app[TIMINGS].email_ack_delay_ms
        )
        if delay_ms is not None:
            acknowledgement = self._acknowledgement(envelope)
            self._app[DELIVERER].submit(
                Channel.EMAIL,
                lambda: acknowledgement,
                content_type=JSON_CONTENT_TYPE,
                delay_ms=delay_ms,
            )
        return f"250 2.0.0 OK: queued as {queue_id}"

    def _failing(self) -> bool:
        fault = self._app[FAULTS].triggered(SMTP_FAULT_PATH)
        return fault is not None and fault.mode in {FaultMode.ERROR, FaultMode.FLAKY}

    def _acknowledgement(self, envelope: Envelope) -> bytes:
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        subject = str(message.get("Subject", "")).strip() or NO_SUBJECT
        message_id = message.get("Message-ID")
        return json.dumps(
            {
                "from": CARE_ADDRESS,
                "to": envelope.mail_from,
                "subject": f"Re: {subject}",
                "text": f"We received your message: {subject}",
                "in_reply_to": str(message_id).strip() if message_id else None,
                "received_at": iso8601(self._app[STATE].now()),
            }
        ).encode()
