"""A pager for the demo: a webhook receiver that stands in for the on-call engineer's phone.

Alertmanager's webhook receiver POSTs a JSON notification (``status``, ``receiver``,
``groupLabels``, ``alerts`` with their ``labels`` and ``annotations``) to a URL. ``Pager``
serves every path on one loopback port, in a thread of its own, and records each notification
with the path it came to (``/page``, ``/ticket``...) and when it arrived::

    pager = Pager(on_notification=lambda n: print(describe(n)))
    url = pager.start()          # http://127.0.0.1:PORT; every path is a receiver
    ...                          # Alertmanager sends to f"{url}/page"
    [n.path for n in pager.notifications()]   # ['/page']
    pager.stop()

``make stack`` prints each one with ``describe``; the end-to-end test of the alerts
(tests/alerts/test_end_to_end.py) counts them and times them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aiohttp import web

HOST: Final = "127.0.0.1"
#: Alertmanager's notifications are a few kilobytes; anything bigger is not one.
MAX_BODY_BYTES: Final = 1024 * 1024
START_TIMEOUT_SECONDS: Final = 10.0
STOP_TIMEOUT_SECONDS: Final = 5.0
#: The annotations ``describe`` prints, in this order, with these headings.
SHOWN_ANNOTATIONS: Final = (
    ("description", "why"),
    ("runbook_url", "runbook"),
    ("dashboard_url", "dashboard"),
)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification: the path it was POSTed to, Alertmanager's JSON, and its arrival."""

    path: str
    body: Mapping[str, Any]
    at: float
    """``time.monotonic()`` when it arrived."""
    wall: float
    """``time.time()`` when it arrived."""

    @property
    def status(self) -> str:
        """``firing`` while one of its alerts fires, else ``resolved``."""
        return str(self.body.get("status", ""))

    @property
    def alerts(self) -> list[Mapping[str, Any]]:
        """Its alerts, each with ``status``, ``labels``, ``annotations``, ``startsAt``..."""
        alerts = self.body.get("alerts", [])
        return list(alerts) if isinstance(alerts, list) else []

    def alertnames(self, status: str | None = None) -> list[str]:
        """The ``alertname`` of each alert (of those with ``status``, if given), sorted."""
        return sorted(
            str(alert.get("labels", {}).get("alertname", ""))
            for alert in self.alerts
            if status in (None, alert.get("status"))
        )


class Pager:
    """A webhook receiver on loopback that records every notification, in arrival order.

    It runs its own event loop in a daemon thread, so that synchronous code (a test that sleeps,
    a command that waits for signals) can read ``notifications()`` at any time.
    ``on_notification`` is called in that thread for each one, after it is recorded.
    """

    def __init__(
        self,
        *,
        host: str = HOST,
        port: int = 0,
        on_notification: Callable[[Notification], None] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._on_notification = on_notification
        self._received: list[Notification] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.url = ""
        """``http://HOST:PORT`` once started."""

    def start(self) -> str:
        """Serve, and return the base URL; OSError when the port cannot be listened on."""
        self._thread = threading.Thread(target=self._run, name="pager", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_SECONDS):
            raise OSError(f"the pager did not start within {START_TIMEOUT_SECONDS:g}s")
        if self._error is not None:
            raise OSError(f"the pager cannot listen on {self._host}:{self._port}: {self._error}")
        return self.url

    def stop(self) -> None:
        """Stop serving; what was recorded stays readable."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)

    def notifications(self) -> list[Notification]:
        """Every notification so far, oldest first."""
        with self._lock:
            return list(self._received)

    def __enter__(self) -> Pager:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which is waiting
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/{path:.*}", self._receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            # Bound here, so that the port the system picked for port 0 can be read back.
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.create_server((self._host, self._port), family=family)
            await web.SockSite(runner, sock).start()
            self.url = f"http://{self._host}:{sock.getsockname()[1]}"
            self._started.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.Response(status=400, text="expected Alertmanager's webhook JSON\n")
        if not isinstance(body, dict):
            return web.Response(status=400, text="expected a JSON object\n")
        notification = Notification(
            path=request.path, body=body, at=time.monotonic(), wall=time.time()
        )
        with self._lock:
            self._received.append(notification)
        if self._on_notification is not None:
            self._on_notification(notification)
        return web.Response(text="ok\n")


def describe(notification: Notification) -> str:
    """A notification as an on-call engineer would like to read it on a terminal.

    >>> print(describe(Notification(path="/page", at=0.0, wall=0.0, body={
    ...     "status": "firing", "receiver": "pager", "alerts": [{"status": "firing",
    ...     "labels": {"alertname": "ChannelDown", "channel": "app", "severity": "page"},
    ...     "annotations": {"summary": "The app channel is down",
    ...                     "runbook_url": "https://runbooks.example.com/app"}}]})))
    ... # doctest: +ELLIPSIS
    [...] /page (receiver pager): 1 alert
      FIRING ChannelDown {channel=app, severity=page}
        The app channel is down
        runbook:   https://runbooks.example.com/app
    """
    when = datetime.fromtimestamp(notification.wall).strftime("%H:%M:%S")
    alerts = notification.alerts
    lines = [
        f"[{when}] {notification.path} (receiver {notification.body.get('receiver', '?')}): "
        f"{len(alerts)} alert{'' if len(alerts) == 1 else 's'}"
    ]
    for alert in alerts:
        labels: Mapping[str, str] = alert.get("labels", {})
        annotations: Mapping[str, str] = alert.get("annotations", {})
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        lines.append(
            f"  {str(alert.get('status', '?')).upper()} {labels.get('alertname', '?')} {{{shown}}}"
        )
        if "summary" in annotations:
            lines.append(f"    {annotations['summary']}")
        lines.extend(
            f"    {heading + ':':10} {annotations[key]}"
            for key, heading in SHOWN_ANNOTATIONS
            if key in annotations
        )
    return "\n".join(lines)
