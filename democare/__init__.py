"""democare: a simulated mobile customer-care backend for carewatch to monitor.

It serves every care channel on loopback: the ``app``, the ``self_service`` help centre, the
store ``locator``, the ``agent`` console, a ``chat`` WebSocket with a bot that hands over to an
agent, an ``sms`` gateway, a ``push`` service, ``email`` over SMTP, ``voice`` call-backs and
``video`` sessions. SMS, push and email answer later, by POSTing signed deliveries to webhooks.
An operator injects faults into any channel through /_faults, including replies that never come
(``no_reply``) or come late (``late_reply``).

Run it with ``python -m democare --listen 127.0.0.1:8900 --webhook sms=http://127.0.0.1:9000/sms``
(SMTP on 127.0.0.1:8925 unless ``--smtp-listen off``), or in-process::

    from aiohttp import web
    from democare import create_app

    web.run_app(create_app(seed=7), host="127.0.0.1", port=8900)

Tests start the SMTP server in-process with the application, on a free port::

    app = create_app(smtp=("127.0.0.1", 0), webhooks={"email": receiver_url})
    ...  # once the app runs (aiohttp test server, AppRunner):
    server = smtp_server(app)
    server.port, server.ca_pem  # where to connect, and the CA to trust for STARTTLS

The only public API is what this module exports.
"""

from __future__ import annotations

from democare._app import create_app, smtp_server
from democare._smtp import SmtpServer

__all__ = ["SmtpServer", "create_app", "smtp_server"]
