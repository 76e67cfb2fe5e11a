"""SMTP steps on aiosmtplib: send one email to a care address, as a customer's mail server would.

The email (From, To, Subject, Date, a Message-ID holding the run id, the step's headers and
body, all templated) goes over STARTTLS, implicit TLS or plain SMTP, with AUTH when the step
has credentials. Its reply comes back through the webhook receiver (an ``await`` step).

Phases: ``dns``, ``connect`` (TCP), ``tls`` (the STARTTLS command and handshake; with implicit
TLS the handshake and the server's greeting, which one call reads together) and ``wait`` (the
rest of the dialogue: greeting, EHLO, AUTH, MAIL, RCPT, DATA, QUIT). A reply that refuses the
email fails the step with reason ``http_status`` and the reply, e.g.
``SMTP 550 to RCPT TO:<nobody@care.example>: 5.1.1 mailbox unknown``; ``ctx.status`` is the
last reply code (250 when the email was accepted).

A connection that cannot be made and the step's own TLS files are read by the engine with
``probes.net.sockets.SOCKET_FAILURES``. aiosmtplib's exceptions are read in ``_Dialogue.run``:
the command being sent decides their reason (a refusal of STARTTLS is ``tls``).
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import os
import socket
import ssl
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Final

import aiosmtplib

from probes.engine.runner import StepContext
from probes.model.addresses import join_address, split_address
from probes.model.steps import SmtpSpec, SmtpStep, Tls
from probes.model.templating import render_str
from probes.net.sockets import cert_expiry, open_socket, tls_failure
from probes.net.timing import Timer
from probes.runs.results import Failure, Phase, Reason

#: The usual port of each ``security``: submission with STARTTLS, submissions, plain SMTP.
PORTS: Final = {"starttls": 587, "tls": 465, "none": 25}
#: How long the probe waits for the answer to QUIT: the email was accepted before it.
QUIT_WAIT: Final = 1.0
#: The right-hand side of the Message-IDs the probe makes.
MESSAGE_ID_DOMAIN: Final = "carewatch"
#: Random hex after the run id in a Message-ID: unique per email, and short enough that the
#: header fits on one line (a folded Message-ID trips some inbound-parse services).
MESSAGE_ID_RANDOM_CHARS: Final = 16
#: What EHLO says when the agent's host name cannot be said in an EHLO line.
FALLBACK_EHLO_NAME: Final = "carewatch"
_PHASES: Final = {
    "starttls": (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT),
    "tls": (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.WAIT),
    "none": (Phase.DNS, Phase.CONNECT, Phase.WAIT),
}


async def run_smtp(step: SmtpStep, ctx: StepContext) -> Failure | None:
    """Send ``step``'s email and report how the server took it."""
    spec = step.smtp
    ctx.timer = Timer(_PHASES[spec.security], first=Phase.DNS)
    try:
        host, port = split_address(
            render_str(spec.address, ctx.scope), default_port=PORTS[spec.security]
        )
    except ValueError as exc:
        return Failure(Reason.PROTOCOL, f"invalid address: {exc}")
    ctx.target = f"smtp://{join_address(host, port)}"
    try:
        message = build_message(spec, ctx.scope)
    except ValueError as exc:  # a header value with a line break, say
        return Failure(Reason.PROTOCOL, f"cannot build the email: {exc}")
    options = spec.tls or Tls()
    server_name = options.server_name or host
    context = ctx.tls.context(options) if spec.security != "none" else None
    client = aiosmtplib.SMTP(
        hostname=server_name,  # with a socket given, only the name TLS verifies
        use_tls=spec.security == "tls",
        start_tls=False,  # the runner does it, to time it
        tls_context=context,
        local_hostname=_ehlo_name(),
        timeout=None,  # the engine's timeout bounds the step
    )
    sock = await open_socket(host, port, ctx.timer)
    dialogue = _Dialogue(client, ctx, server_name, (host, port))
    try:
        return await dialogue.run(spec, message, sock)
    finally:
        client.close()


def build_message(spec: SmtpSpec, scope: Mapping[str, object]) -> EmailMessage:
    """The email ``spec`` sends in ``scope``; ValueError when a value cannot be a header.

    The step's ``headers`` come last, so they may replace any of the others (``Message-ID``).
    """
    message = EmailMessage()
    message["From"] = render_str(spec.from_, scope)
    message["To"] = ", ".join(render_str(address, scope) for address in spec.to)
    message["Subject"] = render_str(spec.subject, scope)
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    run_id = scope.get("run_id", "")
    unique = uuid.uuid4().hex[:MESSAGE_ID_RANDOM_CHARS]
    message["Message-ID"] = f"<{run_id}.{unique}@{MESSAGE_ID_DOMAIN}>"
    for name, value in spec.headers.items():
        del message[name]
        message[name] = render_str(value, scope)
    message.set_content(render_str(spec.body, scope))
    return message


