"""Real servers on loopback: aiohttp test servers of a few routes, and ports nothing listens on."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

#: The ``aiohttp_server`` fixture of pytest-aiohttp: ``server = await aiohttp_server(app)``.
ServerFactory = Callable[..., Awaitable[TestServer]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(
    aiohttp_server: ServerFactory, **routes: Callable[..., Awaitable[web.StreamResponse]]
) -> str:
    """Serve ``routes`` (``path_without_slash=handler``, any method) and return the base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", "/" + path.replace("__", "/"), handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")
