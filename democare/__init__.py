"""democare: a simulated mobile customer-care backend for carewatch to monitor.

It serves four channels on loopback (the ``app``, ``self_service`` help centre, ``locator`` and
the ``agent`` console) and lets an operator inject faults into any of them through /_faults.
Run it with ``python -m democare --listen 127.0.0.1:8900``, or in-process::

    from aiohttp import web
    from democare import create_app

    web.run_app(create_app(seed=7), host="127.0.0.1", port=8900)

The only public API is what this module exports.
"""

from __future__ import annotations

from democare._app import create_app

__all__ = ["create_app"]
