"""TLS for every step kind: SSL contexts for a step's ``tls`` options, the peer certificate's
expiry, and failure messages that say which kind of TLS failure it was.

Nothing here knows aiohttp, so the HTTP, WebSocket, TCP and SMTP runners share it::

    context = contexts.context(step.tls)          # TlsSetupError names a missing or bad file
    ...handshake on the runner's own transport...
    ctx.cert_expiry = peer_expiry(transport.get_extra_info("ssl_object"))

and, when the handshake failed::

    certificate = await presented_certificate(host, port, server_name=step.tls.server_name)
    ctx.cert_expiry = certificate_expiry(certificate)
    Failure(Reason.TLS, describe_tls_error(exc, host=host, certificate=certificate))
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import re
import ssl
from typing import Final

from cryptography import x509

from probes.errors import TlsSetupError
from probes.model.steps import Tls

#: How long the second, unverified handshake that reads a rejected certificate may take. It only
#: enriches a failure, and the server has just answered one handshake; it runs within the step's
#: time budget (its time is not counted in the step's phases).
PEEK_TIMEOUT: Final = 1.0
#: Names of a certificate listed in a hostname-mismatch message, at most.
MAX_NAMES_SHOWN: Final = 4

# OpenSSL X509_V_ERR_* codes, as in ssl.SSLCertVerificationError.verify_code.
_NOT_YET_VALID: Final = 9
_EXPIRED: Final = 10
_UNTRUSTED: Final = frozenset(
    {
        2,  # unable to get issuer certificate
        18,  # self-signed certificate
        19,  # self-signed certificate in certificate chain
        20,  # unable to get local issuer certificate
        21,  # unable to verify the first certificate
        27,  # certificate not trusted
    }
)
_NAME_MISMATCH: Final = frozenset({62, 64})  # hostname mismatch, IP address mismatch

# OpenSSL reasons of alerts a server sends about the client's certificate.
_CLIENT_CERT_REQUIRED: Final = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
_CLIENT_CERT_REJECTED: Final = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)
_HANDSHAKE_REFUSED: Final = "SSLV3_ALERT_HANDSHAKE_FAILURE"
_NOT_TLS: Final = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
)
_NO_COMMON_VERSION: Final = frozenset({"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"})

_SSL_REASON: Final = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")
_SSL_NOISE: Final = re.compile(r"^\[[A-Z0-9]+: [A-Z0-9_]+\] | \(_ssl\.c:\d+\)$")
_QUOTED: Final = re.compile(r"'([^']+)'")


class TlsContexts:
    """A cache of ``ssl.SSLContext`` by ``Tls`` options (they are frozen, hence hashable).

    A context whose files fail to load is not cached: the next run tries the files again.
    """

    def __init__(self) -> None:
        self._cache: dict[Tls, ssl.SSLContext] = {}

    def context(self, options: Tls) -> ssl.SSLContext:
        cached = self._cache.get(options)
        if cached is None:
            cached = self._cache[options] = _build(options)
        return cached


def _build(options: Tls) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"cannot load tls.ca_file {options.ca_file}: {ssl_message(exc)}"
        ) from exc
    if options.cert_file:
        files = f"tls.cert_file {options.cert_file}"
        if options.key_file:
            files += f" with tls.key_file {options.key_file}"
        try:
            context.load_cert_chain(options.cert_file, options.key_file, password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot load {files}: {ssl_message(exc)}") from exc
        except _EncryptedKey as exc:
            raise TlsSetupError(f"cannot load {files}: the key is encrypted") from exc
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _EncryptedKey(TlsSetupError):
    """The key file asks for a passphrase: ``_build`` words the TlsSetupError to report."""


def _no_password() -> bytes:
    # Without a callback, OpenSSL would prompt for a passphrase on the terminal, stalling the agent.
    raise _EncryptedKey


def ssl_message(exc: BaseException) -> str:
    """An ssl or OS error as a short phrase, without OpenSSL's ``[SSL: X]`` and source location.

    >>> ssl_message(ssl.SSLError(1, "[SSL: NO_CIPHERS] no ciphers (_ssl.c:1006)"))
    'no ciphers'
    """
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return _SSL_NOISE.sub("", text) or type(exc).__name__


def ssl_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason code of an ssl error, such as ``TLSV13_ALERT_CERTIFICATE_REQUIRED``.

    Also found in errors that only kept the text, as aiohttp's ClientOSError does when TLS
    fails after the handshake.
    """
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and isinstance(reason, str):
        return reason
    found = _SSL_REASON.search(str(exc))
    return found.group(1) if found else None


