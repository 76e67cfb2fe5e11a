"""Fixtures for the democare tests: a real webhook receiver, and democare wired to it.

* ``receiver`` is a small aiohttp app on 127.0.0.1 that records every POST it gets, in order.
* ``make_care`` builds democare (``build_app`` keywords) with the sms, push and email webhooks
  pointing at the receiver, serves it on loopback and returns an aiohttp test client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from democare._app import build_app

Client = TestClient[web.Request, web.Application]
MakeCare = Callable[..., Awaitable[Client]]

WEBHOOK_CHANNELS: Final = ("sms", "push", "email")


@dataclass(frozen=True)
class Received:
    """One POST the receiver got: for which channel, its headers, raw body and arrival time."""

    channel: str
    headers: dict[str, str]
    body: bytes
    at: float
    """``loop.time()`` when it arrived."""


class Receiver:
    """A webhook receiver that records deliveries and answers with scripted statuses."""

    def __init__(self) -> None:
        self.base_url = ""
        self.statuses: list[int] = []
        """Statuses to answer with, first to last; 200 once they run out."""
        self._arrivals: asyncio.Queue[Received] = asyncio.Queue()

    def url(self, channel: str) -> str:
        return f"{self.base_url}/{channel}"

    async def handle(self, request: web.Request) -> web.Response:
        self._arrivals.put_nowait(
            Received(
                channel=request.match_info["channel"],
                headers=dict(request.headers),
                body=await request.read(),
                at=asyncio.get_running_loop().time(),
            )
        )
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def next(self, wait_s: float = 3.0) -> Received:
        """The next delivery, waiting at most ``wait_s`` seconds for it."""
        return await asyncio.wait_for(self._arrivals.get(), wait_s)

    async def assert_quiet(self, seconds: float) -> None:
        """Nothing arrives within ``seconds``."""
        await asyncio.sleep(seconds)
        assert self._arrivals.empty(), f"unexpected delivery: {self._arrivals.get_nowait()}"


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{channel}", receiver.handle)
    server = await aiohttp_server(app)
    receiver.base_url = str(server.make_url("")).rstrip("/")
    return receiver


@pytest.fixture
def make_care(aiohttp_client: Any, receiver: Receiver) -> MakeCare:
    async def make(**options: Any) -> Client:
        options.setdefault(
            "webhooks", {channel: receiver.url(channel) for channel in WEBHOOK_CHANNELS}
        )
        client: Client = await aiohttp_client(build_app(**options))
        return client

    return make
