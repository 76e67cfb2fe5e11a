"""``carewatch serve``: one ``Service`` behind its HTTP endpoints until SIGINT or SIGTERM.

SIGHUP reloads checks.yaml (a broken file is rejected and the agent keeps its last good config,
as ``POST /-/reload`` does). ``web_config`` (``--web.config.file``, ``probes.service.webconfig``)
adds TLS, basic auth and headers; ``protect`` and ``disable`` choose, per endpoint, what needs
the auth and what answers 403. ``serve`` raises what the command maps to an exit code:
``ConfigError`` when the first load of either file fails, ``OSError`` when the address cannot be
bound; it returns when a stop signal arrives.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from pathlib import Path

from aiohttp import web

from probes.service.agent import DEFAULT_MAX_PROBES, Service
from probes.service.connections import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    LimitedRunner,
    ServerLimits,
    server_limits,
)
from probes.service.redaction import RedactingFilter
from probes.service.scheduler import DEFAULT_MAX_CONCURRENCY
from probes.service.webconfig import ALL, Endpoint, load_web_config, secure

log = logging.getLogger("carewatch")


async def serve(
    config_path: str | Path,
    *,
    host: str,
    port: int,
    location: str | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    web_config: str | Path | None = None,
    protect: frozenset[Endpoint] = ALL,
    disable: frozenset[Endpoint] = frozenset(),
    max_probes: int = DEFAULT_MAX_PROBES,
) -> None:
    """Run the agent of ``config_path`` on ``http(s)://host:port/`` until SIGINT or SIGTERM.

    The server holds at most ``max_connections`` connections, fewer if the descriptors probing
    needs would not be left, and closes one without a request after ``read_timeout`` seconds
    (``probes.service.connections``).
    """
    secured = load_web_config(web_config) if web_config is not None else None
    service = Service(
        config_path,
        location=location,
        max_concurrency=max_concurrency,
        probe_endpoint=Endpoint.PROBE not in disable,  # the status page links to it or not
        max_probes=max_probes,
    )
    # Every handler of the process, so no record leaves with a secret in it.
    redacting = RedactingFilter(lambda: service.secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redacting)
    limits = server_limits(
        max_concurrency=max_concurrency, max_connections=max_connections, read_timeout=read_timeout
    )
    application = service.app()
    secure(application, secured, protect=protect, disable=disable)
    try:
        await _serve(
            service,
            application,
            host=host,
            port=port,
            limits=limits,
            tls=secured.tls if secured is not None else None,
        )
    finally:
        for handler in handlers:
            handler.removeFilter(redacting)


async def _serve(
    service: Service,
    application: web.Application,
    *,
    host: str,
    port: int,
    limits: ServerLimits,
    tls: ssl.SSLContext | None,
) -> None:
    await service.start()
    runner = LimitedRunner(application, limits=limits, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
    except OSError:
        await service.stop()
        await runner.cleanup()
        raise
    log.info(
        "serving on %s://%s:%d/metrics",
        "https" if tls is not None else "http",
        host if ":" not in host else f"[{host}]",
        port,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    reloads: set[asyncio.Task[object]] = set()  # kept until done: a task may not vanish midway

    def reload_on_hangup() -> None:
        task: asyncio.Task[object] = loop.create_task(service.reload())
        reloads.add(task)
        task.add_done_callback(_reloaded)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_on_hangup)
    try:
        await stopping.wait()
    finally:
        log.info("stopping")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await service.stop()
        await runner.cleanup()


def _reloaded(task: asyncio.Task[object]) -> None:
    """Log what stopped a SIGHUP reload (``reload`` logs the problems of a file it rejects)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("config reload on SIGHUP failed: %s", exc, exc_info=exc)