def describe_tls_error(
    exc: BaseException, *, host: str | None = None, certificate: bytes | None = None
) -> str:
    """What went wrong in a TLS handshake, by kind, for a step's message.

    ``host`` is the name that was verified (the URL's host, or ``tls.server_name``);
    ``certificate`` the DER certificate the server presented, when known (see
    ``presented_certificate``), which adds dates and names:

    * ``certificate expired on 2026-01-02 (care.example.com)``
    * ``untrusted issuer: self-signed or unknown CA for 127.0.0.1 (unable to get local issuer
      certificate; issuer O=Example CA)``
    * ``hostname mismatch: certificate is for localhost, not 127.0.0.1``
    * ``client certificate required by the server``, ``client certificate rejected by the
      server (unknown ca)``
    * ``TLS handshake failed: ...`` for the rest
    """
    cert = _load(certificate)
    where = f" ({host})" if host else ""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, detail = exc.verify_code, ssl_message(exc)
        if code == _EXPIRED:
            on = f" on {_day(cert.not_valid_after_utc)}" if cert else ""
            return f"certificate expired{on}{where}"
        if code == _NOT_YET_VALID:
            since = f" until {_day(cert.not_valid_before_utc)}" if cert else " yet"
            return f"certificate not valid{since}{where}"
        if code in _UNTRUSTED:
            issuer = f"; issuer {cert.issuer.rfc4514_string()}" if cert else ""
            target = f" for {host}" if host else ""
            return f"untrusted issuer: self-signed or unknown CA{target} ({detail}{issuer})"
        if code in _NAME_MISMATCH:
            quoted = _QUOTED.search(detail)
            checked = quoted.group(1) if quoted else host or "the host"
            if cert is None:
                return f"hostname mismatch: certificate is not valid for {checked}"
            return f"hostname mismatch: certificate is for {_names(cert)}, not {checked}"
        return f"certificate{' of ' + host if host else ''} rejected: {detail}"
    reason = ssl_reason(exc)
    if reason == _CLIENT_CERT_REQUIRED:
        return "client certificate required by the server"
    if reason in _CLIENT_CERT_REJECTED:
        return f"client certificate rejected by the server ({ssl_message(exc)})"
    if reason == _HANDSHAKE_REFUSED:
        return (
            "TLS handshake failed: the server refused it (no protocol or cipher in common, "
            "or it requires a client certificate)"
        )
    if reason in _NOT_TLS:
        return f"TLS handshake failed: the server did not answer in TLS{where}"
    if reason in _NO_COMMON_VERSION:
        return f"TLS handshake failed: no TLS version in common with the server{where}"
    if reason is None and isinstance(exc, ConnectionError | EOFError):
        return f"TLS handshake failed: the server closed the connection ({ssl_message(exc)})"
    return f"TLS handshake failed: {ssl_message(exc)}"


def peer_expiry(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> float | None:
    """Unix time the peer's leaf certificate expires, or None (no TLS, no certificate).

    Works with verification off too (``insecure: true``), where ``getpeercert()`` is empty::

        ctx.cert_expiry = peer_expiry(writer.get_extra_info("ssl_object"))
    """
    if ssl_object is None:
        return None
    try:
        certificate = ssl_object.getpeercert(binary_form=True)
    except ValueError:  # the handshake is not done
        return None
    return certificate_expiry(certificate)


def certificate_expiry(certificate: bytes | None) -> float | None:
    """Unix time a DER certificate expires (its notAfter), or None if there is none to read."""
    cert = _load(certificate)
    return cert.not_valid_after_utc.timestamp() if cert else None


async def presented_certificate(
    host: str, port: int, *, server_name: str | None = None
) -> bytes | None:
    """The DER certificate a server presents, read over a second, unverified handshake.

    For messages and expiry after verification failed; None if it cannot be had in time.
    Nothing is sent once the handshake is done.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(PEEK_TIMEOUT):
            transport, _ = await loop.create_connection(
                asyncio.Protocol,
                host,
                port,
                ssl=_peek_context(),
                server_hostname=server_name or host,
            )
    except (OSError, TimeoutError):
        return None
    try:
        ssl_object = transport.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        transport.abort()


@functools.cache
def _peek_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _load(certificate: bytes | None) -> x509.Certificate | None:
    if not certificate:
        return None
    try:
        return x509.load_der_x509_certificate(certificate)
    except ValueError:
        return None


def _names(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.OID_COMMON_NAME)]
    if not names:
        return "no name"
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    more = len(names) - MAX_NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _day(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d")
