"""A throwaway self-signed TLS certificate for the demo SMTP server's STARTTLS.

It is made fresh at each start with the ``openssl`` command (no Python crypto package needed),
for ``localhost``, 127.0.0.1 and ::1. Clients trust it by loading its PEM as their CA::

    tls = await make_demo_tls()
    server_context = tls.server_context
    client_context = ssl.create_default_context(cadata=tls.cert_pem)
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

OPENSSL: Final = "openssl"
SUBJECT: Final = "/CN=democare demo SMTP"
SUBJECT_ALT_NAMES: Final = "DNS:localhost,IP:127.0.0.1,IP:::1"
VALID_DAYS: Final = 30
OPENSSL_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class DemoTls:
    """The certificate (its PEM doubles as the CA clients trust) and a server context using it."""

    cert_pem: str
    server_context: ssl.SSLContext


async def make_demo_tls() -> DemoTls:
    """A fresh self-signed certificate and key; OSError when ``openssl`` cannot make one."""
    return await asyncio.to_thread(_make_demo_tls)


def _make_demo_tls() -> DemoTls:
    openssl = shutil.which(OPENSSL)
    if openssl is None:
        raise OSError("cannot make the demo TLS certificate: no 'openssl' command on PATH")
    with tempfile.TemporaryDirectory(prefix="democare-tls-") as folder:
        cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
        command = [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
            "-days",
            str(VALID_DAYS),
            "-subj",
            SUBJECT,
            "-addext",
            f"subjectAltName={SUBJECT_ALT_NAMES}",
            "-addext",
            "keyUsage=critical,digitalSignature,keyCertSign",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ]
        try:
            subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=True,
                timeout=OPENSSL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise OSError("cannot make the demo TLS certificate: openssl timed out") from None
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip()
            raise OSError(f"cannot make the demo TLS certificate: {detail}") from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        return DemoTls(cert_pem=cert_path.read_text(), server_context=context)