class _Dialogue:
    """One SMTP session, remembering what it was doing so a failure can say so."""

    def __init__(
        self,
        client: aiosmtplib.SMTP,
        ctx: StepContext,
        server_name: str,
        address: tuple[str, int],
    ) -> None:
        self.client = client
        self.ctx = ctx
        self.server_name = server_name
        self.address = address
        self.doing = "the greeting"

    async def run(
        self, spec: SmtpSpec, message: EmailMessage, sock: socket.socket
    ) -> Failure | None:
        try:
            return await self._send(spec, message, sock)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            self.ctx.status = exc.recipients[-1].code
            return _refused([(r.recipient, r.code, r.message) for r in exc.recipients])
        except aiosmtplib.SMTPResponseException as exc:
            self.ctx.status = exc.code
            if self.doing == "STARTTLS":
                return Failure(Reason.TLS, f"STARTTLS refused: SMTP {exc.code} {exc.message}")
            return Failure(
                Reason.HTTP_STATUS, f"SMTP {exc.code} to {_command(exc, self.doing)}: {exc.message}"
            )
        except aiosmtplib.SMTPServerDisconnected as exc:
            if self.doing == "STARTTLS":
                return await self._tls_failed(exc.__cause__ or _reset())
            return Failure(Reason.CONNECT, f"the server closed the connection during {self.doing}")
        except aiosmtplib.SMTPConnectError as exc:
            return await self._not_connected(exc)
        except ssl.SSLError as exc:  # the STARTTLS handshake failed
            return await self._tls_failed(exc)
        except aiosmtplib.SMTPException as exc:  # AUTH or SMTPUTF8 not offered, say
            return Failure(Reason.PROTOCOL, f"{self.doing}: {exc.message}")
        except ConnectionError as exc:
            return Failure(Reason.CONNECT, f"connection lost during {self.doing}: {exc}")
        except ValueError as exc:  # an address aiosmtplib cannot send
            return Failure(Reason.PROTOCOL, f"{self.doing}: {exc}")

    async def _login(self, username: str, password: str) -> Failure | None:
        """AUTH once, with the first mechanism both sides know (CRAM-MD5, PLAIN, LOGIN).

        aiosmtplib's ``login`` tries the next mechanism after a refusal: that hides the
        server's answer, and hangs against servers that do not expect a second try.
        """
        client = self.client
        if client.is_ehlo_or_helo_needed:
            self.doing = "EHLO"
            await client.ehlo()
        self.doing = f"AUTH as {username}"
        methods = {
            "cram-md5": client.auth_crammd5,
            "plain": client.auth_plain,
            "login": client.auth_login,
        }
        usable = [m for m in client.supported_auth_methods if m in methods]
        if not usable:
            offered = " ".join(client.server_auth_methods).upper() or "no AUTH"
            return Failure(
                Reason.PROTOCOL,
                f"{self.doing}: the server offers {offered}; carewatch speaks CRAM-MD5, PLAIN "
                "and LOGIN",
            )
        await methods[usable[0]](username, password)
        return None

    async def _not_connected(self, exc: aiosmtplib.SMTPConnectError) -> Failure:
        """The session did not open: an implicit TLS handshake failed, or no greeting came."""
        cause = exc.__cause__
        if isinstance(cause, aiosmtplib.SMTPServerDisconnected):
            return Failure(Reason.CONNECT, "the server closed the connection before its greeting")
        if isinstance(cause, ssl.SSLError | ConnectionError):
            return await self._tls_failed(cause)
        return Failure(Reason.CONNECT, f"cannot open the SMTP session: {exc.message}")

    async def _tls_failed(self, exc: BaseException) -> Failure:
        # Only an implicit TLS port can be asked again for its certificate: after STARTTLS
        # the server speaks plain SMTP first.
        implicit = not self.doing.startswith("STARTTLS")
        failure, expiry = await tls_failure(
            exc, self.server_name, peek=self.address if implicit else None
        )
        self.ctx.cert_expiry = expiry
        return failure

    async def _send(
        self, spec: SmtpSpec, message: EmailMessage, sock: socket.socket
    ) -> Failure | None:
        client, timer = self.client, self.ctx.timer
        timer.enter(Phase.TLS if spec.security == "tls" else Phase.WAIT)
        await client.connect(sock=sock)
        if spec.security == "starttls":
            self.doing = "EHLO"
            await client.ehlo()
            if not client.supports_extension("starttls"):
                return Failure(Reason.TLS, f"{self.server_name} does not offer STARTTLS")
            self.doing = "STARTTLS"
            timer.enter(Phase.TLS)
            await client.starttls(server_hostname=self.server_name)
        timer.enter(Phase.WAIT)
        self.ctx.cert_expiry = cert_expiry(client.transport)
        if spec.username is not None and spec.password is not None:
            failure = await self._login(
                render_str(spec.username, self.ctx.scope),
                render_str(spec.password, self.ctx.scope),
            )
            if failure is not None:
                return failure
        self.doing = "the email (MAIL FROM, RCPT TO, DATA)"
        refused, _ = await client.send_message(message)
        self.ctx.status = aiosmtplib.SMTPStatus.completed
        failure = None
        if refused:  # accepted for some recipients only: the others never get it
            failure = _refused([(to, r.code, r.message) for to, r in refused.items()])
            self.ctx.status = max(r.code for r in refused.values())
        self.doing = "QUIT"
        try:
            async with asyncio.timeout(QUIT_WAIT):
                await client.quit()
        except (TimeoutError, aiosmtplib.SMTPException, ConnectionError):
            pass  # the email is accepted; a server slow to say goodbye does not undo that
        return failure


def _refused(recipients: list[tuple[str, int, str]]) -> Failure:
    """Every refused recipient, with the reply that refused it."""
    said = "; ".join(f"SMTP {code} to RCPT TO:<{to}>: {text}" for to, code, text in recipients)
    return Failure(Reason.HTTP_STATUS, said)


def _command(exc: aiosmtplib.SMTPResponseException, doing: str) -> str:
    """The command a refusing reply answered."""
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return "the connection"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return "EHLO"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"MAIL FROM:<{exc.sender}>"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "DATA"
    return doing


def _reset() -> ConnectionResetError:
    return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))


def _ehlo_name() -> str:
    name = socket.gethostname()
    if not name or not name.isascii() or any(c.isspace() or ord(c) < 32 for c in name):
        return FALLBACK_EHLO_NAME
    return name
